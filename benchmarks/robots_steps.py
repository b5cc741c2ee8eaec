"""Robots family throughput, against gymnasium and raw MuJoCo in the same run.

1. Overhead: the same model stepped three ways with the same random actions,
   one process pinned to one core --
   raw ``mujoco.mj_step`` (frame_skip substeps per action), gymnasium's own
   env (``gymnasium.make(...).unwrapped``) and ours (``robots/...``, vector and
   dict modes, unwrapped so wrappers do not blur the comparison).
2. Vector envs: env-steps/s of ``SyncVectorEnv`` / ``AsyncVectorEnv`` with
   N = 1, 2, 8 copies, ours next to gymnasium's.
3. Our manipulation tasks: steps/s with random actions (state only, and with
   one 96x96 camera).

Best of ``--repeats`` runs each; ratios are what to compare across machines.

    .venv/bin/python benchmarks/robots_steps.py [--steps 20000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import omnigym  # noqa: F401  (first: it picks MuJoCo's headless GL backend before mujoco loads)
import gymnasium as gym
import mujoco
import numpy as np

from omnigym.bench import pin_to_one_core
from omnigym.registry import make

warnings.filterwarnings("ignore")


def _actions(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)


def raw_mujoco(name: str, steps: int) -> float:
    env = gym.make(f"{name}-v5").unwrapped
    env.reset(seed=0)
    model, data, skip = env.model, env.data, env.frame_skip
    actions = _actions(env.action_space, steps)
    start = time.perf_counter()
    for a in actions:
        data.ctrl[:] = a
        mujoco.mj_step(model, data, nstep=skip)
        mujoco.mj_rnePostConstraint(model, data)  # as gymnasium does every step
    return steps / (time.perf_counter() - start)


def env_rate(env, steps: int) -> float:
    env.reset(seed=0)
    actions = _actions(env.action_space, steps)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def overhead(names, steps, repeats) -> list[dict]:
    rows = []
    for name in names:
        best = lambda f: max(f() for _ in range(repeats))  # noqa: E731
        raw = best(lambda: raw_mujoco(name, steps))
        gym_rate = best(lambda: env_rate(gym.make(f"{name}-v5").unwrapped, steps))
        vec = best(lambda: env_rate(make(f"robots/{name}-v5", mode="vector").unwrapped, steps))
        dct = best(lambda: env_rate(make(f"robots/{name}-v5", mode="dict").unwrapped, steps))
        rows.append({"env": name, "raw": raw, "gymnasium": gym_rate, "ours_vector": vec, "ours_dict": dct})
    return rows


def vector_rates(name: str, steps: int, sizes=(1, 2, 8)) -> list[dict]:
    rows = []
    for n in sizes:
        row = {"n": n}
        for label, factory in (("gymnasium", lambda: gym.make(f"{name}-v5")),
                               ("ours", lambda: make(f"robots/{name}-v5", mode="vector"))):
            for kind, cls in (("sync", gym.vector.SyncVectorEnv), ("async", gym.vector.AsyncVectorEnv)):
                venv = cls([factory] * n)
                venv.reset(seed=0)
                actions = _actions(venv.action_space, max(steps // n, 50))
                start = time.perf_counter()
                for a in actions:
                    venv.step(a)
                row[f"{label}_{kind}"] = len(actions) * n / (time.perf_counter() - start)
                venv.close()
        rows.append(row)
    return rows


def task_rates(ids, steps) -> list[dict]:
    rows = []
    for env_id in ids:
        try:
            state = env_rate(make(env_id, mode="vector").unwrapped, steps)
            env = make(env_id, mode="dict", cameras=(make(env_id).unwrapped.available_cameras[0],))
            camera = env_rate(env.unwrapped, max(steps // 20, 100))
        except Exception as exc:  # an env that is not available here is reported, not fatal
            rows.append({"env": env_id, "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append({"env": env_id, "state": state, "camera": camera})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--envs", nargs="*", default=["HalfCheetah", "Hopper", "Ant"])
    p.add_argument("--vector-env", default="HalfCheetah")
    args = p.parse_args()
    cores = pin_to_one_core()
    print(f"1. overhead on the same model (steps/s, one core, best of {args.repeats} x {args.steps})")
    print(f"  {'env':<12} {'raw mj_step':>12} {'gymnasium':>10} {'ours vec':>9} {'ours dict':>10} "
          f"{'vec/gym':>8} {'dict/gym':>9}")
    for r in overhead(args.envs, args.steps, args.repeats):
        print(f"  {r['env']:<12} {r['raw']:>12,.0f} {r['gymnasium']:>10,.0f} {r['ours_vector']:>9,.0f} "
              f"{r['ours_dict']:>10,.0f} {r['ours_vector'] / r['gymnasium']:>8.3f} "
              f"{r['ours_dict'] / r['gymnasium']:>9.3f}")

    if cores:
        os.sched_setaffinity(0, cores)
    print(f"\n2. vector envs, {args.vector_env} (env-steps/s, {len(cores) if cores else '?'} cores)")
    print(f"  {'N':>3} {'gym sync':>10} {'ours sync':>10} {'gym async':>10} {'ours async':>11}")
    for r in vector_rates(args.vector_env, args.steps // 2):
        print(f"  {r['n']:>3} {r['gymnasium_sync']:>10,.0f} {r['ours_sync']:>10,.0f} "
              f"{r['gymnasium_async']:>10,.0f} {r['ours_async']:>11,.0f}")

    pin_to_one_core()
    print("\n3. manipulation tasks (steps/s, random actions, one core)")
    ids = ["robots/Reach-v0", "robots/Push-v0", "robots/PickPlace-v0", "robots/LangPush-v0",
           "robots/PushT-v0", "robots/BulletReach-v0", "robots/BulletPush-v0"]
    for r in task_rates(ids, max(args.steps // 10, 500)):
        if "error" in r:
            print(f"  {r['env']:<24} unavailable: {r['error']}")
        else:
            print(f"  {r['env']:<24} state {r['state']:>8,.0f}   with a 96x96 camera {r['camera']:>6,.0f}")


if __name__ == "__main__":
    main()
