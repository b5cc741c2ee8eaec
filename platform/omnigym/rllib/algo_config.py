"""Hydra config -> RLlib ``AlgorithmConfig``.

The ``algo`` group names the config class and its ``.training(...)``
arguments; ``env`` the omnigym/gymnasium id, kwargs and modules to import on
workers; ``policy`` the omnigym policy (wrapped as an RLModule);
``resources`` the env runners, learners and GPUs.
"""
from __future__ import annotations

from hydra.utils import get_class
from omegaconf import OmegaConf

from omnigym.rllib import envs


def to_dict(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def build_algo_config(cfg, env_name: str | None = None, offline_data: str | None = None):
    """An RLlib AlgorithmConfig for the composed ``cfg``."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from omnigym.rllib.module import OmnigymTorchRLModule

    algo, env, res, policy = cfg.algo, cfg.env, cfg.resources, cfg.policy
    env_name = env_name or envs.register(env.id, to_dict(env.kwargs), tuple(env.modules or ()))
    config = get_class(algo.config_class)()
    config = (config.environment(env_name)
              .env_runners(num_env_runners=int(res.num_env_runners),
                           num_envs_per_env_runner=int(res.num_envs_per_env_runner))
              .learners(num_learners=int(res.num_learners),
                        num_gpus_per_learner=float(res.num_gpus_per_learner))
              .fault_tolerance(restart_failed_env_runners=bool(res.restart_failed_env_runners))
              .debugging(seed=int(cfg.seed))
              .training(**to_dict(algo.training)))
    policy_config = to_dict(policy.config)
    if algo.name == "sac":
        # RLlib's SAC module (actor + twin Q) sized like our MLP.
        config = config.rl_module(model_config={"fcnet_hiddens": list(policy_config.get("hidden", [256, 256])),
                                                "fcnet_activation": policy_config.get("activation", "relu")})
    else:
        config = config.rl_module(rl_module_spec=RLModuleSpec(
            module_class=OmnigymTorchRLModule,
            model_config={"policy": policy.name, "policy_config": policy_config}))
    if algo.name == "bc":
        if offline_data is None:
            raise ValueError("algo=bc needs demonstrations (omnigym train records them first)")
        from omnigym.rllib.offline import configure_offline
        config = configure_offline(config, offline_data)
    return config
