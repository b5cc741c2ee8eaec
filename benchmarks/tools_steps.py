"""Tools family throughput: env steps per second with the model left out.

For each template, the outputs a policy would write are produced first
(expert outputs, and random picks among the candidate actions); only
``env.step`` is timed. CartPole-v1 runs in the same process as the
baseline, so numbers from noisy machines stay comparable. One core.

    .venv/bin/python benchmarks/tools_steps.py [--episodes 40] [--documents 2000 10000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from omnigym import info_keys as K
from omnigym.bench import pin_to_one_core, steps_per_second
from omnigym.environments.tools.expert import plan_outputs
from omnigym.registry import make

TEMPLATES = ["tools/Arithmetic-v0", "tools/Data-v0", "tools/Memory-v0", "tools/MultihopPeople-v0",
             "tools/MultihopPlaces-v0"]


def timed_steps(env_id: str, policy: str, episodes: int, **env_kwargs) -> tuple[float, float]:
    """(env steps/s, mean steps per episode), timing env.step alone."""
    env = make(env_id, **env_kwargs).unwrapped
    rng = np.random.default_rng(0)
    env.reset(seed=0)  # warm caches (corpus, index, sandbox start-up) outside the timing
    stepping, steps = 0.0, 0
    for seed in range(episodes):
        obs, info = env.reset(seed=seed)
        outputs = plan_outputs(env.problem) if policy == "expert" else None
        for _ in range(12):
            if outputs is not None:
                action = outputs.pop(0)
            else:
                candidates = info[K.ADMISSIBLE_ACTIONS]
                action = candidates[rng.integers(len(candidates))] if candidates else "no idea"
            start = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            stepping += time.perf_counter() - start
            steps += 1
            if terminated or truncated or (outputs is not None and not outputs):
                break
    env.close()
    return steps / stepping, steps / episodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--documents", type=int, nargs="*", default=[2000, 10_000])
    args = p.parse_args()
    pin_to_one_core()
    base = steps_per_second("CartPole-v1", steps=20_000)
    print(f"baseline CartPole-v1: {base:,.0f} steps/s\n")
    print(f"{'env':<26} {'docs':>6} {'policy':<7} {'steps/s':>9} {'x CartPole':>10} {'steps/episode':>14}")
    for env_id in TEMPLATES:
        sizes = args.documents if "Multihop" in env_id else args.documents[:1]
        for n in sizes:
            for policy in ("expert", "random"):
                rate, length = timed_steps(env_id, policy, args.episodes, n_documents=n)
                print(f"{env_id:<26} {n:>6} {policy:<7} {rate:>9,.0f} {rate / base:>10.3f} {length:>14.1f}")


if __name__ == "__main__":
    main()
