"""The MLP actor-critic: plain torch, no RLlib.

Discrete actions: logits, with masked entries set to ``masked_logit`` so a
masked action has probability exactly zero after softmax (e^-1e9 underflows
to 0 in float32). Box actions: mean and a state-independent log-std,
concatenated as RLlib's diagonal Gaussian expects.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from omnigym.policies.mlp.config import MLPConfig

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class MLPActorCritic(nn.Module):
    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: MLPConfig | None = None):
        super().__init__()
        self.config = config = config or MLPConfig()
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"the mlp policy needs a Box observation, got {observation_space}; "
                             "use a vector mode (e.g. mode=vector) or a tokenising wrapper")
        self.obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            out = int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box):
            out = int(np.prod(action_space.shape))
            self.log_std = nn.Parameter(torch.full((out,), float(config.log_std_init)))
        else:
            raise ValueError(f"the mlp policy supports Discrete and Box actions, got {action_space}")
        sizes = [self.obs_dim, *config.hidden]
        self.actor_trunk = mlp(sizes, config.activation)
        self.critic_trunk = self.actor_trunk if config.shared_trunk else mlp(sizes, config.activation)
        self.actor_head = _init(nn.Linear(sizes[-1], out), 0.01)
        self.critic_head = _init(nn.Linear(sizes[-1], 1), 1.0)

    def _flat(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.reshape(obs.shape[0], -1).float()

    def action_dist_inputs(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.actor_head(self.actor_trunk(self._flat(obs)))
        if self.discrete:
            if action_mask is not None:
                out = out.masked_fill(~action_mask.bool(), self.config.masked_logit)
            return out
        return torch.cat([out, self.log_std.expand_as(out)], dim=-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic_head(self.critic_trunk(self._flat(obs))).squeeze(-1)

    def forward(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None):
        return self.action_dist_inputs(obs, action_mask), self.value(obs)
