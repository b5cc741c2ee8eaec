"""AEPO's branching decisions against hand-computed cases (policies/agent_rl/branching.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from omnigym.policies.agent_rl.branching import BranchController, global_samples, segment_entropy


def test_segment_entropy_sums_top_k_mass_over_the_first_positions():
    # two positions, top-2 each: probabilities 0.5, 0.25 and 0.9, 0.05; a third position is past `positions`
    top = np.log([[0.5, 0.25], [0.9, 0.05], [0.1, 0.1]])
    expect = -(0.5 * math.log(0.5) + 0.25 * math.log(0.25) + 0.9 * math.log(0.9) + 0.05 * math.log(0.05))
    assert segment_entropy(top, vocab_size=1000, positions=2) == pytest.approx(expect / math.log(1000))
    assert segment_entropy(np.zeros((0, 10)), vocab_size=1000) == 0.0


def test_global_samples_split_the_budget_by_root_against_tool_entropy():
    assert global_samples(12, 1.0, 1.0) == 7                      # int(12 * 0.5) + 1
    assert global_samples(12, 3.0, 1.0) == int(12 / (1 + math.exp(-1.0))) + 1 == 9
    assert global_samples(12, -50.0, 0.0) == 1 and global_samples(12, 50.0, 0.0) == 12   # clipped to [1, k]


def test_branch_probability_adds_entropy_rise_and_damps_consecutive_branching():
    c = BranchController(threshold=0.5, entropy_weight=0.2, damping=0.05)
    c.start("path-a", 1.0)
    assert c.probability("path-a", "q", entropy=2.0, uniform=0.3) == pytest.approx(0.3 + 0.2 * 1.0)
    c.consecutive["q"] = 4
    assert c.probability("path-a", "q", entropy=2.0, uniform=0.3) == pytest.approx(0.5 * (1 - 0.2))
    assert c.probability("path-a", "q", entropy=20.0, uniform=0.9) == 1.0           # clipped
    c.consecutive["q"] = 30                                                          # damping floors at 0
    assert c.probability("path-a", "q", entropy=20.0, uniform=0.9) == 0.0


def test_consecutive_branch_counts_grow_while_a_prompt_branches_and_reset_when_it_does_not():
    c = BranchController(threshold=0.0, rng=np.random.default_rng(0))   # threshold 0: every decision branches
    c.start("p1", 0.5)
    assert c.decide("p1", "q1", 0.5)
    c.end_round(["q1", "q2"])
    assert c.consecutive == {"q1": 1, "q2": 0}
    c.decide("p1", "q1", 0.5)
    c.end_round(["q1", "q2"])
    assert c.consecutive["q1"] == 2
    c.end_round(["q1", "q2"])                                            # no branch this round
    assert c.consecutive["q1"] == 0
    never = BranchController(threshold=1.01)
    assert not never.decide("p", "q", 5.0)
