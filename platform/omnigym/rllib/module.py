"""omnigym policies as RLlib RLModules (new API stack).

``OmnigymTorchRLModule`` wraps any policy of ``omnigym.policies`` (found by
``model_config["policy"]``). It speaks RLlib's columns and APIs:
``ValueFunctionAPI`` for PPO/APPO critics and ``TargetNetworkAPI`` for
APPO's target policy; with a Dict observation ``{"observations",
"action_mask"}`` masked actions get ``masked_logit`` and are never sampled.
"""
from __future__ import annotations

import copy

import gymnasium as gym
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import TargetNetworkAPI, ValueFunctionAPI
from ray.rllib.core.rl_module.apis.target_network_api import TARGET_NETWORK_ACTION_DIST_INPUTS
from ray.rllib.core.rl_module.torch import TorchRLModule

from omnigym.policies import make_policy


class OmnigymTorchRLModule(TorchRLModule, ValueFunctionAPI, TargetNetworkAPI):
    def setup(self):
        space = self.observation_space
        self.masked = isinstance(space, gym.spaces.Dict) and "action_mask" in space.spaces
        inner = space["observations"] if self.masked else space
        # RLlib merges its own default keys into model_config, so our policy's
        # options travel in their own sub-dict.
        config = dict(self.model_config or {})
        if config.get("torch_threads"):
            # Env runners run batches of a few observations: extra threads only
            # spin against each other (measured: 5x slower sampling on 2 cores).
            import torch
            torch.set_num_threads(int(config["torch_threads"]))
        self.policy = make_policy(config.get("policy", "mlp"), inner, self.action_space,
                                  **dict(config.get("policy_config") or {}))

    def _split(self, batch):
        obs = batch[Columns.OBS]
        if self.masked:
            return obs["observations"], obs["action_mask"]
        return obs, None

    def _forward(self, batch, **kwargs):
        obs, mask = self._split(batch)
        return {Columns.ACTION_DIST_INPUTS: self.policy.action_dist_inputs(obs, mask)}

    def _forward_train(self, batch, **kwargs):
        obs, mask = self._split(batch)
        logits, values = self.policy(obs, mask)
        # Values ride along as embeddings so PPO's loss need not run the critic twice.
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: values}

    def compute_values(self, batch, embeddings=None):
        if embeddings is not None:
            return embeddings
        obs, _ = self._split(batch)
        return self.policy.value(obs)

    # APPO: a slowly updated copy of the policy for its importance ratios.
    def make_target_networks(self) -> None:
        self._target_policy = copy.deepcopy(self.policy)
        self._target_policy.requires_grad_(False)

    def get_target_network_pairs(self):
        return [(self.policy, self._target_policy)]

    def forward_target(self, batch, **kwargs):
        obs, mask = self._split(batch)
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: self._target_policy.action_dist_inputs(obs, mask)}

    def get_non_inference_attributes(self):
        return ["_target_policy"]
