"""Environments for RLlib workers, by id.

``register(env_id)`` registers a creator with ``ray.tune.register_env`` whose
body imports omnigym, so remote env runners (other processes, other nodes)
build the env themselves: custom and user-registered ids work as long as the
worker can import the module that registers them (``env_modules``).

RLlib cannot read ``info["action_mask"]``, so ``MaskInObservation`` moves the
mask into a Dict observation ``{"observations", "action_mask"}``, the form
omnigym's RLModules (and RLlib's action-masking examples) expect.
"""
from __future__ import annotations

import importlib

import gymnasium as gym
import numpy as np

from omnigym import info_keys as K


class MaskInObservation(gym.ObservationWrapper):
    """Observation -> {"observations": obs, "action_mask": info["action_mask"]}."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError("action masks need a Discrete action space")
        n = int(env.action_space.n)
        self.observation_space = gym.spaces.Dict({
            "observations": env.observation_space,
            "action_mask": gym.spaces.Box(0.0, 1.0, (n,), np.float32),
        })
        self._mask = np.ones(n, np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._mask = self._read_mask(info)
        return self.observation(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._mask = self._read_mask(info)
        return self.observation(obs), reward, terminated, truncated, info

    def _read_mask(self, info: dict) -> np.ndarray:
        mask = info.get(K.ACTION_MASK)
        if mask is None:
            return np.ones(self.observation_space["action_mask"].shape, np.float32)
        return np.asarray(mask, dtype=np.float32)

    def observation(self, obs):
        return {"observations": obs, "action_mask": self._mask}


def wants_mask(env: gym.Env) -> bool:
    """True when the env reports action masks for a Discrete action space."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        return False
    _, info = env.reset(seed=0)
    return K.ACTION_MASK in info


def make_env(env_id: str, env_kwargs: dict | None = None, env_modules: tuple = (),
             mask: bool | None = None) -> gym.Env:
    """The env as RLlib workers see it (importing user modules first)."""
    for module in env_modules:
        importlib.import_module(module)
    from omnigym.registry import make
    env = make(env_id, **(env_kwargs or {}))
    if mask is None:
        mask = wants_mask(env)
    return MaskInObservation(env) if mask else env


def rllib_env_name(env_id: str) -> str:
    return f"omnigym:{env_id}"


def register(env_id: str, env_kwargs: dict | None = None, env_modules: tuple = (),
             mask: bool | None = None) -> str:
    """Register ``env_id`` with Ray Tune; returns the name to give RLlib."""
    from ray.tune.registry import register_env
    kwargs, modules = dict(env_kwargs or {}), tuple(env_modules)

    def creator(env_config):
        # Runs on every worker: import inside so remote processes build the env.
        from omnigym.rllib.envs import make_env as _make
        return _make(env_id, {**kwargs, **dict(env_config or {})}, modules, mask)

    name = rllib_env_name(env_id)
    register_env(name, creator)
    return name
