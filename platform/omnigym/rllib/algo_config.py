"""Hydra config -> RLlib ``AlgorithmConfig``.

Each config group names its builder with ``_target_`` (resolved with
``hydra.utils.get_method``), so a new algorithm or policy is a new YAML file
and a function, never a new branch here:

- ``algo._target_``: ``builder(cfg, env, run_dir) -> AlgorithmConfig``
  (``omnigym.rllib.algorithms.online`` samples the env, ``.bc`` learns from
  recorded demonstrations);
- ``policy._target_``: ``builder(policy, env, torch_threads) -> dict``, the
  keyword arguments of ``AlgorithmConfig.rl_module`` (see
  ``omnigym.rllib.policies``). An algorithm that brings its own RLModule
  names that builder in ``algo.module`` instead (SAC's twin-Q module).

``env`` is the run's resolved :class:`~omnigym.rllib.env_spec.TrainEnv`.
"""
from __future__ import annotations

from pathlib import Path

from hydra.utils import get_method
from omegaconf import OmegaConf


def to_dict(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def rl_module_args(cfg, env) -> dict:
    """The keyword arguments of ``AlgorithmConfig.rl_module`` for this run."""
    target = cfg.algo.get("module") or cfg.policy._target_
    return get_method(target)(to_dict(cfg.policy), env, int(cfg.resources.get("torch_threads", 1)))


def build_algo_config(cfg, env, run_dir: Path):
    """An RLlib AlgorithmConfig for the composed ``cfg`` and its resolved ``env``."""
    return get_method(cfg.algo._target_)(cfg, env, Path(run_dir))
