"""``make demo``: the default job on a fresh machine.

1. Evaluates the random agent and the expert (an exact planner) on the household
   suite's train and held-out panels (every episode recorded as Parquet).
2. Trains PPO with RLlib for a few minutes on a household task (vector
   observations, discrete actions with masks, the action-scoring policy) and
   compares trained vs random vs expert on that task's train panel.
3. Evaluates the scripted experts against random agents on the other
   families: the arm pushing task (robots/Push-v0, one filmed episode each)
   and the tool-use suite (tools/Tools-v0, held-out tasks).
4. Writes one Markdown report with intervals, plots, videos and learning curves.
"""
from __future__ import annotations

import json
from pathlib import Path

from omnigym.evaluation import evaluate
from omnigym.report import write_report

DEMO_ENV = "household/Household-v0"
# (agent, tries per seed): the random agent gets 4 identical resets per seed
# so the report can show pass@k and pass^k; the expert is deterministic.
DEMO_AGENTS = (("random", 4), ("expert", 1))
TRAIN_OVERRIDES = ["env=household_hold", "policy=scorer", "env.kwargs.progress_reward=0.5",
                   "iterations=18", "checkpoint_every=6", "evaluation.every=6", "evaluation.episodes=60",
                   "evaluation.greedy=false",
                   "evaluation.baselines=[random,expert]"]


def run_demo(out_dir: str | Path = "reports/demo", quick: bool = False, train: bool = True) -> Path:
    out_dir = Path(out_dir)
    sections = []
    for agent, group_size in DEMO_AGENTS:
        for panel in ("train", "heldout"):
            record_to = out_dir / "episodes" / f"{agent}-{panel}.parquet"
            sections.append(evaluate(agent, DEMO_ENV, panel, group_size, record_to=record_to,
                                     seeds_limit=8 if quick else None))
    notes = [
        "random: a uniformly random admissible action each step, 4 tries per seed (pass@k, pass^k).",
        "expert: breadth-first search over the simulator: a shortest plan from the true state.",
        "Panels are fixed seeds of the suite; held-out tasks are novel combinations of seen objects and goals.",
        "Every episode is recorded under episodes/ as Parquet (omnigym.episodes.read_episodes).",
    ]
    sections += _other_families(out_dir, quick)
    notes += [
        "robots/Push-v0: the scripted arm expert vs uniformly random actions on the first 20 seeds of "
        "the test panel (layouts never used in training); the first episode of each is filmed under videos/.",
        "tools/Tools-v0: the scripted tool-using expert vs a random pick among the candidate outputs, "
        "on the held-out split (novel combinations of tools, relations and operations).",
    ]
    if train:
        sections += _train_household(out_dir / "train", quick)
        notes += [
            "ppo: RLlib PPO with the action-scoring policy, trained here for a few minutes (`omnigym train "
            + " ".join(TRAIN_OVERRIDES if not quick else _quick(TRAIN_OVERRIDES)) + "`), sampled actions; "
            "compared with random and the expert on the same train-panel seeds of household/Hold-v0.",
            "![PPO learning curve](train/report/learning_curve.png)",
            "![PPO evaluation curve](train/report/eval_curve.png)",
        ]
    return write_report(sections, out_dir, "omnigym demo: household, robots and tools", notes=notes)


def _other_families(out_dir: Path, quick: bool) -> list[dict]:
    """Experts vs random on one robots task and on the tools suite, on their
    own named panels (the first seeds of robots' test panel: each episode is
    seconds of physics)."""
    n = 3 if quick else 20
    sections = []
    for agent in ("expert", "random"):
        sections.append(evaluate(agent, "robots/Push-v0", "test", seeds_limit=n, video=1,
                                 video_dir=out_dir / "videos",
                                 record_to=out_dir / "episodes" / f"push-{agent}.parquet"))
    for agent in ("expert", "random"):
        sections.append(evaluate(agent, "tools/Tools-v0", "heldout", seeds_limit=n if quick else None,
                                 record_to=out_dir / "episodes" / f"tools-{agent}.parquet"))
    return sections


def _quick(overrides: list[str]) -> list[str]:
    return [o for o in overrides if not o.startswith(("iterations=", "evaluation."))] + \
        ["iterations=1", "evaluation.episodes=4", "algo.training.train_batch_size_per_learner=400",
         "algo.training.minibatch_size=100", "algo.training.num_epochs=1"]


def _train_household(run_dir: Path, quick: bool) -> list[dict]:
    import shutil
    from omnigym.rllib.train import train
    from omnigym.rllib.train_config import compose
    shutil.rmtree(run_dir, ignore_errors=True)   # the demo always trains afresh
    overrides = _quick(TRAIN_OVERRIDES) if quick else TRAIN_OVERRIDES
    report = train(compose([*overrides, f"out_dir={run_dir}"]))
    return json.loads((report.parent / "summary.json").read_text())["sections"]
