"""Score each admissible action against the state (DRRN / LID-style).

A fixed-size Discrete head cannot know what index 7 means when the list of
admissible actions changes every step; scoring each action from its own
features can, and it generalises to new object/goal combinations because
the same weights score every (verb, object) pair.
"""
from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from omnigym.policies.mlp.model import mlp
from omnigym.policies.scorer.config import ScorerConfig


class ActionScorer(nn.Module):
    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: ScorerConfig):
        super().__init__()
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError("the scorer policy needs a Discrete action space")
        if config.slots != action_space.n or config.state_dim <= 0:
            raise ValueError("the scorer policy needs the env's layout (state_dim, slots); "
                             "use an env that provides policy_layout(), e.g. household in vector mode")
        expected = config.state_dim + config.slots * config.fields
        if observation_space.shape != (expected,):
            raise ValueError(f"observation shape {observation_space.shape} does not match the layout ({expected},)")
        self.config = c = config
        self.embeddings = nn.ModuleList(nn.Embedding(c.vocab, c.embed) for _ in range(c.fields))
        self.state_net = mlp([c.state_dim, *c.hidden], c.activation)
        width = c.hidden[-1]
        self.action_net = nn.Sequential(mlp([c.fields * c.embed, width], c.activation), nn.Linear(width, width))
        self.value_head = nn.Linear(width, 1)

    def _split(self, obs: torch.Tensor):
        c = self.config
        obs = obs.float()
        state = obs[:, :c.state_dim]
        ids = obs[:, c.state_dim:].round().long().clamp(0, c.vocab - 1).view(-1, c.slots, c.fields)
        return state, ids

    def action_dist_inputs(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        state, ids = self._split(obs)
        h = self.state_net(state)                                          # [B, W]
        feats = torch.cat([emb(ids[..., k]) for k, emb in enumerate(self.embeddings)], dim=-1)
        a = self.action_net(feats)                                         # [B, S, W]
        # A dot product per slot keeps scoring 160 slots cheap during PPO updates.
        logits = torch.einsum("bsw,bw->bs", a, h) / a.shape[-1] ** 0.5
        empty = ids[..., 0] == 0
        logits = logits.masked_fill(empty, self.config.masked_logit)
        if action_mask is not None:
            logits = logits.masked_fill(~action_mask.bool(), self.config.masked_logit)
        return logits

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        state, _ = self._split(obs)
        return self.value_head(self.state_net(state)).squeeze(-1)

    def forward(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None):
        return self.action_dist_inputs(obs, action_mask), self.value(obs)
