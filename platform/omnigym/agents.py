"""Policies that need no training, and how a policy is named on the CLI.

A policy is anything with ``act(obs, info) -> action`` (optionally
``reset(env=..., seed=..., member=...)`` called after every env reset), or a
plain callable ``f(obs, info)``. ``resolve_policy`` turns a name into one:

- ``random``: a uniformly random *admissible* action when the env lists them
  (the action mask in discrete mode, ``admissible_actions`` in text mode),
  else ``action_space.sample()``;
- ``expert`` / ``planner``: the env family's expert (see ``omnigym info``);
- ``package.module:Name``: any importable class or factory;
- a run folder of ``omnigym train`` or an RLlib checkpoint: the trained RLModule.
"""
from __future__ import annotations

import importlib

import numpy as np

from omnigym import info_keys as K


class RandomPolicy:
    name = "random"

    def __init__(self, seed: int = 0):
        self.base_seed = seed
        self.rng = np.random.default_rng(seed)
        self.action_space = None

    def reset(self, env=None, seed=None, member=None) -> None:
        # Seeded per episode so every (seed, member) pair is reproducible.
        self.rng = np.random.default_rng([self.base_seed, seed or 0, member or 0])
        if env is not None:
            self.action_space = env.action_space

    def act(self, obs, info):
        mask = info.get(K.ACTION_MASK)
        space = self.action_space
        if mask is not None and space is not None and hasattr(space, "n"):
            valid = np.flatnonzero(mask)
            if len(valid):
                return int(self.rng.choice(valid))
        actions = info.get(K.ADMISSIBLE_ACTIONS)
        if actions:
            return actions[int(self.rng.integers(len(actions)))]
        if space is None:
            raise ValueError("RandomPolicy needs reset(env=...) for envs without admissible actions")
        space.seed(int(self.rng.integers(2**31)))
        return space.sample()


class CallablePolicy:
    """Adapts ``f(obs, info)`` to the policy protocol."""

    def __init__(self, fn, name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")

    def act(self, obs, info):
        return self.fn(obs, info)


def _import(path: str):
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"policy {path!r}: write 'package.module:Name'")
    return getattr(importlib.import_module(module), attr)


def resolve_policy(spec, env_id: str | None = None, **kwargs):
    """A policy object from a name, an import path, an object or a callable."""
    if not isinstance(spec, str):
        if hasattr(spec, "act"):
            return spec
        if callable(spec):
            return CallablePolicy(spec)
        raise TypeError(f"a policy needs act(obs, info) or to be callable, got {type(spec).__name__}")
    if spec == "random":
        return RandomPolicy(**kwargs)
    if spec in ("expert", "planner"):
        from omnigym.registry import entry
        if env_id is None:
            raise ValueError(f"policy {spec!r} needs an env id to find its expert")
        expert = entry(env_id).expert
        if not expert:
            raise ValueError(f"{env_id} has no expert; available: random or 'module:Class'")
        policy = _import(expert)(**kwargs)
        policy.name = spec
        return policy
    from omnigym.rllib.inference import is_checkpoint
    if is_checkpoint(spec):
        from omnigym.rllib.inference import RLModulePolicy
        return RLModulePolicy.from_checkpoint(spec, name=kwargs.pop("name", "trained"), **kwargs)
    if ":" in spec:
        obj = _import(spec)
        policy = obj(**kwargs) if isinstance(obj, type) else obj
        return resolve_policy(policy)
    raise ValueError(f"unknown policy {spec!r}; use random, expert, planner, 'module:Class' "
                     "or a checkpoint folder")


def policy_name(policy) -> str:
    return getattr(policy, "name", type(policy).__name__)
