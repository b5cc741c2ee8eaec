"""Sampling-based model-predictive control for any env with snapshots.

Works on every env whose ``unwrapped`` has ``get_state()`` / ``set_state(s)``
(every ``RobotEnv``) and a ``Box`` action space: the env itself is the model.
A planning call snapshots the env, simulates candidate action sequences from
that snapshot, restores it and returns the first action of the best plan, so
the env is left exactly as it was (its step counter included).

- ``evaluate_sequences`` scores given action sequences (the building block:
  planners of structured candidates, e.g. push primitives, use it directly).
- ``SamplingMPC`` optimises an open-loop sequence of ``horizon`` actions with
  the cross-entropy method (``method="cem"``: refit a Gaussian to the elite
  samples) or MPPI (``method="mppi"``: exponentially cost-weighted mean), warm
  started from the previous call's plan shifted by one step.

Costs: ``cost(env) -> float`` is called after every simulated step (summed,
discounted by ``discount``); without one, the step's ``-reward`` is used.
``step(env, action)`` replaces ``env.step`` when an env has a cheaper
physics-only path (it must then be paired with a ``cost``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

CostFn = Callable[[object], float]
StepFn = Callable[[object, np.ndarray], None]


def evaluate_sequences(env, sequences: Sequence[np.ndarray], cost: CostFn | None = None,
                       step: StepFn | None = None, discount: float = 1.0) -> np.ndarray:
    """Total cost of each action sequence, every one simulated from the env's
    current state; the state is restored afterwards.

    A branch that terminates stops there and keeps paying its last step cost
    for the steps it has left (a reached goal stays reached; a failure stays
    failed), so sequences of one length compare fairly."""
    if step is not None and cost is None:
        raise ValueError("a custom step function returns no reward: pass a cost function too")
    base = env.unwrapped
    snapshot = base.get_state()
    totals = np.zeros(len(sequences))
    try:
        for i, seq in enumerate(sequences):
            base.set_state(snapshot)
            total, weight = 0.0, 1.0
            for t, action in enumerate(seq):
                if step is not None:
                    step(base, action)
                    terminated = False
                    c = cost(base)
                else:
                    _, reward, terminated, _, _ = base.step(action)
                    c = cost(base) if cost is not None else -float(reward)
                total += weight * c
                weight *= discount
                if terminated:  # absorbing: the remaining steps cost what this one did
                    for _ in range(len(seq) - t - 1):
                        total += weight * c
                        weight *= discount
                    break
            totals[i] = total
    finally:
        base.set_state(snapshot)
    return totals


class SamplingMPC:
    """CEM / MPPI over open-loop action sequences (see the module docstring).

    ``noise`` is the initial (and, in MPPI, the fixed) standard deviation as
    a fraction of each action dimension's range; ``min_noise`` keeps CEM from
    collapsing. ``planner.plan(env)`` returns the action to take now;
    ``planner.last_cost`` is the winning sequence's cost."""

    def __init__(self, action_space, *, horizon: int = 10, samples: int = 32, iterations: int = 2,
                 method: str = "cem", elite_frac: float = 0.2, temperature: float = 1.0,
                 noise: float = 0.3, min_noise: float = 0.02, cost: CostFn | None = None,
                 step: StepFn | None = None, discount: float = 1.0, seed: int | None = None):
        if method not in ("cem", "mppi"):
            raise ValueError(f"method must be 'cem' or 'mppi', got {method!r}")
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError("SamplingMPC needs a bounded Box action space")
        self.low = np.asarray(action_space.low, dtype=np.float64)
        self.high = np.asarray(action_space.high, dtype=np.float64)
        self.horizon, self.samples, self.iterations = int(horizon), int(samples), int(iterations)
        self.method, self.temperature = method, float(temperature)
        self.n_elite = max(2, int(round(elite_frac * self.samples)))
        self.noise, self.min_noise = float(noise), float(min_noise)
        self.cost, self.step, self.discount = cost, step, float(discount)
        self.rng = np.random.default_rng(seed)
        self.last_cost = float("nan")
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Forget the warm start (call at every episode start)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.mean = np.tile((self.low + self.high) / 2, (self.horizon, 1))

    def plan(self, env) -> np.ndarray:
        span = self.high - self.low
        mean = self.mean.copy()
        std = np.tile(self.noise * span, (self.horizon, 1))
        best_seq, best_cost = mean, np.inf
        for _ in range(self.iterations):
            eps = self.rng.standard_normal((self.samples, self.horizon, len(span)))
            seqs = np.clip(mean + eps * std, self.low, self.high)
            seqs[0] = np.clip(mean, self.low, self.high)  # the incumbent always competes
            costs = evaluate_sequences(env, seqs, self.cost, self.step, self.discount)
            i = int(np.argmin(costs))
            if costs[i] < best_cost:
                best_seq, best_cost = seqs[i].copy(), float(costs[i])
            if self.method == "cem":
                elite = seqs[np.argsort(costs)[:self.n_elite]]
                mean = elite.mean(axis=0)
                std = np.maximum(elite.std(axis=0), self.min_noise * span)
            else:  # MPPI: softmin weights, costs shifted for numerical safety
                w = np.exp(-(costs - costs.min()) / max(self.temperature, 1e-12))
                mean = np.einsum("s,sha->ha", w / w.sum(), seqs)
        # CEM acts on the best sequence it simulated; MPPI on its weighted mean.
        plan = best_seq if self.method == "cem" else np.clip(mean, self.low, self.high)
        self.last_cost = best_cost
        # Warm start: the next call begins from this plan, one step later.
        self.mean = np.concatenate([plan[1:], plan[-1:]], axis=0)
        return plan[0].copy()
