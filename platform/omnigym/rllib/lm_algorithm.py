"""Token-level PPO for LM policies on RLlib: ``TokenPPOConfig`` / ``TokenPPO``
and its ``TokenPPOLearner``.

An LM acts with whole replies, but its log-prob, ratio and clipping live
per token, and it has no critic. RLlib's stock PPO cannot train it (its
loss needs an action distribution over the action space and a value
function; it adds GAE to the learner pipeline), so this is the small
algorithm that can, in three replaceable parts:

1. ``TokenPPO.sample_episodes``: complete episodes from every env runner
   (``sample(num_episodes=...)``), each runner generating for all its
   sub-envs in one batch;
2. ``TokenPPO.compute_advantages(episodes)``: one advantage per step,
   computed on the driver *before* the update, so that any grouping of
   episodes (GRPO, GiGPO) sees whole episodes however the learners shard
   them; the default is the discounted return-to-go, normalised over the
   batch (REINFORCE with a batch baseline). It is written into each
   episode as a per-step column, which RLlib copies into the train batch;
3. ``TokenPPOLearner``: the token-level PPO-clip loss of
   ``omnigym.policies.agent_rl.losses`` (mean over reply tokens) minus an
   entropy bonus; a subclass's ``loss_config`` picks another objective
   (KL to the frozen initial LM, other clipping, other aggregation).

Group methods subclass ``TokenPPO`` (their advantages and their sampling
schedule) and, where their loss differs, ``TokenPPOLearner``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS, ENV_RUNNER_SAMPLING_TIMER, LEARNER_RESULTS, LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME, SYNCH_WORKER_WEIGHTS_TIMER, TIMERS,
)

from omnigym.policies.agent_rl.losses import LossConfig, policy_loss
from omnigym.rllib.lm_module import TOKEN_ENTROPY, TOKEN_LOGP, TOKEN_MASK, LMRLModule


class TokenPPOLearner(TorchLearner):
    """The token-level loss of ``TokenPPO`` (no critic: ``TorchLearner``
    requires no RLModule API)."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        loss_config = self.loss_config(config)
        ref_logp = self.reference_logp(module_id, batch) if loss_config.kl_coef else None
        loss, stats = policy_loss(loss_config, logp=fwd_out[TOKEN_LOGP], old_logp=batch[TOKEN_LOGP],
                                  advantages=batch[Columns.ADVANTAGES], mask=fwd_out[TOKEN_MASK],
                                  entropy=fwd_out[TOKEN_ENTROPY], ref_logp=ref_logp)
        stats["reply_tokens_mean"] = fwd_out[TOKEN_MASK].float().sum(-1).mean()
        self.metrics.log_dict({k: float(v) for k, v in stats.items()}, key=module_id, window=1)
        return loss

    def loss_config(self, config) -> LossConfig:
        """PPO-clip (``omnigym.policies.agent_rl.losses``) minus ``entropy_coeff``
        x the mean token entropy; a subclass returns another objective."""
        return LossConfig(clip_low=config.clip_param, clip_high=config.clip_param, entropy_coef=config.entropy_coeff)

    def reference_logp(self, module_id, batch) -> torch.Tensor:
        """Log-probs of the batch's replies under the LM as it was when
        training started (a frozen copy, made on first use): the KL term's reference."""
        module = self.module[module_id].unwrapped()
        if not hasattr(self, "_reference"):
            import copy
            self._reference = copy.deepcopy(module.lm).eval().requires_grad_(False)
        lm, module.lm = module.lm, self._reference
        try:
            with torch.no_grad():
                return module._forward_train(batch)[TOKEN_LOGP]
        finally:
            module.lm = lm


class TokenPPOConfig(AlgorithmConfig):
    """``TokenPPO``'s settings: AlgorithmConfig's (``lr``, ``gamma``,
    ``grad_clip``, ``num_epochs``, ``minibatch_size``: steps, None = the
    whole batch) plus ``episodes_per_iteration``, ``clip_param``,
    ``entropy_coeff``."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or TokenPPO)
        self.episodes_per_iteration = 16   # complete episodes sampled per train() call, over all env runners
        self.clip_param = 0.2
        self.entropy_coeff = 0.0
        self.lr = 1e-5
        self.gamma = 1.0                   # replies are the steps; the env's reward says when it is done
        self.num_epochs = 1
        self.minibatch_size = None
        self.shuffle_batch_per_epoch = True
        self.grad_clip = 1.0
        self.batch_mode = "complete_episodes"

    def training(self, *, episodes_per_iteration=NotProvided, clip_param=NotProvided, entropy_coeff=NotProvided,
                 **kwargs) -> "TokenPPOConfig":
        super().training(**kwargs)
        if episodes_per_iteration is not NotProvided:
            self.episodes_per_iteration = int(episodes_per_iteration)
        if clip_param is not NotProvided:
            self.clip_param = float(clip_param)
        if entropy_coeff is not NotProvided:
            self.entropy_coeff = float(entropy_coeff)
        return self

    def validate(self) -> None:
        super().validate()
        if self.episodes_per_iteration < 1:
            raise ValueError(f"episodes_per_iteration must be at least 1, got {self.episodes_per_iteration}")

    def get_default_learner_class(self):
        return TokenPPOLearner

    def get_default_rl_module_spec(self):
        return RLModuleSpec(module_class=LMRLModule)


class TokenPPO(Algorithm):
    """Sample complete episodes, compute advantages on the driver, update,
    sync the weights (module docstring)."""

    @classmethod
    def get_default_config(cls) -> TokenPPOConfig:
        return TokenPPOConfig()

    def training_step(self) -> None:
        config = self.config
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_metrics = self.sample_episodes()
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        write_step_column(episodes, Columns.ADVANTAGES, self.compute_advantages(episodes))
        steps = sum(len(e) for e in episodes)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.update(
                episodes=episodes,
                timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                    (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)},
                num_epochs=config.num_epochs,
                # A minibatch larger than the batch would repeat samples to fill it.
                minibatch_size=min(config.minibatch_size or steps, steps),
                shuffle_batch_per_epoch=config.shuffle_batch_per_epoch)
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)

    def sample_episodes(self) -> tuple[list, list]:
        """Complete episodes (at least ``episodes_per_iteration``) and each
        runner's metrics. The local runner samples only when there are no
        remote ones (it then holds the envs).

        ``sample(num_episodes=n)`` resets every sub-env and counts the first
        n episodes to finish; a sub-env that finishes early starts another
        one, so short episodes are over-represented and unfinished ones are
        dropped. Methods that compare the episodes of a group need each
        sub-env to play exactly one episode of its group's start: they
        override this (e.g. a runner that stops stepping finished sub-envs)."""
        per_runner = math.ceil(self.config.episodes_per_iteration / max(self.config.num_env_runners, 1))
        remote = self.env_runner_group.num_remote_workers() > 0
        results = self.env_runner_group.foreach_env_runner(
            lambda runner: (runner.sample(num_episodes=per_runner), runner.get_metrics()),
            local_env_runner=not remote)
        return [e for episodes, _ in results for e in episodes], [m for _, m in results]

    def compute_advantages(self, episodes: list) -> list[np.ndarray]:
        """One advantage per step of each episode: the discounted return-to-go,
        normalised over all steps of the batch."""
        returns = [returns_to_go(np.asarray(e.get_rewards(), dtype=np.float64), self.config.gamma) for e in episodes]
        flat = np.concatenate(returns) if returns else np.zeros(0)
        mean, std = (flat.mean(), flat.std()) if flat.size else (0.0, 0.0)
        return [((r - mean) / (std + 1e-6)).astype(np.float32) for r in returns]


def returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma * G_{t+1}`` for every step of one complete episode."""
    out = np.zeros_like(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def write_step_column(episodes: list, key: str, values: list[np.ndarray]) -> None:
    """Store one value per step in each episode's ``extra_model_outputs``:
    RLlib's learner connector copies every such column into the train batch,
    and slicing or sharding episodes keeps it aligned with its steps."""
    for episode, column in zip(episodes, values):
        if len(column) != len(episode):
            raise ValueError(f"{key}: {len(column)} values for an episode of {len(episode)} steps")
        lookback = episode.extra_model_outputs[TOKEN_LOGP].lookback
        padded = np.concatenate([np.zeros(lookback, dtype=np.float32), np.asarray(column, dtype=np.float32)])
        episode.extra_model_outputs[key] = InfiniteLookbackBuffer(data=padded, lookback=lookback)
