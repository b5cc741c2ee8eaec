"""Run a policy over a fixed panel of seeds, optionally in groups.

A *group* is ``group_size`` episodes reset with the same seed (identical
start states); stochastic policies then differ only through their own
randomness. Groups are what pass@k / pass^k and group-relative RL
(GRPO, GiGPO) need.
"""
from __future__ import annotations

from typing import Iterable

from tqdm.auto import tqdm

from omnigym.agents import policy_name, resolve_policy
from omnigym.episodes import Episode, write_episodes
from omnigym.registry import make


def run_episode(env, policy, seed: int | None, *, env_id: str, group: int | None = None,
                member: int | None = None, options: dict | None = None,
                max_steps: int | None = None) -> Episode:
    """One episode of ``policy`` on an already-made ``env``."""
    obs, info = env.reset(seed=seed, options=options)
    if hasattr(policy, "reset"):
        policy.reset(env=env, seed=seed, member=member)
    episode = Episode.from_reset(obs, info, env_id=env_id, seed=seed, group=group, member=member,
                                 policy={"name": policy_name(policy)})
    steps = 0
    while True:
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        if max_steps is not None and steps >= max_steps:
            truncated = True
        episode.append_step(obs, action, float(reward), bool(terminated), bool(truncated), info)
        if terminated or truncated:
            return episode


def rollout(policy, env_id: str, seeds: Iterable[int], group_size: int = 1, *,
            env_kwargs: dict | None = None, options: dict | None = None,
            max_steps: int | None = None, record_to: str | None = None,
            progress: bool = True, desc: str | None = None) -> list[Episode]:
    """Episodes of ``policy`` on ``env_id``: for each seed, ``group_size``
    identical resets. ``policy`` is a name (``random``, ``expert``), an
    object with ``act`` or a callable. ``record_to``: also write them as
    Parquet (atomically) to this file."""
    if group_size < 1:
        raise ValueError("group_size must be at least 1")
    seeds = list(seeds)
    policy = resolve_policy(policy, env_id)
    env = make(env_id, **(env_kwargs or {}))
    episodes: list[Episode] = []
    total = len(seeds) * group_size
    bar = tqdm(total=total, desc=desc or f"{policy_name(policy)} on {env_id}", disable=not progress,
               unit="ep", leave=False)
    try:
        for group, seed in enumerate(seeds):
            for member in range(group_size):
                episodes.append(run_episode(env, policy, seed, env_id=env_id, group=group,
                                            member=member, options=options, max_steps=max_steps))
                bar.update(1)
    finally:
        bar.close()
        env.close()
    if record_to is not None:
        write_episodes(episodes, record_to)
    return episodes
