"""Group-RL algorithms side by side on one env: the same start model, the
same budget, several seeds; success on a train and a held-out panel and the
learning curves, one table. Resumable: finished runs and evaluations are
kept in ``--out`` and skipped.

    python benchmarks/agent_rl_compare.py --out reports/agent_rl_household --algos gigpo grpo rloo \
        --seeds 0 1 2 --iterations 15 --model runs/sft-putin/checkpoints/latest \
        -- env=household env.id=household/PutIn-v0 +env.kwargs.max_episode_steps=12 groups.size=4 ...

Everything after ``--`` is passed to every ``omnigym train`` run. Each run
is evaluated by sampling (temperature 1, the policy it optimised; ``--greedy``:
argmax), ``--episodes`` seeds per panel; success carries its Wilson
interval over the episodes of all seeds, and each seed's own rate is listed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from omnigym.agents import resolve_agent
from omnigym.evaluation import evaluate
from omnigym.stats import wilson_interval


def train(algo: str, seed: int, run_dir: Path, iterations: int, overrides: list[str]) -> float:
    """``omnigym train`` for one cell; returns its minutes."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "omnigym.cli", "train", f"algo={algo}", f"seed={seed}",
               f"iterations={iterations}", f"out_dir={run_dir}", "evaluation.every=0", "evaluation.episodes=1",
               "evaluation.baselines=[]", "progress=false", *overrides]
    if (run_dir / "checkpoints").exists():
        command.append("resume=true")
    with open(run_dir.parent / f"{run_dir.name}.log", "a") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    return (time.perf_counter() - start) / 60


def curve(run_dir: Path) -> list[float] | None:
    """Each iteration's sampled success (``sampled_success`` of the run's
    metrics.csv); None for a run whose metrics predate that column (RLlib's
    ``episode_return_mean`` is a running statistic, not this)."""
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    if not rows or not rows[0].get("sampled_success"):
        return None
    return [float(r["sampled_success"]) for r in rows]


def main() -> None:
    argv = sys.argv[1:]
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--algos", nargs="+", default=["gigpo", "grpo", "rloo"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--env", default="household/PutIn-v0", help="the env the panels are evaluated on")
    p.add_argument("--panels", nargs="+", default=["train", "test"])
    p.add_argument("--episodes", type=int, default=30, help="seeds per panel")
    p.add_argument("--max-steps", type=int, default=12)
    p.add_argument("--greedy", action="store_true", help="evaluate the runs greedily (default: sampling)")
    p.add_argument("--baseline", help="LABEL=SPEC: also evaluate this agent (e.g. the start model)")
    p.add_argument("--baseline-option", action="append", default=[], help="key=JSON option of the baseline agent")
    args = p.parse_args(argv)
    baseline_options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.baseline_option)}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}

    def save():
        path.write_text(json.dumps(results, indent=1))

    def evaluate_cell(key: str, spec: str, options: dict) -> None:
        for panel in args.panels:
            if panel in results[key].get("panels", {}):
                continue
            agent = resolve_agent(spec, args.env, **options)
            section = evaluate(agent, args.env, panel, seeds_limit=args.episodes, max_steps=args.max_steps,
                               groups_per_batch=args.episodes)
            s = section["summary"]
            results[key].setdefault("panels", {})[panel] = {"successes": round(s["success_rate"] * s["episodes"]),
                                                            "episodes": s["episodes"]}
            save()
            print(f"{key} {panel}: {100 * s['success_rate']:.0f}% of {s['episodes']}", flush=True)

    if args.baseline:
        label, spec = args.baseline.split("=", 1)
        results.setdefault(f"{label}|-", {"algo": label, "seed": None})
        evaluate_cell(f"{label}|-", spec, baseline_options)
    for algo in args.algos:
        for seed in args.seeds:
            key = f"{algo}|{seed}"
            run_dir = args.out / "runs" / f"{algo}-s{seed}"
            cell = results.setdefault(key, {"algo": algo, "seed": seed})
            if "minutes" not in cell:
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                cell["minutes"] = train(algo, seed, run_dir, args.iterations, overrides)
                cell["curve"] = curve(run_dir)
                save()
                print(f"{key}: trained in {cell['minutes']:.1f} min", flush=True)
            evaluate_cell(key, str(run_dir), {"greedy": args.greedy})
    table = markdown(results, args.panels)
    (args.out / "table.md").write_text(table)
    print("\n" + table)


def markdown(results: dict, panels: list[str]) -> str:
    """One row per algorithm: each panel's success pooled over seeds with its
    Wilson 95% interval, per-seed rates, minutes per run, and the sampled
    success over the first and last fifth of training."""
    algos = list(dict.fromkeys(r["algo"] for r in results.values()))
    head = "| algorithm | " + " | ".join(f"{p} success [95% CI] (per seed)" for p in panels)
    lines = [head + " | sampled success, first → last 20% of iterations (runs) | minutes per run |",
             "|" + "---|" * (len(panels) + 3)]
    for algo in algos:
        cells = [r for r in results.values() if r["algo"] == algo]
        row = []
        for panel in panels:
            got = [c["panels"][panel] for c in cells if panel in c.get("panels", {})]
            if not got:
                row.append("–")
                continue
            k, n = sum(g["successes"] for g in got), sum(g["episodes"] for g in got)
            lo, hi = wilson_interval(k, n)
            per_seed = ", ".join(f"{100 * g['successes'] / g['episodes']:.0f}" for g in got)
            row.append(f"{100 * k / n:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}] ({per_seed})")
        curves = [c["curve"] for c in cells if c.get("curve")]
        if curves:
            fifth = max(1, len(curves[0]) // 5)
            first = sum(sum(c[:fifth]) / fifth for c in curves) / len(curves)
            last = sum(sum(c[-fifth:]) / fifth for c in curves) / len(curves)
            row.append(f"{100 * first:.0f}% → {100 * last:.0f}% ({len(curves)})")
        else:
            row.append("–")
        minutes = [c["minutes"] for c in cells if "minutes" in c]
        row.append(f"{sum(minutes) / len(minutes):.1f}" if minutes else "–")
        lines.append(f"| {algo} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
