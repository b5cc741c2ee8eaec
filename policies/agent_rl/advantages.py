"""Advantage estimators of group-based agent RL, as pure functions over rows.

A row is one generated reply: one step of one episode. Rows carry the id of
the group they were sampled in (``groups``: episodes reset to the same start
state), and the estimators return one advantage per row, which the losses
broadcast over the row's tokens. Formulas and defaults follow the reference
implementations (verl ``core_algos.py``, verl-agent ``core_gigpo.py``, verl's
SPO recipe); where those differ from the papers the docstring says which one
is followed and the other is an option.
"""
from __future__ import annotations

import difflib
from collections import defaultdict
from typing import Hashable, Sequence

import numpy as np

EPS = 1e-6


def _members(keys: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        members[key].append(i)
    return members


def grpo(scores, groups: Sequence[Hashable], *, std: bool = True, stats_rows=None) -> np.ndarray:
    """GRPO: ``(s - mean_g) / (std_g + 1e-6)`` with the unbiased std of the
    row's group, or ``s - mean_g`` without ``std`` (Dr.GRPO). A group whose
    statistics rest on one score has mean 0 and std 1, so its advantage is
    the raw score (verl). ``stats_rows`` (row indices) limits the rows the
    statistics are taken over; every row is still normalised by them."""
    scores = np.asarray(scores, dtype=np.float64)
    counted = set(range(len(scores)) if stats_rows is None else stats_rows)
    out = np.empty_like(scores)
    for rows in _members(groups).values():
        s = scores[[i for i in rows if i in counted]]
        mean, sd = (s.mean(), s.std(ddof=1)) if len(s) > 1 else (0.0, 1.0)
        out[rows] = (scores[rows] - mean) / (sd + EPS) if std else scores[rows] - mean
    return out


def dr_grpo(scores, groups: Sequence[Hashable]) -> np.ndarray:
    """Dr.GRPO's advantage: GRPO centred on the group mean, not divided by its std."""
    return grpo(scores, groups, std=False)


def rloo(scores, groups: Sequence[Hashable]) -> np.ndarray:
    """RLOO: each row's score minus the mean of the other rows of its group
    (``n/(n-1) * (s - mean)``); a group of one row keeps its raw score."""
    scores = np.asarray(scores, dtype=np.float64)
    out = scores.copy()
    for rows in _members(groups).values():
        n = len(rows)
        if n > 1:
            out[rows] = n / (n - 1) * (scores[rows] - scores[rows].mean())
    return out


def discounted_returns(rewards, episodes: Sequence[Hashable], gamma: float) -> np.ndarray:
    """``G_t = sum_k gamma^(k-t) r_k`` within each episode; rows of an episode in step order."""
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.empty_like(rewards)
    for rows in _members(episodes).values():
        running = 0.0
        for i in reversed(rows):
            running = rewards[i] + gamma * running
            out[i] = running
    return out


def similarity_anchors(texts: Sequence[str], groups: Sequence[Hashable], threshold: float = 0.95) -> list[tuple]:
    """GiGPO's text grouping for envs without a state key: within a group, a
    step joins the first cluster whose first member's text has a
    ``difflib`` ratio >= ``threshold`` with its own, else opens a new one.
    Exact text equality is ``threshold=1.0``."""
    anchors: list[tuple] = [()] * len(texts)
    for group, rows in _members(groups).items():
        firsts: list[str] = []
        for i in rows:
            for c, first in enumerate(firsts):
                if texts[i] == first or (threshold < 1.0 and
                                         difflib.SequenceMatcher(None, texts[i], first).ratio() >= threshold):
                    break
            else:
                c = len(firsts)
                firsts.append(texts[i])
            anchors[i] = (group, c)
    return anchors


def gigpo(episode_returns, step_rewards, *, groups: Sequence[Hashable], episodes: Sequence[Hashable],
          anchors: Sequence[Hashable], valid=None, gamma: float = 0.95, omega: float = 1.0,
          std: bool = False, invalid_penalty: float = 0.1, cross_steps: bool = True) -> np.ndarray:
    """GiGPO: ``A = A_episode + omega * A_step`` per step row.

    ``episode_returns``: each row's episode return; ``step_rewards``: each
    row's own reward; ``episodes``: the row's episode id (rows in step
    order); ``anchors``: the state a step was taken from -- rows of one group
    with equal anchors form a step group (the env's ``state_key``, or
    ``similarity_anchors`` on text). An invalid step (``valid`` false) loses
    ``invalid_penalty`` from both its score and its reward (verl-agent; not in
    the paper). Episode statistics run over all rows of a group, so long
    episodes weigh more (verl-agent's ``compute_mean_std_cross_steps``);
    ``cross_steps=False`` takes them over one score per episode, its first
    row's (the paper's per-episode statistics). A step
    group of one row gets step advantage 0; ``std`` divides both levels by
    their std (``mean_std_norm``)."""
    n = len(groups)
    penalty = invalid_penalty * (1.0 - np.asarray(valid if valid is not None else np.ones(n), dtype=np.float64))
    scores = np.asarray(episode_returns, dtype=np.float64) - penalty
    first_rows = None if cross_steps else [rows[0] for rows in _members(episodes).values()]
    episode_adv = grpo(scores, groups, std=std, stats_rows=first_rows)
    returns = discounted_returns(np.asarray(step_rewards, dtype=np.float64) - penalty, episodes, gamma)
    step_adv = np.zeros(n)
    for rows in _members([(g, a) for g, a in zip(groups, anchors)]).values():
        if len(rows) > 1:
            g = returns[rows]
            step_adv[rows] = (g - g.mean()) / (g.std(ddof=1) + EPS) if std else g - g.mean()
    return episode_adv + omega * step_adv


class SPOTracker:
    """SPO's per-task value tracker: a Beta-like pair (alpha, beta) per task,
    discounted by rho each visit, with rho adapted to how far the policy has
    moved since the task's last visit (verl's SPO recipe).

    ``advantages`` uses the values *before* this batch's rewards (``r - v``,
    then normalised over the batch); ``update`` runs after the policy update
    with each task's policy drift ``D`` (mean |log-ratio| of the task's last
    reply under the policy then and now). ``weights`` are the prioritised
    sampling weights ``sqrt(v (1 - v)) + 0.05``. Rewards must lie in [0, 1].
    A task never seen starts at alpha = beta = 0.5 (v = 0.5) -- the recipe's
    prior for a task with no offline samples -- instead of weight 0, so that
    runs without an offline pass still sample every task."""

    D_HALF, RHO_MAX, WEIGHT_FLOOR = 0.06, 0.96, 0.05

    def __init__(self, rho_min: float = 0.875):
        self.rho_min = rho_min
        self.alpha: dict[Hashable, float] = {}
        self.beta: dict[Hashable, float] = {}

    def init_offline(self, task: Hashable, successes: Sequence[float]) -> None:
        """Start a task from ``n0`` offline samples: v = (sum + 1/2) / (n0 + 1), alpha + beta = 1 / (1 - rho_min)."""
        n0, hits, n_eff = len(successes), float(np.sum(np.asarray(successes) > 0)), 1.0 / (1.0 - self.rho_min)
        if n0 == 0:
            self.alpha[task] = self.beta[task] = 0.5
            return
        self.alpha[task] = n_eff * (hits + 0.5) / (n0 + 1)
        self.beta[task] = n_eff * (n0 - hits + 0.5) / (n0 + 1)

    def value(self, task: Hashable) -> float:
        a, b = self.alpha.get(task, 0.5), self.beta.get(task, 0.5)
        return a / (a + b)

    def weights(self, tasks: Sequence[Hashable]) -> np.ndarray:
        v = np.array([self.value(t) for t in tasks])
        return np.sqrt(v * (1.0 - v)) + self.WEIGHT_FLOOR

    def advantages(self, tasks: Sequence[Hashable], rewards) -> np.ndarray:
        a = np.asarray(rewards, dtype=np.float64) - np.array([self.value(t) for t in tasks])
        sd = a.std(ddof=1) if len(a) > 1 else 0.0
        return (a - a.mean()) / (sd + 1e-8)

    def rho(self, drift: float) -> float:
        return float(np.clip(2.0 ** (-drift / self.D_HALF), self.rho_min, self.RHO_MAX))

    def update(self, task: Hashable, reward: float, drift: float) -> None:
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"SPO's tracker needs rewards in [0, 1], got {reward}; rescale the env's reward")
        rho = self.rho(drift)
        self.alpha[task] = rho * self.alpha.get(task, 0.5) + reward
        self.beta[task] = rho * self.beta.get(task, 0.5) + (1.0 - reward)

    def state_dict(self) -> dict:
        return {"rho_min": self.rho_min, "alpha": dict(self.alpha), "beta": dict(self.beta)}

    def load_state_dict(self, state: dict) -> None:
        self.rho_min, self.alpha, self.beta = state["rho_min"], dict(state["alpha"]), dict(state["beta"])
