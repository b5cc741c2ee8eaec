"""omnigym.policies: RLlib-independent torch policies, found by name.

Each policy lives in one folder with ``config.py`` (a dataclass) and
``model.py`` (a ``torch.nn.Module``). ``make_policy(name, obs_space,
action_space, **config)`` builds one; trainers (RLlib adapters in
``omnigym.rllib``, plain torch loops) only use the protocol:

- ``forward(obs, action_mask=None) -> (action_dist_inputs, value)``;
- ``action_dist_inputs(obs, action_mask=None)`` and ``value(obs)``.
"""
from __future__ import annotations

import importlib

POLICIES = {
    "mlp": ("omnigym.policies.mlp.config:MLPConfig", "omnigym.policies.mlp.model:MLPActorCritic"),
    "scorer": ("omnigym.policies.scorer.config:ScorerConfig", "omnigym.policies.scorer.model:ActionScorer"),
}


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def make_policy(name: str, observation_space, action_space, **config):
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; available: {sorted(POLICIES)}")
    config_cls, model_cls = (_load(p) for p in POLICIES[name])
    known = set(config_cls.__dataclass_fields__)
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"policy {name!r} has no option(s) {sorted(unknown)}; options: {sorted(known)}")
    return model_cls(observation_space, action_space, config_cls(**config))
