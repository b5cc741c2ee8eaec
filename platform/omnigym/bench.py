"""Environment throughput: steps per second per mode, random admissible
actions, one process (one core). Reported next to gymnasium's CartPole-v1
measured in the same run, so numbers from noisy machines stay comparable."""
from __future__ import annotations

import os
import time

import numpy as np

from omnigym import info_keys as K
from omnigym.registry import entry, make


def pin_to_one_core() -> set[int] | None:
    """Pin this process to its first allowed core, as benchmark numbers are
    quoted; returns the cores it had (to restore), None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    return set(cores)


def steps_per_second(env_id: str, mode: str | None = None, steps: int = 20_000, seed: int = 0,
                     episode_cap: int = 40) -> float:
    """Random-admissible-action steps/s, resets included (every ``episode_cap`` steps or on done)."""
    env = make(env_id, **({"mode": mode} if mode and mode != "default" else {})).unwrapped
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    discrete = hasattr(env.action_space, "n")
    done_steps, ep_steps = 0, 0
    start = time.perf_counter()
    while done_steps < steps:
        actions = info.get(K.ADMISSIBLE_ACTIONS)
        if actions:
            k = int(rng.integers(len(actions)))
            action = k if discrete else actions[k]
        else:
            action = env.action_space.sample()
        obs, _, terminated, truncated, info = env.step(action)
        done_steps += 1
        ep_steps += 1
        if terminated or truncated or ep_steps >= episode_cap:
            obs, info = env.reset(seed=seed + done_steps)
            ep_steps = 0
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def bench(env_id: str, modes: list[str] | None = None, steps: int = 20_000, repeats: int = 3) -> dict:
    """Best-of-``repeats`` steps/s per mode, plus the CartPole baseline."""
    modes = modes or list(entry(env_id).modes)
    out = {"env_id": env_id, "steps": steps, "repeats": repeats, "modes": {}}
    base = max(steps_per_second("CartPole-v1", steps=steps) for _ in range(repeats))
    out["baseline"] = {"env_id": "CartPole-v1", "steps_per_s": base}
    for mode in modes:
        rate = max(steps_per_second(env_id, mode, steps=steps, seed=r) for r in range(repeats))
        out["modes"][mode] = {"steps_per_s": rate, "ratio_to_baseline": rate / base}
    return out


def format_bench(result: dict) -> str:
    lines = [f"{result['env_id']}: steps/s (best of {result['repeats']} x {result['steps']} steps, "
             "random admissible actions, resets included)",
             f"  {'mode':<10} {'steps/s':>10} {'x CartPole-v1':>14}"]
    for mode, r in result["modes"].items():
        lines.append(f"  {mode:<10} {r['steps_per_s']:>10,.0f} {r['ratio_to_baseline']:>14.2f}")
    lines.append(f"  baseline CartPole-v1: {result['baseline']['steps_per_s']:,.0f} steps/s")
    return "\n".join(lines)
