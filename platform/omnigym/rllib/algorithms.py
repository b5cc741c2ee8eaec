"""Algorithm builders named by ``configs/algo/*.yaml`` (``_target_``).

``builder(cfg, env, run_dir) -> AlgorithmConfig`` for the composed train
config, the run's resolved ``TrainEnv`` and its folder.
"""
from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class

from omnigym.rllib import envs
from omnigym.rllib.algo_config import rl_module_args, to_dict


def online(cfg, env, run_dir: Path):
    """An algorithm that samples the env with env runners (PPO, APPO, SAC...):
    ``algo.config_class`` set up with ``algo.training`` and ``resources``."""
    res = cfg.resources
    envs_per_runner = int(res.num_envs_per_env_runner)
    return (get_class(cfg.algo.config_class)()
            .environment(envs.register(env, envs_per_runner),
                         observation_space=env.observation_space, action_space=env.action_space)
            .env_runners(num_env_runners=int(res.num_env_runners), num_envs_per_env_runner=envs_per_runner)
            .learners(num_learners=int(res.num_learners), num_gpus_per_learner=float(res.num_gpus_per_learner))
            .fault_tolerance(restart_failed_env_runners=bool(res.restart_failed_env_runners))
            .debugging(seed=int(cfg.seed))
            .training(**to_dict(cfg.algo.training))
            .rl_module(**rl_module_args(cfg, env)))


def group_rl(cfg, env, run_dir: Path):
    """Group RL for LM policies (``omnigym.rllib.group_rl``): ``online`` on
    armed sub-envs (``algo.armed_episodes``: ``env_spec.train_env`` arms
    them), with the group size of ``groups.size`` and one episode per sub-env
    per iteration."""
    from omnigym.rllib.env_spec import num_sub_envs
    if not getattr(env, "armed", False):
        raise ValueError("group RL needs armed sub-envs: set algo.armed_episodes=true")
    config = online(cfg, env, run_dir)
    size = int(cfg.groups.size) if cfg.get("groups") else 1
    first, last = (int(s) for s in cfg.algo.get("spo_tasks") or cfg.groups.seeds)
    return config.training(group_size=size, episodes_per_iteration=num_sub_envs(cfg.resources),
                           spo_tasks=list(range(first, last + 1)))


def bc(cfg, env, run_dir: Path):
    """Behaviour cloning: record ``algo.demonstrations`` (the env's expert by
    default) into the run folder, then RLlib's BC learns from them offline."""
    from omnigym.rllib.offline import bc_config, record_demonstrations
    demo = cfg.algo.demonstrations
    first, last = int(demo.seeds[0]), int(demo.seeds[1])
    data = record_demonstrations(demo.policy, range(first, last + 1), env, run_dir / "demonstrations",
                                 shuffle_seed=int(cfg.seed), progress=bool(cfg.progress))
    return bc_config(env, data, seed=int(cfg.seed), **to_dict(cfg.algo.training), **rl_module_args(cfg, env))


def sac_module(policy: dict, env, torch_threads: int = 1) -> dict:
    """RLlib's own SAC module (an actor and twin Q networks), sized like the
    policy's MLP (``hidden``, ``activation``)."""
    config = dict(policy.get("config") or {})
    return {"model_config": {"fcnet_hiddens": list(config.get("hidden", [256, 256])),
                             "fcnet_activation": config.get("activation", "relu")}}
