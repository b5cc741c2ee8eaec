"""``seed=[0,1,2]``: one run per seed, one after another, and a report across them.

Each seed's run is an ordinary run folder (``...-s0``, ``...-s1``); the
aggregate folder next to them (``...-seeds``) holds the final evaluation of
every seed, their mean with a 95% Student t interval across seeds (the seeds
are the independent samples, not the episodes) and all learning curves on one
plot.
"""
from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

from omegaconf import DictConfig, ListConfig


def seed_list(cfg) -> list[int] | None:
    """The seeds of ``seed=[...]``, or None for a single seed."""
    if not isinstance(cfg.seed, (list, ListConfig)):
        return None
    seeds = list(cfg.seed)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seed={seeds}: give whole numbers, e.g. seed=[0,1,2]")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seed={seeds} repeats a seed; each seed is one run")
    return seeds


def seed_configs(cfg: DictConfig, seeds: list[int]) -> list[DictConfig]:
    """One config per seed, each with its own ``out_dir``: the run name takes
    the seed (``-s${seed}``); one that does not gets ``-sN`` appended."""
    configs = []
    for seed in seeds:
        one = copy.deepcopy(cfg)
        one.seed = seed
        configs.append(one)
    dirs = [str(c.out_dir) for c in configs]
    if len(set(dirs)) < len(dirs):
        for one, seed, out in zip(configs, seeds, dirs):
            one.out_dir = f"{out}-s{seed}"
    return configs


def aggregate_dir(first_run: Path, first_seed: int) -> Path:
    """``runs/ppo-cartpole-v1-s0`` -> ``runs/ppo-cartpole-v1-seeds``."""
    return first_run.parent / (re.sub(rf"-s{first_seed}$", "", first_run.name) + "-seeds")


def _csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None


def _interval(values: list[float], low: float = float("-inf"), high: float = float("inf")) -> dict | None:
    from omnigym.stats import mean_interval
    if not values:
        return None
    mean, lo, hi = mean_interval(values)
    # A rate's t interval can pass 0 or 1: the interval is clipped, the ± is not.
    return {"mean": mean, "half_width": (hi - lo) / 2, "ci": [max(low, lo), min(high, hi)], "seeds": len(values)}


def _number_text(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"  # 1234.5 -> 1,234, not 1.23e+03


def _text(stat: dict | None, scale: float = 1.0, unit: str = "") -> str:
    if stat is None:
        return "n/a"
    mean, half, lo, hi = (_number_text(x * scale) for x in (stat["mean"], stat["half_width"], *stat["ci"]))
    return f"{mean}{unit} ± {half}{unit} (95% CI [{lo}{unit}, {hi}{unit}])"


def tensorboard_command(runs: list[tuple[int, Path]]) -> str:
    """One TensorBoard for every seed's run, each named by its seed."""
    return "tensorboard --logdir_spec " + ",".join(f"s{seed}:{run / 'tb'}" for seed, run in runs)


def write_seed_report(runs: list[tuple[int, Path]], out: Path, title: str) -> Path:
    """The report across the seeds' runs (``(seed, run folder)``, each trained
    to its end); returns the path of its ``report.md``."""
    from omnigym.report import plot_curves
    out.mkdir(parents=True, exist_ok=True)
    finals, curves = [], {}
    for seed, run in runs:
        last = _csv(run / "eval.csv")[-1]  # the evaluation at the last iteration
        finals.append({"seed": seed, "run": str(run), "iteration": int(last["iteration"]),
                       "success_rate": _number(last["success_rate"]), "return_mean": _number(last["return_mean"])})
        curves[f"seed {seed}"] = [(float(r["env_steps"]), float(r["episode_return_mean"]))
                                  for r in _csv(run / "metrics.csv") if _number(r["episode_return_mean"]) is not None]
    success = _interval([f["success_rate"] for f in finals if f["success_rate"] is not None], 0.0, 1.0)
    returns = _interval([f["return_mean"] for f in finals if f["return_mean"] is not None])
    plot_curves(curves, out / "learning_curves.png", "environment steps", "mean episode return (training)",
                f"{title}: every seed")
    (out / "summary.json").write_text(json.dumps(
        {"title": title, "success_rate": success, "return_mean": returns, "runs": finals}, indent=2) + "\n")
    tensorboard = tensorboard_command(runs)
    lines = [f"# {title}: {len(runs)} seeds", "",
             "Final evaluation of each seed's run (the trained agent on the evaluation panel), and the mean "
             "across seeds with its 95% Student t interval: the seeds are the independent samples.", "",
             "| seed | success | return | run |", "|---|---|---|---|"]
    for f in finals:
        rate = "n/a" if f["success_rate"] is None else f"{100 * f['success_rate']:.1f}%"
        ret = "n/a" if f["return_mean"] is None else _number_text(f["return_mean"])
        lines.append(f"| {f['seed']} | {rate} | {ret} | `{f['run']}` |")
    lines += [f"| **mean ± 95% CI** | {_text(success, 100, '%')} | {_text(returns)} | |", "",
              "![learning curves of every seed](learning_curves.png)", "",
              f"Each run's own report is in its `report/` folder. TensorBoard, all seeds: `{tensorboard}`", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
