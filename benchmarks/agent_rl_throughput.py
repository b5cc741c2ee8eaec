"""Time per group-RL iteration, RLlib (``GroupRL``) against the plain
reference loop (``agent_rl_reference.py``), same env, same LM, same batch,
measured in the same run: generation / env / advantage / update.

    python benchmarks/agent_rl_throughput.py --out reports/agent_rl_throughput

Both paths sample ``groups x group_size`` episodes per iteration with the
same token view and generation, compute the same advantages on the driver
and take the same update. Timings are medians over the iterations after the
first (warm-up); the report gives each part's seconds and the RLlib / loop
ratio of iterations per second (a ratio measured side by side, not an
absolute time). Where RLlib spends more: its env runner steps every sub-env
on every step (a finished sub-env idles on a one-token prompt until the
slowest episode of the batch ends), its connectors and episode bookkeeping,
and the learner's batch building.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def reference_times(ref, args) -> list[dict]:
    history, _ = ref.train(args, progress=False)
    return [{"generation": h["generation_s"], "env": h["env_s"], "advantage": h["advantage_s"],
             "update": h["update_s"], "iteration": h["iteration_s"], "steps": h["steps"]} for h in history]


def rllib_times(args) -> list[dict]:
    import ray

    from omnigym.groups import GroupSchedule
    from omnigym.rllib import envs
    from omnigym.rllib.env_spec import resolve_env
    from omnigym.rllib.group_rl import GroupRL, GroupRLConfig
    from omnigym.rllib.policies import lm_policy
    from omnigym.rllib.token_env import token_train_env

    n = args.group_size * args.groups
    node = {"name": "lm", "tiny": {"arch": args.tiny, "hidden": args.tiny_hidden, "layers": args.tiny_layers,
                                    "seed": args.seed},
            "config": {"max_prompt_tokens": args.max_prompt_tokens, "max_new_tokens": args.max_new_tokens,
                       "history_turns": args.history_turns, "temperature": args.temperature, "mode": args.mode}}
    schedule = GroupSchedule(args.group_size, range(args.seeds[0], args.seeds[1] + 1), num_groups=args.groups)
    env = dataclasses.replace(token_train_env(resolve_env(args.env, args.env_kwargs, groups=schedule), node), armed=True)
    timed: dict = defaultdict(float)

    class TimedGroupRL(GroupRL):
        def compute_advantages(self, episodes):
            start = time.perf_counter()
            out = super().compute_advantages(episodes)
            timed["advantage"] += time.perf_counter() - start
            return out

    config = (GroupRLConfig(algo_class=TimedGroupRL)
              .environment(envs.register(env, n), observation_space=env.observation_space,
                           action_space=env.action_space)
              .env_runners(num_env_runners=0, num_envs_per_env_runner=n)
              .learners(num_learners=0).debugging(seed=args.seed)
              .training(group_size=args.group_size, episodes_per_iteration=n, lr=args.lr,
                        minibatch_size=args.minibatch_size, estimator=args.estimator, loss=args.loss)
              .rl_module(**lm_policy(node, env, args.torch_threads)))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    algo = config.build_algo()
    module = algo.env_runner_group.local_env_runner.module
    reply = module._reply

    def timed_reply(*a, **k):   # generation inside RLlib's sampling
        start = time.perf_counter()
        out = reply(*a, **k)
        timed["generation"] += time.perf_counter() - start
        return out

    module._reply = timed_reply
    learner_update = algo.learner_group.update

    def timed_update(*a, **k):  # RLlib's own timers are smoothed across iterations
        start = time.perf_counter()
        out = learner_update(*a, **k)
        timed["update"] += time.perf_counter() - start
        return out

    algo.learner_group.update = timed_update
    rows = []
    try:
        for _ in range(args.iterations):
            timed.clear()
            start = time.perf_counter()
            algo.train()
            total = time.perf_counter() - start
            update = timed["update"]
            rows.append({"generation": timed["generation"], "advantage": timed["advantage"], "update": update,
                         "iteration": total, "steps": int(sum(len(e) for e in algo._last_episodes)),
                         # the rest of the iteration: env steps, connectors, episodes, weight sync
                         "env": total - timed["generation"] - timed["advantage"] - update})
    finally:
        algo.stop()
        ray.shutdown()
    return rows


def median(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows[1:] or rows if r.get(key) is not None and np.isfinite(r[key])]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    import sys
    sys.path.insert(0, str(HERE))
    import agent_rl_reference as ref   # the reference loop, next to this file
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("reports/agent_rl_throughput"))
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--groups", type=int, default=4)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--max-episode-steps", type=int, default=8)
    p.add_argument("--tiny-hidden", type=int, default=64)
    cli = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    args = ref.Args(env="household/PutIn-v0", env_kwargs={"mode": "text", "max_episode_steps": cli.max_episode_steps},
                    tiny="llama", tiny_hidden=cli.tiny_hidden, tiny_layers=2, max_prompt_tokens=1024,
                    group_size=cli.group_size, groups=cli.groups, iterations=cli.iterations, lr=1e-4,
                    estimator={"estimator": "grpo"})
    loop = reference_times(ref, args)
    rllib = rllib_times(args)
    parts = ["generation", "env", "advantage", "update", "iteration"]
    table = {"loop": {k: median(loop, k) for k in parts + ["steps"]},
             "rllib": {k: median(rllib, k) for k in parts + ["steps"]}}
    # Iterations per second per env step: the batches can differ in steps (sampling differs).
    speed = {k: table[k]["steps"] / table[k]["iteration"] for k in table}
    ratio = speed["rllib"] / speed["loop"]
    lines = ["| path | generation s | env + bookkeeping s | advantage s | update s | iteration s | steps | steps/s |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("loop", "rllib"):
        t = table[name]
        lines.append(f"| {name} | " + " | ".join(f"{t[k]:.2f}" for k in parts) + f" | {t['steps']:.0f} | "
                     f"{speed[name]:.2f} |")
    lines.append(f"\nRLlib / loop throughput (env steps per second): {ratio:.2f}x")
    cli.out.mkdir(parents=True, exist_ok=True)
    (cli.out / "results.json").write_text(json.dumps({"loop": loop, "rllib": rllib, "ratio": ratio,
                                                      "args": dataclasses.asdict(args)}, indent=1))
    (cli.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
