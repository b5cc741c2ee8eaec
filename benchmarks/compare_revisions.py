"""Env steps/s of this checkout against another revision of omnigym, in one run.

Both revisions step the same envs with the same workload through the plain
gymnasium API (``make``, ``reset``, ``step``; a random admissible action
from ``info``, or a random Box action), each in its own process pinned to
one core, alternating A/B for ``--rounds`` rounds so machine noise hits both
alike. Reports each revision's best steps/s and the ratio this/base.

Install both revisions' packages into folders the same way (an editable
install and an installed copy differ by themselves: the tools family's
sandbox start-up measured 9% apart with identical code), e.g.::

    git worktree add /tmp/base <commit>
    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/base_site /tmp/base
    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/this_site .
    .venv/bin/python benchmarks/compare_revisions.py --base /tmp/base_site --this /tmp/this_site
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKLOADS = [  # (env id, env kwargs, steps)
    ("household/Household-v0", {"mode": "text"}, 4000),
    ("household/Household-v0", {"mode": "discrete"}, 4000),
    ("household/Household-v0", {"mode": "vector"}, 4000),
    ("tools/Tools-v0", {}, 600),
    ("robots/HalfCheetah-v5", {"mode": "vector"}, 6000),
    ("robots/Push-v0", {"mode": "vector"}, 3000),
    ("robots/PushT-v0", {"mode": "vector"}, 3000),
]


def measure(env_id: str, kwargs: dict, steps: int) -> float:
    """Steps/s of ``steps`` random steps (resets included, as a trainer sees them)."""
    import numpy as np
    import omnigym
    env = omnigym.make(env_id, **kwargs)
    rng = np.random.default_rng(0)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    episode = 0
    start = time.perf_counter()
    for _ in range(steps):
        mask, admissible = info.get("action_mask"), info.get("admissible_actions")
        if mask is not None and hasattr(env.action_space, "n"):
            action = int(rng.choice(np.flatnonzero(mask)))
        elif admissible:
            action = admissible[int(rng.integers(len(admissible)))]
        else:
            action = env.action_space.sample()
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            episode += 1
            obs, info = env.reset(seed=episode)
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def child(index: int) -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    env_id, kwargs, steps = WORKLOADS[index]
    print(json.dumps({"steps_per_s": measure(env_id, kwargs, steps)}))


def run(index: int, pythonpath: str | None) -> float:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, __file__, "--child", str(index)], env=env, capture_output=True,
                         text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="folder holding the base revision's omnigym package")
    ap.add_argument("--this", default=None, help="folder holding this revision's package (default: the checkout)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="only env ids containing this text")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if args.child is not None:
        return child(args.child)
    if not args.base:
        ap.error("--base is required")
    rows = []
    print(f"{'env':<28} {'kwargs':<20} {'base steps/s':>13} {'this steps/s':>13} {'this/base':>9}")
    for i, (env_id, kwargs, _) in enumerate(WORKLOADS):
        if args.only not in env_id:
            continue
        base, this = [], []
        for _ in range(args.rounds):
            base.append(run(i, args.base))
            this.append(run(i, args.this))
        row = {"env": env_id, "kwargs": kwargs, "base": max(base), "this": max(this),
               "ratio": max(this) / max(base), "base_all": base, "this_all": this}
        rows.append(row)
        print(f"{env_id:<28} {json.dumps(kwargs):<20} {row['base']:>13,.0f} {row['this']:>13,.0f} "
              f"{row['ratio']:>9.2f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
