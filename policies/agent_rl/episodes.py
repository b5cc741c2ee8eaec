"""From finished episodes to one advantage per step, for every estimator.

Trainers (the RLlib algorithm, the reference loop) reduce each finished
episode to an ``EpisodeRecord`` (its group, task, per-step rewards, anchor
keys, observation texts, validity and success) and call
``step_advantages(records, config)``: the estimator of ``advantages.py``
named by ``config.estimator``, applied at the level it is defined at
(episode scores for GRPO / Dr.GRPO / RLOO / SPO, broadcast to the episode's
steps; step rows for GiGPO).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from omnigym import info_keys as K
from omnigym.policies.agent_rl import advantages as A

ESTIMATORS = ("grpo", "drgrpo", "rloo", "gigpo", "spo")
ANCHORS = ("state_key", "text")


@dataclass
class EpisodeRecord:
    group: Hashable                 # episodes reset to the same start share it
    task: Hashable                  # what SPO tracks (the start's seed/task)
    rewards: np.ndarray             # one per step
    anchors: list                   # the env's state_key of the state each step acted in
    texts: list[str] = field(default_factory=list)   # the observation each step acted on (text anchors)
    valid: np.ndarray | None = None  # False where the step's action was invalid
    success: bool = False

    @property
    def score(self) -> float:
        return float(np.sum(self.rewards))

    @classmethod
    def from_infos(cls, group: Hashable, task: Hashable, rewards, infos: Sequence[dict]) -> "EpisodeRecord":
        """A finished episode from its rewards and its infos: ``infos[t]`` is
        the info of the state step t acted in (``infos[0]`` the reset's), the
        last one the final state's."""
        steps = len(rewards)
        return cls(group=group, task=task, rewards=np.asarray(rewards, dtype=np.float64),
                   anchors=[infos[t].get(K.STATE_KEY) for t in range(steps)],
                   texts=[observation_text(infos[t]) for t in range(steps)],
                   valid=np.array([not infos[t + 1].get(K.INVALID_ACTION, False) for t in range(steps)]),
                   success=bool(infos[-1].get(K.SUCCESS, False)))


def observation_text(info: dict) -> str:
    """The observation a step acted on, as the env's turn wrote it (its last
    user message), else its state key: what text anchors compare."""
    users = [m.get("content") or "" for m in info.get(K.TURN) or [] if m.get("role") == "user"]
    return users[-1] if users else str(info.get(K.STATE_KEY, ""))


@dataclass
class EstimatorConfig:
    estimator: str = "grpo"
    std: bool = True                # GRPO: divide by the group's std (False: mean-only)
    gamma: float = 0.95             # GiGPO: discount of step returns
    omega: float = 1.0              # GiGPO: weight of the step advantage
    step_std: bool = False          # GiGPO: mean_std_norm at both levels (False: mean_norm, its YAML default)
    invalid_penalty: float = 0.1    # GiGPO: subtracted from an invalid step's score and reward (verl-agent)
    cross_steps: bool = True        # GiGPO: episode statistics over all rows (verl-agent) or one per episode
    anchors: str = "state_key"      # GiGPO step groups: the env's state_key, or similarity of observation text
    similarity: float = 0.95        # anchors=text: difflib ratio that joins a cluster (1.0: exact text)

    def __post_init__(self):
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
        if self.anchors not in ANCHORS:
            raise ValueError(f"anchors must be one of {', '.join(ANCHORS)}, got {self.anchors!r}")


def step_advantages(records: Sequence[EpisodeRecord], config: EstimatorConfig,
                    tracker: A.SPOTracker | None = None) -> list[np.ndarray]:
    """One float32 array per record, one advantage per step."""
    if not records:
        return []
    lengths = [len(r.rewards) for r in records]
    if config.estimator == "gigpo":
        rows = _gigpo_rows(records, config)
        return [a.astype(np.float32) for a in np.split(rows, np.cumsum(lengths)[:-1])]
    groups = [r.group for r in records]
    if config.estimator == "spo":
        if tracker is None:
            raise ValueError("estimator=spo needs its SPOTracker")
        per_episode = tracker.advantages([r.task for r in records], [float(r.success) for r in records])
    else:
        scores = [r.score for r in records]
        per_episode = {"grpo": lambda: A.grpo(scores, groups, std=config.std),
                       "drgrpo": lambda: A.dr_grpo(scores, groups),
                       "rloo": lambda: A.rloo(scores, groups)}[config.estimator]()
    return [np.full(n, a, dtype=np.float32) for n, a in zip(lengths, per_episode)]


def _gigpo_rows(records: Sequence[EpisodeRecord], config: EstimatorConfig) -> np.ndarray:
    groups, episodes, anchors, texts, rewards, returns, valid = [], [], [], [], [], [], []
    for i, r in enumerate(records):
        n = len(r.rewards)
        groups += [r.group] * n
        episodes += [i] * n
        anchors += list(r.anchors)
        texts += list(r.texts) if r.texts else [""] * n
        rewards += list(r.rewards)
        returns += [r.score] * n
        valid += list(r.valid) if r.valid is not None else [True] * n
    if config.anchors == "text":
        anchors = A.similarity_anchors(texts, groups, config.similarity)
    return A.gigpo(returns, rewards, groups=groups, episodes=episodes, anchors=anchors, valid=valid,
                   gamma=config.gamma, omega=config.omega, std=config.step_std,
                   invalid_penalty=config.invalid_penalty, cross_steps=config.cross_steps)


def group_sizes(records: Sequence[EpisodeRecord]) -> dict:
    """How many episodes each group holds (integrity checks and reports)."""
    sizes: dict = {}
    for r in records:
        sizes[r.group] = sizes.get(r.group, 0) + 1
    return sizes
