"""Dataset quality of ShIOEnv exploration strategies on the same utilities:
random actions with the grammar mask vs without it, same episode budget,
same run (the env's execution log is the dataset).

    .venv/bin/python benchmarks/shell_dataset_quality.py [--episodes 40] [--out reports/shell_data]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from omnigym.agents import resolve_agent
from omnigym.environments.shell.dataset import export, quality
from omnigym.registry import make
from omnigym.rollout import run_episode

UTILITIES = ("ls", "head", "sort", "wc", "grep", "cut")


def strategy(policy: str, masked: bool, episodes: int, out: Path | None, utilities=UTILITIES,
             label: str | None = None, mode: str = "discrete") -> dict:
    executions: list[dict] = []
    for util in utilities:
        env_id = f"shell/Construct{util.capitalize()}-v0"
        env = make(env_id, masked=masked, mode=mode)
        try:
            pol = resolve_agent(policy, env_id)
            for seed in range(episodes):
                run_episode(env, pol, seed, env_id=env_id)
            executions += env.unwrapped.executions
        finally:
            env.close()
    name = f"{label or policy}-{'masked' if masked else 'unmasked'}"
    if out is not None:
        export(executions, out, name)
    return {"strategy": name, **quality(executions)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=40, help="episodes per utility and strategy")
    ap.add_argument("--out", default=None)
    ap.add_argument("--ppo-masked", default=None, help="run folder of `omnigym train env=shell_ls`")
    ap.add_argument("--ppo-unmasked", default=None, help="run folder of `... env.kwargs.masked=false`")
    args = ap.parse_args()
    out = Path(args.out) if args.out else None
    utilities = ("ls",) if args.ppo_masked or args.ppo_unmasked else UTILITIES
    rows = [strategy("random", masked, args.episodes, out, utilities) for masked in (True, False)]
    # Trained policies sample (not argmax) so that exploration stays stochastic, as during training.
    for run, masked in ((args.ppo_masked, True), (args.ppo_unmasked, False)):
        if run:
            from omnigym.rllib.inference import RLModuleAgent
            policy = RLModuleAgent.from_checkpoint(run, name="ppo", greedy=False)
            rows.append(strategy(policy, masked, args.episodes, out, utilities, label="ppo", mode="vector"))
    print(f"utilities: {', '.join(utilities)}; {args.episodes} episodes each")
    print(f"{'strategy':<18} {'executions':>10} {'unique/1000':>12} {'mean args':>10} {'redundancy':>11} {'exit 0':>7}")
    for r in rows:
        print(f"{r['strategy']:<18} {r['executions']:>10} {r['unique_per_1000']:>12.1f} {r['mean_args']:>10.2f} "
              f"{100 * r['redundancy_rate']:>10.1f}% {100 * r['success_rate']:>6.1f}%")
    if out is not None:
        (out / "quality.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
