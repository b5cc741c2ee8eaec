"""Export omnigym episodes as a Minari dataset (minari 0.5.4, arrow storage).

Minari stores exactly what an omnigym episode holds: T+1 observations
(reset included), T actions, rewards, terminations and truncations, plus
infos; so the conversion is lossless for the data a Minari dataset has
(``jpeg_encoding=False``: images are stored raw, not as JPEG).

Spaces come from the env when one is given (the recording env, so bounds
and the ``Text`` instruction space are the real ones) and are otherwise
inferred from the data: ``Box`` for arrays (float bounds +-inf, integer
bounds of the dtype), ``Text`` for strings, ``Discrete(max + 1)`` for
integers, ``Dict`` for dicts.

Infos: Minari wants one array per info key over all T+1 steps, so only keys
present in every info with one scalar type (bool, int, float, str) or one
array shape are kept (robots: ``success``, ``instruction``, ``task_id``,
``invalid_action``, ``state_key``, ...).

Datasets live under Minari's root: ``root=`` when given, else
``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``. Load one back with
``MINARI_DATASETS_PATH=ROOT python -c "import minari; minari.load_dataset(ID)"``.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import string
import warnings
from pathlib import Path
from typing import Any, Iterable

import gymnasium as gym
import numpy as np

from omnigym.episodes import Episode

__all__ = ["export_minari", "check_new_dataset_id", "infer_space", "DATASET_ID_HELP"]

DATASET_ID_HELP = "Minari dataset ids look like 'namespace/name-v0' (the -vN version is required)"
# Minari's own id pattern, with the version made mandatory (0.5.4 fails on ids without one).
_ID_RE = re.compile(r"^(?:[-\w][-\w/]*[-\w]+/)?[-\w]+?-v\d+$")


def _import_minari():
    try:
        import minari
    except ImportError as exc:
        raise ValueError("Minari export needs minari: pip install 'minari[arrow]==0.5.4'") from exc
    return minari


@contextlib.contextmanager
def _datasets_root(root: str | os.PathLike | None):
    """Point Minari at ``root`` for the duration (it reads the variable on every call)."""
    if root is None:
        yield
        return
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


# --------------------------------------------------------------------------
# Spaces
# --------------------------------------------------------------------------
def infer_space(values: list) -> gym.Space:
    """A space holding every value of ``values`` (one observation or action slot)."""
    first = values[0]
    if isinstance(first, dict):
        return gym.spaces.Dict({k: infer_space([v[k] for v in values]) for k in first})
    if isinstance(first, str):
        chars = set("".join(values))
        charset = string.printable if chars <= set(string.printable) else "".join(sorted(chars))
        return gym.spaces.Text(max(len(v) for v in values), min_length=0, charset=charset)
    if isinstance(first, (bool, np.bool_)):
        return gym.spaces.Discrete(2)
    if isinstance(first, (int, np.integer)):
        return gym.spaces.Discrete(int(max(values)) + 1, start=min(0, int(min(values))))
    if isinstance(first, (float, np.floating)):
        return gym.spaces.Box(-np.inf, np.inf, shape=(), dtype=np.float64)
    if isinstance(first, np.ndarray):
        dtype = first.dtype
        if dtype.kind == "f":
            low, high = -np.inf, np.inf
        elif dtype.kind in "iu":
            low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
        else:
            raise ValueError(f"cannot infer a Minari space for {dtype} arrays; pass the env's spaces")
        return gym.spaces.Box(low, high, shape=first.shape, dtype=dtype)
    raise ValueError(f"cannot infer a Minari space for {type(first).__name__} values; pass the env's spaces")


def _stack(space: gym.Space, values: list) -> Any:
    """Per-step values -> Minari's per-episode layout (arrays stacked over time)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: _stack(sub, [v[k] for v in values]) for k, sub in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(_stack(sub, [v[i] for v in values]) for i, sub in enumerate(space.spaces))
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary, gym.spaces.MultiDiscrete)):
        arr = np.stack([np.asarray(v) for v in values])
        if arr.shape[1:] != space.shape:
            raise ValueError(f"values of shape {arr.shape[1:]} do not fit {space}")
        return arr.astype(space.dtype, copy=False)
    if isinstance(space, gym.spaces.Discrete):
        return np.asarray(values, dtype=space.dtype)
    return list(values)  # Text and others: Minari's arrow storage keeps Python values


def _info_columns(infos: list[dict]) -> dict:
    """Info keys that Minari can store as one column over the episode."""
    keys = set(infos[0]).intersection(*infos[1:]) if infos else set()
    out = {}
    for key in sorted(keys):
        values = [info[key] for info in infos]
        # Scalars go to Minari as Python lists: its arrow reader cannot restore
        # the empty per-step shape of a 1-D numpy info array.
        if all(isinstance(v, (bool, np.bool_)) for v in values):
            out[key] = [bool(v) for v in values]
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
            out[key] = [int(v) for v in values]
        elif all(isinstance(v, (float, np.floating)) for v in values):
            out[key] = [float(v) for v in values]
        elif all(isinstance(v, str) for v in values):
            out[key] = list(values)
        elif (all(isinstance(v, np.ndarray) and v.ndim > 0 for v in values)
              and len({(v.shape, v.dtype) for v in values}) == 1 and values[0].dtype.kind in "biuf"):
            out[key] = np.stack(values)
    return out


def _common_info_keys(episodes: list[Episode]) -> set:
    # Minari's arrow files share one schema per dataset, so every episode gets the same keys.
    per_episode = [set(_info_columns(ep.infos)) for ep in episodes]
    return set.intersection(*per_episode) if per_episode else set()


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------
def check_new_dataset_id(dataset_id: str, root: str | os.PathLike | None = None) -> Path:
    """Raise ValueError unless ``dataset_id`` is well formed and not taken under
    ``root``; returns where the dataset would go (lets callers fail before recording)."""
    _import_minari()
    if not _ID_RE.match(dataset_id):
        raise ValueError(f"bad Minari dataset id {dataset_id!r}: {DATASET_ID_HELP}")
    with _datasets_root(root):
        from minari.storage.datasets_root_dir import get_dataset_path
        path = Path(get_dataset_path(dataset_id))
    if path.exists():
        raise ValueError(f"a Minari dataset {dataset_id!r} already exists at {path}")
    return path


def export_minari(episodes: Iterable[Episode], dataset_id: str, *, root: str | os.PathLike | None = None,
                  env: gym.Env | None = None, observation_space: gym.Space | None = None,
                  action_space: gym.Space | None = None, description: str | None = None,
                  algorithm_name: str | None = None, author: str | None = None,
                  code_permalink: str | None = None):
    """Create the Minari dataset ``dataset_id`` from ``episodes``; returns the ``MinariDataset``.

    ``env``: the recording env (its spec is stored, so ``recover_environment``
    works, and its spaces are used); explicit spaces win over the env's; with
    neither they are inferred from the episodes. ``root``: the Minari datasets
    folder (default ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``).
    An existing dataset with that id is an error (Minari never overwrites).
    """
    minari = _import_minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer

    path = check_new_dataset_id(dataset_id, root)
    # Episodes without a step have no action row; Minari cannot store them.
    episodes = [ep for ep in episodes if ep.length > 0]
    if not episodes:
        raise ValueError("no episode with at least one step to export")
    observation_space = observation_space or (env.observation_space if env is not None else
                                              infer_space([o for ep in episodes for o in ep.observations]))
    action_space = action_space or (env.action_space if env is not None else
                                    infer_space([a for ep in episodes for a in ep.actions]))
    info_keys = _common_info_keys(episodes)

    buffers = []
    for i, ep in enumerate(episodes):
        try:
            observations = _stack(observation_space, ep.observations)
            actions = _stack(action_space, ep.actions)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"episode {i} ({ep.env_id}, seed {ep.seed}) does not fit the spaces: {exc}") from exc
        infos = {k: v for k, v in _info_columns(ep.infos).items() if k in info_keys}
        buffers.append(EpisodeBuffer(id=i, seed=ep.seed, observations=observations, actions=actions,
                                     rewards=list(ep.rewards), terminations=list(ep.terminated),
                                     truncations=list(ep.truncated), infos=infos or None))

    with _datasets_root(root):
        try:
            with warnings.catch_warnings():
                # Minari warns about every optional field left empty (author, permalink, eval env).
                warnings.simplefilter("ignore", UserWarning)
                return minari.create_dataset_from_buffers(
                    dataset_id, buffers, env=env, observation_space=observation_space,
                    action_space=action_space, algorithm_name=algorithm_name, author=author,
                    code_permalink=code_permalink,
                    description=description or f"omnigym episodes of {episodes[0].env_id}",
                    data_format="arrow", jpeg_encoding=False)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # no half-written dataset under that id
            raise
