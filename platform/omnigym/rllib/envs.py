"""Environments for RLlib workers, built from a resolved ``TrainEnv``.

``register(env)`` registers an ``EnvCreator`` with ``ray.tune.register_env``;
the creator travels to remote env runners (other processes, other nodes),
imports the env's modules there and builds the env exactly as the spec says,
without probing it again: custom and user-registered ids work because the spec
names the modules that register them by absolute file path (or installed
name), so a worker imports them whatever its own directory and ``sys.path``.

RLlib cannot read ``info["action_mask"]``, so ``MaskInObservation`` moves the
mask into a Dict observation ``{"observations", "action_mask"}``, the form
omnigym's RLModules (and RLlib's action-masking examples) expect.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from omnigym import info_keys as K

if TYPE_CHECKING:
    from omnigym.rllib.env_spec import TrainEnv


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


def import_modules(modules) -> None:
    """Import the modules that register user envs (on the driver and on every worker)."""
    from omnigym.user_code import import_user_module
    for module in modules:
        import_user_module(module)


def make_env(env: TrainEnv, env_config: dict | None = None, slot: int | None = None) -> gym.Env:
    """The env as RLlib workers see it. ``env_config`` (RLlib's, if any)
    overrides the spec's kwargs; ``slot`` numbers the sub-env for grouped
    resets (needed exactly when the spec has a group schedule); a spec with a
    ``wrapper`` (``omnigym.rllib.token_env.TokenTrainEnv``) wraps it; an
    ``armed`` spec (group RL) plays one episode per ``arm()`` and ends an
    episode whose step raises (``omnigym.rllib.episode_control``)."""
    import_modules(env.modules)
    from omnigym.registry import make
    built = make(env.id, **{**env.kwargs, **dict(env_config or {})})
    armed = getattr(env, "armed", False)
    if armed:
        from omnigym.rllib.episode_control import EpisodeFaults
        built = EpisodeFaults(built, env.step_timeout_s)
    if env.groups is not None:
        from omnigym.groups import GroupedResets
        if slot is None:
            raise ValueError(f"{env.id} resets in groups: give the sub-env's slot")
        built = GroupedResets(built, env.groups, slot)
    # How the policy sees the env, where it needs another view (the LM's token view).
    wrapper = getattr(env, "wrapper", None)
    if wrapper is not None:
        built = wrapper(built)
    built = MaskInObservation(built) if env.mask else built
    if armed:
        from omnigym.rllib.episode_control import ArmedEpisodes
        built = ArmedEpisodes(built)
    return built


def sub_env_slot(worker_index: int, vector_index: int, envs_per_runner: int) -> int:
    """The global number of a sub-env across env runners. Remote runners are
    1..N; the local runner (0) holds envs only when there are no remote ones."""
    return max(worker_index - 1, 0) * envs_per_runner + vector_index


def _next_vector_index(ctx) -> int:
    """Which sub-env of its runner the creator is building now.

    RLlib 2.60's ``SingleAgentEnvRunner.make_env`` builds ONE ``EnvContext``
    per (re)build of its vector env and calls the creator with that same
    object once per sub-env, in order (``gym.make_vec``, sync mode), leaving
    ``vector_index`` at 0 for all of them. So the n-th call with a given
    context object builds sub-env n: we count the calls on the context itself.
    A per-process counter would drift when a runner rebuilds its envs;
    async vectorisation would copy the context into each subprocess (every
    sub-env would count 0), which is why grouped resets need the default sync
    mode.
    """
    index = getattr(ctx, "_omnigym_sub_envs_made", 0)
    ctx._omnigym_sub_envs_made = index + 1
    return index


class EnvCreator:
    """``ray.tune`` env creator: ``EnvContext -> env`` for one ``TrainEnv``."""

    def __init__(self, env: TrainEnv, envs_per_runner: int = 1):
        self.env = env
        self.envs_per_runner = envs_per_runner

    def __call__(self, ctx) -> gym.Env:
        slot = None
        if self.env.groups is not None:
            slot = sub_env_slot(int(getattr(ctx, "worker_index", 0) or 0), _next_vector_index(ctx),
                                self.envs_per_runner)
        return make_env(self.env, dict(ctx or {}), slot)


def rllib_env_name(env_id: str) -> str:
    return f"omnigym:{env_id}"


def register(env: TrainEnv, envs_per_runner: int = 1) -> str:
    """Register ``env`` with Ray Tune; returns the name to give RLlib.
    ``envs_per_runner``: RLlib's ``num_envs_per_env_runner`` (numbers the
    sub-envs of grouped resets)."""
    from ray.tune.registry import register_env
    name = rllib_env_name(env.id)
    register_env(name, EnvCreator(env, envs_per_runner))
    return name
