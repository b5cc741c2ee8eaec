"""AEPO's entropy-balanced rollout decisions, as pure functions and one
small stateful controller (ARPO/AEPO's ``vllm_rollout_with_tools.py``).

- ``segment_entropy``: the uncertainty of a generated segment -- the
  entropy mass of the top-k log-probs at each of its first positions,
  normalised by ``log |V|``;
- ``global_samples``: how many of a prompt's ``k`` rollouts start from the
  root (the rest are kept for branching), from the root's entropy against
  the mean entropy after tool responses;
- ``BranchController``: after each tool/env response, whether a path
  branches: ``p = U(0, 1) + w * (H_now - H_init)``, damped by
  ``1 - 0.05 * l`` where ``l`` counts the prompt's consecutive branching
  rounds, branch iff ``p >= threshold``.

Defaults are the released 14B script's: ``k=12``, beam 2, threshold 0.5,
entropy weight 0.2; top-10 log-probs over the first 20 positions.
"""
from __future__ import annotations

import math
from typing import Hashable

import numpy as np

POSITIONS = 20   # AEPO reads the top-10 log-probs of a segment's first 20 tokens


def segment_entropy(top_logprobs, vocab_size: int, positions: int = POSITIONS) -> float:
    """``-sum p log p`` over the top-k log-probs of the first ``positions``
    tokens of a segment (``[tokens, k]``, not renormalised), divided by
    ``log vocab_size``. An empty segment has entropy 0."""
    lp = np.asarray(top_logprobs, dtype=np.float64)[:positions]
    if lp.size == 0:
        return 0.0
    return float(-(np.exp(lp) * lp).sum() / math.log(vocab_size))


def global_samples(k: int, root_entropy: float, mean_tool_entropy: float, beta: float = 0.5) -> int:
    """Rollouts sampled from the root: ``clip(int(k * sigmoid(beta * (H_root - H_tool))) + 1, 1, k)``;
    the other ``k - m`` are the branching budget. Uncertain roots get more global samples."""
    m = int(k / (1.0 + math.exp(-beta * (root_entropy - mean_tool_entropy)))) + 1
    return max(1, min(k, m))


class BranchController:
    """Branching decisions of one rollout batch. ``start(path, entropy)``
    records a path's initial entropy; ``decide(path, prompt,
    entropy)`` says whether it branches after a tool response;
    ``end_round()`` updates each prompt's consecutive-branch count."""

    def __init__(self, threshold: float = 0.5, entropy_weight: float = 0.2, damping: float = 0.05,
                 rng: np.random.Generator | None = None):
        self.threshold, self.entropy_weight, self.damping = threshold, entropy_weight, damping
        self.rng = rng or np.random.default_rng()
        self.initial: dict[Hashable, float] = {}
        self.consecutive: dict[Hashable, int] = {}
        self._branched_now: set[Hashable] = set()

    def start(self, path: Hashable, entropy: float) -> None:
        self.initial[path] = entropy

    def probability(self, path: Hashable, prompt: Hashable, entropy: float, uniform: float) -> float:
        p = uniform + self.entropy_weight * (entropy - self.initial.get(path, entropy))
        p *= max(0.0, 1.0 - self.damping * self.consecutive.get(prompt, 0))
        return min(1.0, max(0.0, p))

    def decide(self, path: Hashable, prompt: Hashable, entropy: float) -> bool:
        branch = self.probability(path, prompt, entropy, float(self.rng.random())) >= self.threshold
        if branch:
            self._branched_now.add(prompt)
        return branch

    def end_round(self, prompts) -> None:
        for prompt in prompts:
            self.consecutive[prompt] = self.consecutive.get(prompt, 0) + 1 if prompt in self._branched_now else 0
        self._branched_now.clear()
