"""Policy builders named by ``configs/policy/*.yaml`` (``_target_``).

``builder(policy, env, torch_threads) -> dict``: ``policy`` is the policy
node (``name`` picks the network in ``omnigym.policies``, ``config`` its
options), ``env`` the run's ``TrainEnv``; the result is the keyword arguments
of ``AlgorithmConfig.rl_module``.
"""
from __future__ import annotations

from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from omnigym.rllib.module import OmnigymTorchRLModule


def omnigym_policy(policy: dict, env, torch_threads: int = 1) -> dict:
    """An ``omnigym.policies`` network as an RLModule (``OmnigymTorchRLModule``)."""
    return {"rl_module_spec": RLModuleSpec(
        module_class=OmnigymTorchRLModule,
        observation_space=env.observation_space, action_space=env.action_space,
        model_config={"policy": policy["name"], "policy_config": dict(policy.get("config") or {}),
                      "torch_threads": torch_threads})}


def action_scorer(policy: dict, env, torch_threads: int = 1) -> dict:
    """A network that scores each row of the env's action table: the env's
    ``policy_layout()`` fills in the shape options."""
    if env.layout is None:
        raise ValueError(f"{env.id} does not describe an action table (policy_layout); "
                         "policy=scorer needs one: use policy=mlp")
    config = {**env.layout, **dict(policy.get("config") or {})}
    return omnigym_policy({**policy, "config": config}, env, torch_threads)


def lm_policy(policy: dict, env, torch_threads: int = 1) -> dict:
    """A causal LM (``omnigym.policies.lm``) as an ``LMRLModule`` over the
    env's token view: the LM options come from the view itself, so the
    module's tokenizer and lengths are the ones the sub-envs encode with;
    ``policy["lora"]`` (``r`` > 0) trains LoRA adapters only."""
    from omnigym.rllib.lm_module import LMRLModule
    view = getattr(env, "wrapper", None)
    if view is None or not hasattr(view, "lm"):
        raise ValueError(f"policy={policy.get('name', 'lm')} acts on token ids: build the run's env with "
                         "omnigym.rllib.token_env.token_train_env(env, policy) (the LM's token view of "
                         f"{env.id})")
    lora = dict(policy.get("lora") or {})   # r > 0: train fresh LoRA adapters instead of every weight
    return {"rl_module_spec": RLModuleSpec(
        module_class=LMRLModule, observation_space=env.observation_space, action_space=env.action_space,
        model_config={"lm": dict(view.lm), "tiny": view.tiny, "train_lora": lora if lora.get("r") else None,
                      "torch_threads": torch_threads})}
