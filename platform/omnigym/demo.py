"""``make demo``: the default job on a fresh machine.

Evaluates the random policy and the exact planner on the household suite's
train and held-out panels, records every episode as Parquet, and writes a
Markdown report with intervals and plots.
"""
from __future__ import annotations

from pathlib import Path

from omnigym.evaluation import evaluate
from omnigym.report import write_report

DEMO_ENV = "household/Household-v0"
# (policy, tries per seed): the random policy gets 4 identical resets per seed
# so the report can show pass@k and pass^k; the planner is deterministic.
DEMO_POLICIES = (("random", 4), ("planner", 1))


def run_demo(out_dir: str | Path = "reports/demo", quick: bool = False) -> Path:
    out_dir = Path(out_dir)
    panels = ["train", "heldout"] if not quick else [range(0, 8), range(100000, 100008)]
    sections = []
    for policy, group_size in DEMO_POLICIES:
        for panel in panels:
            label = panel if isinstance(panel, str) else f"{panel.start}"
            record_to = out_dir / "episodes" / f"{policy}-{label}.parquet"
            sections.append(evaluate(policy, DEMO_ENV, panel, group_size, record_to=record_to))
    notes = [
        "random: a uniformly random admissible action each step, 4 tries per seed (pass@k, pass^k).",
        "planner: breadth-first search over the simulator: a shortest plan from the true state.",
        "Panels are fixed seeds of the suite; held-out tasks are novel combinations of seen objects and goals.",
        "Every episode is recorded under episodes/ as Parquet (omnigym.episodes.read_episodes).",
    ]
    return write_report(sections, out_dir, "omnigym demo: household suite", notes=notes)
