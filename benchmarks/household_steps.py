"""Household throughput on one core: steps/s per mode, with admissible
actions, observations and state keys computed on every step, plus the
planner's time per task. CartPole-v1 is measured in the same run as a
reference, so the ratios stay meaningful on a noisy machine.

    .venv/bin/python benchmarks/household_steps.py [--steps 20000] [--out reports/bench]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from omnigym.bench import bench, format_bench, pin_to_one_core


def planner_seconds(n_tasks: int = 60) -> dict:
    """Mean and worst time for one shortest plan over the train panel."""
    from omnigym.environments.household.env import HouseholdEnv
    from omnigym.environments.household.planner import plan
    env = HouseholdEnv(split="train")
    times, lengths = [], []
    for seed in range(n_tasks):
        env.reset(seed=seed)
        start = time.perf_counter()
        lengths.append(len(plan(env.world, env.task.goal)))
        times.append(time.perf_counter() - start)
    return {"tasks": n_tasks, "mean_s": sum(times) / n_tasks, "max_s": max(times),
            "mean_plan_length": sum(lengths) / n_tasks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="household/Household-v0")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="also write bench.json here")
    args = ap.parse_args()
    pin_to_one_core()
    result = bench(args.env, steps=args.steps, repeats=args.repeats)
    result["planner"] = planner_seconds()
    print(format_bench(result))
    p = result["planner"]
    print(f"  planner: {p['mean_s'] * 1000:.1f} ms mean, {p['max_s'] * 1000:.0f} ms worst per task "
          f"({p['tasks']} train tasks, mean plan length {p['mean_plan_length']:.1f})")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "bench.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
