"""benchmarks/agent_rl_reference.py (the plain group-RL loop) and
benchmarks/agent_rl_compare.py's table: whole groups, ratio 1 on the first
minibatch, branching, sampled evaluation; pooled Wilson intervals."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import agent_rl_compare  # noqa: E402
import agent_rl_reference as ref  # noqa: E402


@pytest.mark.parametrize("estimator,branching", [("gigpo", None), ("grpo", {"initial": 1})])
def test_the_reference_loop_trains_whole_groups_and_evaluates(estimator, branching):
    args = ref.Args(env="household/PutIn-v0", env_kwargs={"mode": "text", "max_episode_steps": 3}, tiny="llama",
                    tiny_hidden=32, tiny_layers=2, max_prompt_tokens=768, group_size=2, groups=2, iterations=2,
                    estimator={"estimator": estimator}, branching=branching, eval_seeds={"test": [100000, 3]})
    history, evaluation = ref.train(args, progress=False)
    assert [h["iteration"] for h in history] == [1, 2]
    for h in history:
        assert h["episodes"] == 4 and h["group_size_min"] == 2 and h["dropped"] == 0
        assert abs(h["approx_kl"]) < 1e-6        # one minibatch, the weights that sampled: ratio 1
        assert h["generation_s"] > 0 and h["update_s"] > 0
    if branching:
        assert all(h["branched"] <= 2 for h in history)
    assert evaluation["test"]["episodes"] == 3 and 0 <= evaluation["test"]["success_rate"] <= 1


def test_the_comparison_table_pools_seeds_with_a_wilson_interval():
    results = {"grpo|0": {"algo": "grpo", "seed": 0, "minutes": 2.0, "curve": [0.0, 0.5],
                          "panels": {"train": {"successes": 3, "episodes": 10}}},
               "grpo|1": {"algo": "grpo", "seed": 1, "minutes": 4.0, "curve": [0.5, 1.0],
                          "panels": {"train": {"successes": 7, "episodes": 10}}}}
    table = agent_rl_compare.markdown(results, ["train", "test"])
    row = [line for line in table.splitlines() if line.startswith("| grpo")][0]
    assert "50% [30, 70] (30, 70)" in row        # 10 of 20: Wilson [29.9, 70.1]
    assert "| – |" in row and "25% → 75% (2)" in row and row.endswith("| 3.0 |")
