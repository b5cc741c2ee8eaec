"""Run a policy over a fixed panel of seeds, optionally in groups.

A *group* is ``group_size`` episodes reset with the same seed (identical
start states); stochastic policies then differ only through their own
randomness. Groups are what pass@k / pass^k and group-relative RL
(GRPO, GiGPO) need.

Videos: ``rollout(..., video_episodes=K, video_dir=D)`` makes the env with
``render_mode="rgb_array"`` and films the first K episodes (``env.render()``
after the reset and after every step) to ``D/<prefix>-epNNN.mp4`` plus a
small looping GIF preview; each filmed episode's ``metadata["video"]`` and
``metadata["video_preview"]`` hold the paths.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable

from tqdm.auto import tqdm

from omnigym.agents import policy_name, resolve_policy
from omnigym.episodes import Episode, write_episodes
from omnigym.registry import make


def run_episode(env, policy, seed: int | None, *, env_id: str, group: int | None = None,
                member: int | None = None, options: dict | None = None,
                max_steps: int | None = None, on_frame: Callable | None = None) -> Episode:
    """One episode of ``policy`` on an already-made ``env``. ``on_frame``: called
    with ``env.render()`` after the reset and after every step (videos)."""
    obs, info = env.reset(seed=seed, options=options)
    if on_frame is not None:
        on_frame(env.render())
    if hasattr(policy, "reset"):
        policy.reset(env=env, seed=seed, member=member)
    episode = Episode.from_reset(obs, info, env_id=env_id, seed=seed, group=group, member=member,
                                 policy={"name": policy_name(policy)})
    steps = 0
    while True:
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        if on_frame is not None:
            on_frame(env.render())
        steps += 1
        if max_steps is not None and steps >= max_steps:
            truncated = True
        episode.append_step(obs, action, float(reward), bool(terminated), bool(truncated), info)
        if terminated or truncated:
            return episode


def video_name(text: str) -> str:
    """``text`` made safe as part of a file name (policy and panel names)."""
    return re.sub(r"[^\w.-]+", "_", str(text)).strip("_") or "video"


def _filmed_episode(env, policy, seed, path: Path, **kwargs) -> Episode:
    """run_episode while streaming frames to an MP4 and keeping a GIF preview."""
    from omnigym.datasets.video import GifSampler, Mp4Writer, write_gif

    fps = float(env.metadata.get("render_fps") or 30)
    writer, preview = Mp4Writer(path, fps), GifSampler()

    def on_frame(frame) -> None:
        if frame is None:
            raise ValueError(f"{kwargs['env_id']} returned no frame from render(); videos need an "
                             "env that supports render_mode='rgb_array'")
        writer.append(frame)
        preview.append(frame)

    with writer:
        episode = run_episode(env, policy, seed, on_frame=on_frame, **kwargs)
    gif = write_gif(preview.frames, path.with_suffix(".gif"), fps / preview.stride)
    episode.metadata.update(video=str(path), video_preview=str(gif), video_frames=writer.n_frames)
    return episode


def rollout(policy, env_id: str, seeds: Iterable[int], group_size: int = 1, *,
            env_kwargs: dict | None = None, options: dict | None = None,
            max_steps: int | None = None, record_to: str | None = None,
            progress: bool = True, desc: str | None = None, video_episodes: int = 0,
            video_dir: str | Path | None = None, video_prefix: str | None = None) -> list[Episode]:
    """Episodes of ``policy`` on ``env_id``: for each seed, ``group_size``
    identical resets. ``policy`` is a name (``random``, ``expert``), an
    object with ``act`` or a callable. ``record_to``: also write them as
    Parquet (atomically) to this file. ``video_episodes``: film the first
    that many episodes into ``video_dir`` (see the module docstring)."""
    if group_size < 1:
        raise ValueError("group_size must be at least 1")
    seeds = list(seeds)
    policy = resolve_policy(policy, env_id)
    env_kwargs = dict(env_kwargs or {})
    if video_episodes > 0:
        env_kwargs.setdefault("render_mode", "rgb_array")
        video_dir = Path(video_dir if video_dir is not None else "videos")
        video_prefix = video_name(video_prefix or f"{policy_name(policy)}-{env_id}")
    env = make(env_id, **env_kwargs)
    episodes: list[Episode] = []
    total = len(seeds) * group_size
    bar = tqdm(total=total, desc=desc or f"{policy_name(policy)} on {env_id}", disable=not progress,
               unit="ep", leave=False)
    try:
        for group, seed in enumerate(seeds):
            for member in range(group_size):
                kwargs = dict(env_id=env_id, group=group, member=member, options=options,
                              max_steps=max_steps)
                k = len(episodes)
                if k < video_episodes:
                    path = video_dir / f"{video_prefix}-ep{k:03d}.mp4"
                    episodes.append(_filmed_episode(env, policy, seed, path, **kwargs))
                else:
                    episodes.append(run_episode(env, policy, seed, **kwargs))
                bar.update(1)
    finally:
        bar.close()
        env.close()
    if record_to is not None:
        write_episodes(episodes, record_to)
    return episodes
