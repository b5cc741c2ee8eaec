"""Group-based agent RL for LM policies on RLlib: GRPO, Dr.GRPO, RLOO, GiGPO,
AEPO and SPO as one algorithm, ``GroupRL``, told apart by its config.

Each iteration:

1. **Group-exact sampling.** Every sub-env of every env runner is armed for
   exactly one episode (``episode_control.ArmedEpisodes``): with grouped
   resets (``groups.size`` = G) the G members of a group start from the
   same state, with the group schedule's k-th start in iteration k; with SPO
   (G = 1) the driver picks each sub-env's task by SPO's prioritised
   sampling. ``sample(num_episodes=number of sub-envs)`` then returns
   exactly one episode per sub-env, every group whole, whatever their
   lengths.
2. **Advantages on the driver**, before the update
   (``omnigym.policies.agent_rl.episodes.step_advantages``): group
   statistics see whole groups, which learner connectors would not once
   ``num_learners`` > 1 (RLlib shards and slices episodes between
   learners). An episode whose env raised is dropped and logged.
3. **Update** with the token-level loss of ``config.loss``
   (``omnigym.policies.agent_rl.losses``: PPO-clip, clip-higher, dual clip,
   GSPO, AEPO, Clip-Cov, KL-Cov; KL to the frozen initial policy when
   ``kl_coef`` > 0), then the weights go to the env runners.
4. SPO only: the tracker is updated with each task's policy drift, measured
   on the learner (the task's last reply under the policy then and now).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.columns import Columns

from omnigym import info_keys as K
from omnigym.policies.agent_rl.advantages import SPOTracker
from omnigym.policies.agent_rl.episodes import EpisodeRecord, EstimatorConfig, group_sizes, step_advantages
from omnigym.policies.agent_rl.losses import LossConfig
from omnigym.rllib.envs import sub_env_slot
from omnigym.rllib.episode_control import EPISODE_ERROR, SEED, ArmedEpisodes, find_wrapper, sub_envs
from omnigym.rllib.lm_algorithm import TokenPPO, TokenPPOConfig, TokenPPOLearner
from omnigym.rllib.lm_module import TOKEN_LOGP, TOKEN_MASK

log = logging.getLogger("omnigym.group_rl")
GROUP_METRICS = "group_rl"


class GroupRLLearner(TokenPPOLearner):
    """``TokenPPOLearner`` with the loss of ``config.loss`` (its KL term
    against the frozen initial LM when ``kl_coef`` > 0)."""

    def loss_config(self, config) -> LossConfig:
        return LossConfig(**{**config.loss, "entropy_coef": config.entropy_coeff})

    def replies_logp(self, batch: dict) -> np.ndarray:
        """[N, K] log-probs of ``batch``'s replies (numpy obs/actions/token_mask) under the current LM."""
        module = self.module[next(iter(self.module.keys()))].unwrapped()
        device = next(module.parameters()).device
        tensors = {Columns.OBS: {k: torch.as_tensor(v, device=device) for k, v in batch[Columns.OBS].items()},
                   Columns.ACTIONS: torch.as_tensor(batch[Columns.ACTIONS], device=device),
                   TOKEN_MASK: torch.as_tensor(batch[TOKEN_MASK], device=device)}
        with torch.no_grad():
            return module._forward_train(tensors)[TOKEN_LOGP].cpu().numpy()


class GroupRLConfig(TokenPPOConfig):
    """``TokenPPOConfig`` plus the estimator (``estimator`` and its options,
    ``EstimatorConfig``), the loss (``loss``: ``LossConfig`` options),
    ``group_size`` (set from the run's ``groups.size``), ``spo_rho_min`` and
    ``spo_tasks`` (SPO's task pool: the seeds it samples from)."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or GroupRL)
        self.estimator = {"estimator": "grpo"}
        self.loss = {}
        self.group_size = 1
        self.spo_rho_min = 0.875
        self.spo_tasks: list[int] = list(range(50))

    def training(self, *, estimator=NotProvided, loss=NotProvided, group_size=NotProvided,
                 spo_rho_min=NotProvided, spo_tasks=NotProvided, **kwargs) -> "GroupRLConfig":
        super().training(**kwargs)
        if estimator is not NotProvided:
            self.estimator = dict(estimator)
        if loss is not NotProvided:
            self.loss = dict(loss)
        if group_size is not NotProvided:
            self.group_size = int(group_size)
        if spo_rho_min is not NotProvided:
            self.spo_rho_min = float(spo_rho_min)
        if spo_tasks is not NotProvided:
            self.spo_tasks = [int(s) for s in spo_tasks]
        return self

    def validate(self) -> None:
        super().validate()
        estimator = self.estimator_config   # raises on an unknown estimator or option
        LossConfig(**self.loss)
        if estimator.estimator == "spo":
            if self.group_size != 1:
                raise ValueError(f"SPO samples one episode per task (groups.size=1), got groups.size={self.group_size}")
            if not self.spo_tasks:
                raise ValueError("SPO needs a task pool: algo.training.spo_tasks=[first, last] seeds")
        elif self.group_size < 2:
            raise ValueError(f"{estimator.estimator} compares the episodes of a group: set groups.size to 2 or "
                             f"more (it must divide env runners x resources.num_envs_per_env_runner)")

    @property
    def estimator_config(self) -> EstimatorConfig:
        return EstimatorConfig(**self.estimator)

    def get_default_learner_class(self):
        return GroupRLLearner


class GroupRL(TokenPPO):
    """Group-exact sampling, driver-side advantages, the configured loss (module docstring)."""

    @classmethod
    def get_default_config(cls) -> GroupRLConfig:
        return GroupRLConfig()

    def setup(self, config):
        super().setup(config)
        self.tracker = SPOTracker(self.config.spo_rho_min)
        self.snapshots: dict = {}   # SPO: task -> (obs, reply ids, reply mask, log-probs after its last update)

    # --- sampling --------------------------------------------------------------------------------

    def sample_episodes(self) -> tuple[list, list]:
        """One armed episode per sub-env of every runner; failed episodes dropped."""
        remote = self.env_runner_group.num_remote_workers() > 0
        per_runner = int(self.config.num_envs_per_env_runner)
        seeds = self._spo_seeds(per_runner * max(self.config.num_env_runners, 1)) \
            if self.config.estimator_config.estimator == "spo" else None
        iteration = int(self.iteration)

        def sample(runner):
            for index, env in enumerate(sub_envs(runner)):
                slot = sub_env_slot(int(runner.worker_index), index, per_runner)
                find_wrapper(env, ArmedEpisodes).arm(seed=None if seeds is None else seeds[slot], episode=iteration)
            return runner.sample(num_episodes=len(sub_envs(runner)), force_reset=True), runner.get_metrics()

        results = self.env_runner_group.foreach_env_runner(sample, local_env_runner=not remote)
        episodes = [e for eps, _ in results for e in eps]
        kept = [e for e in episodes if EPISODE_ERROR not in (e.get_infos(-1) or {})]
        self.metrics.log_value((GROUP_METRICS, "episodes_dropped"), len(episodes) - len(kept), window=1)
        return kept, [m for _, m in results]

    def _spo_seeds(self, count: int) -> list[int]:
        """SPO's prioritised draw of ``count`` tasks (without replacement while the pool allows)."""
        pool = list(self.config.spo_tasks)
        weights = self.tracker.weights(pool)
        rng = np.random.default_rng([int(self.config.seed or 0), int(self.iteration)])
        return [int(s) for s in rng.choice(pool, size=count, replace=count > len(pool), p=weights / weights.sum())]

    # --- advantages ------------------------------------------------------------------------------

    def compute_advantages(self, episodes: list) -> list[np.ndarray]:
        records = [episode_record(e) for e in episodes]
        sizes = group_sizes(records)
        self.metrics.log_dict({"groups": len(sizes), "group_size_min": min(sizes.values(), default=0),
                               "success_rate": float(np.mean([r.success for r in records])) if records else 0.0},
                              key=GROUP_METRICS, window=1)
        self._records, self._last_episodes = records, episodes
        return step_advantages(records, self.config.estimator_config, self.tracker)

    def training_step(self) -> None:
        super().training_step()
        if self.config.estimator_config.estimator == "spo":
            self._update_tracker()

    # --- SPO -------------------------------------------------------------------------------------

    def _update_tracker(self) -> None:
        """After the update: each task's drift D (mean |log-ratio| of its
        previous reply, then vs now), the tracker update with rho(D), and the
        new snapshot: this visit's first reply under the updated policy."""
        episodes, records = self._last_episodes, self._records
        if not episodes:
            return
        stored = [(r.task, self.snapshots[r.task]) for r in records if r.task in self.snapshots]
        rows = [first_reply(e) for e in episodes]
        logp = self._replies_logp([s for _, s in stored] + rows)
        drift = {}
        for (task, (_, _, mask, then)), now in zip(stored, logp[:len(stored)]):
            drift[task] = float(np.abs(then - now)[mask].mean()) if mask.any() else 0.0
        for record, row, now in zip(records, rows, logp[len(stored):]):
            self.tracker.update(record.task, float(record.success), drift.get(record.task, 0.0))
            self.snapshots[record.task] = (row[0], row[1], row[2], now)
        self.metrics.log_value((GROUP_METRICS, "spo_drift_mean"), float(np.mean(list(drift.values()) or [0.0])),
                               window=1)

    def _replies_logp(self, rows: list) -> np.ndarray:
        obs = {k: np.stack([r[0][k] for r in rows]) for k in rows[0][0]}
        batch = {Columns.OBS: obs, Columns.ACTIONS: np.stack([r[1] for r in rows]),
                 TOKEN_MASK: np.stack([r[2] for r in rows])}
        results = self.learner_group.foreach_learner(lambda learner: learner.replies_logp(batch))
        return next(iter(results)).get()

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        state["spo_tracker"] = self.tracker.state_dict()
        state["spo_snapshots"] = self.snapshots
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if "spo_tracker" in state:
            self.tracker.load_state_dict(state["spo_tracker"])
            self.snapshots = state.get("spo_snapshots", {})


def episode_record(episode) -> EpisodeRecord:
    """An RLlib episode as the estimators see it (``get_infos()``: the reset's info, then one per step)."""
    infos = episode.get_infos()
    first = infos[0]
    return EpisodeRecord.from_infos(first.get(K.GROUP, id(episode)), first.get(SEED, first.get(K.TASK_ID)),
                                    episode.get_rewards(), infos)


def first_reply(episode) -> tuple:
    """(observation, reply ids, reply mask) of an episode's first step: SPO's snapshot of a visit."""
    obs = episode.get_observations(0)
    return ({k: np.asarray(v) for k, v in obs.items()}, np.asarray(episode.get_actions(0)),
            np.asarray(episode.get_extra_model_outputs(TOKEN_MASK, 0), dtype=bool))

