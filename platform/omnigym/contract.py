"""The environment contract in code: the small helpers every family uses.

DESIGN §2 says what an omnigym environment promises; these functions are the
one implementation of the parts that families used to write each their own
way, and ``omnigym check`` (``omnigym.checker``) verifies the rest:

- ``parse_index`` / ``parse_text``: turn an action into an index or a string,
  or into an ``Invalid`` reason (bytes are decoded here and only here);
- ``invalid_feedback`` and ``penalised``: the observation text and reward of an
  invalid action (``invalid_penalty`` is a constructor argument of every
  family, 0 by default);
- ``require_reset``: the ``ResetNeeded`` guard of ``step``/``get_state``;
- ``hash_key``: the one hash behind every ``state_key()``.

Snapshots: ``env.unwrapped.get_state()`` returns a picklable snapshot where
the backend allows, ``set_state(snapshot)`` restores it and returns
``(obs, info)`` as seen at that moment. ``state_key()`` is a method of every
unwrapped env (and ``info["state_key"]`` its value on every step): it covers
the world *and* the task/goal and any randomisation drawn, so two situations
that differ in anything that affects the future get different keys.
"""
from __future__ import annotations

import hashlib
import json

import gymnasium as gym
import numpy as np


class Invalid(str):
    """Why an action cannot be used: a ``str``, so it reads well in an observation."""


def parse_index(action, n: int, what: str = "info['admissible_actions']") -> int | Invalid:
    """``action`` as an index in ``0..n-1``, or why not. Accepts Python and
    numpy integers and integral floats (``2.0``); refuses bools, strings,
    ``1.5``, arrays of more than one value and out-of-range indices."""
    kind = type(action)
    if (kind is int or kind is np.int64) and 0 <= action < n:  # the common case, on every step
        return int(action)
    if isinstance(action, np.ndarray) and action.size == 1:
        action = action.reshape(()).item()
    try:
        if isinstance(action, (bool, np.bool_, str, bytes, bytearray)):
            raise TypeError
        index = int(action)
        if index != action:  # 1.5 is not an index; 2.0 and np.int64(2) are
            raise TypeError
    except (TypeError, ValueError, OverflowError):
        return Invalid(f"discrete actions are integer indices, got {_short(action)}")
    if not 0 <= index < n:
        return Invalid(f"index {index} is not admissible; valid indices are 0..{n - 1} (see {what})"
                       if n else f"index {index} is not admissible: no action is admissible now")
    return index


def parse_text(action, max_length: int, *, allow_empty: bool = False, what: str = "text actions") -> str | Invalid:
    """``action`` as a string (bytes decoded as UTF-8), or why not."""
    if isinstance(action, (bytes, bytearray)):
        try:
            action = bytes(action).decode("utf-8")
        except UnicodeDecodeError:
            return Invalid(f"{what} given as bytes must be UTF-8")
    if isinstance(action, np.str_):
        action = str(action)
    if not isinstance(action, str):
        return Invalid(f"{what} are strings, got {type(action).__name__}")
    if len(action) > max_length:
        return Invalid(f"{what} are at most {max_length} characters, got {len(action)}")
    if not allow_empty and not action.strip():
        return Invalid(f"{what} cannot be empty")
    return action


def invalid_feedback(reason: str) -> str:
    """The sentence an observation shows for an invalid action."""
    return f"Invalid action: {reason.rstrip('.')}."


def penalised(reward: float, invalid: bool, penalty: float) -> float:
    """``reward`` less ``penalty`` when the action was invalid."""
    return float(reward) - float(penalty) if invalid else float(reward)


def require_reset(ready: bool, call: str = "step") -> None:
    if not ready:
        raise gym.error.ResetNeeded(f"call reset() before {call}()")


def hash_key(*parts) -> str:
    """A short stable hash of ``parts`` (bytes are hashed as they are, anything
    else as canonical JSON): the same on every machine and Python run."""
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        if isinstance(part, (bytes, bytearray, memoryview)):
            h.update(bytes(part))
        else:
            h.update(json.dumps(part, sort_keys=True, default=_canonical).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _canonical(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    return repr(value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
