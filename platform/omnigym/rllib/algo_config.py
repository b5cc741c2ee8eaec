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


def env_layout(env_cfg) -> dict:
    """The observation layout an env reports for action-scoring policies."""
    from omnigym.registry import make
    env = make(env_cfg.id, **to_dict(env_cfg.kwargs))
    try:
        layout = getattr(env.unwrapped, "policy_layout", None)
        if layout is None:
            raise ValueError(f"{env_cfg.id} does not describe an action table (policy_layout); "
                             "policy=scorer needs one: use policy=mlp")
        return layout()
    finally:
        env.close()


def build_algo_config(cfg, env_name: str | None = None, offline_data: str | None = None):
    """An RLlib AlgorithmConfig for the composed ``cfg``."""
    algo, env, res, policy = cfg.algo, cfg.env, cfg.resources, cfg.policy
    if algo.name == "bc":
        return _bc_config(cfg, offline_data)
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
    if algo.name == "sac":
        policy_config = to_dict(policy.config)
        # RLlib's SAC module (actor + twin Q) sized like our MLP.
        config = config.rl_module(model_config={"fcnet_hiddens": list(policy_config.get("hidden", [256, 256])),
                                                "fcnet_activation": policy_config.get("activation", "relu")})
    else:
        config = config.rl_module(rl_module_spec=module_spec(cfg))
    return config


def module_spec(cfg):
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from omnigym.rllib.module import OmnigymTorchRLModule
    policy_config = to_dict(cfg.policy.config)
    if cfg.policy.name == "scorer":
        policy_config = {**env_layout(cfg.env), **policy_config}
    return RLModuleSpec(module_class=OmnigymTorchRLModule,
                        model_config={"policy": cfg.policy.name, "policy_config": policy_config,
                                      "torch_threads": int(cfg.resources.get("torch_threads", 1))})


def _bc_config(cfg, offline_data: str | None):
    """BC learns offline from recorded demonstrations (no env runners)."""
    from omnigym.rllib.offline import bc_config
    if offline_data is None:
        raise ValueError("algo=bc needs demonstrations (omnigym train records them first)")
    training = to_dict(cfg.algo.training)
    return bc_config(cfg.env.id, offline_data, env_config=to_dict(cfg.env.kwargs),
                     train_batch_size_per_learner=int(training.pop("train_batch_size_per_learner", 256)),
                     lr=float(training.pop("lr", 1e-3)), rl_module_spec=module_spec(cfg),
                     seed=int(cfg.seed), **training)
