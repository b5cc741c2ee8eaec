"""Run an agent over a fixed panel of seeds, in groups, stepping a batch of
environments together.

A *group* is ``group_size`` episodes reset with the same seed (identical
start states); stochastic agents then differ only through their own
randomness. Groups are what pass@k / pass^k and group-relative RL (GRPO,
GiGPO) need. ``rollout`` makes ``group_size * groups_per_batch`` envs and
steps them in lockstep: each step, the agent acts on every unfinished
episode of the batch at once (``act_batch`` for batched agents, one copy of
a single agent per env otherwise; see ``omnigym.agents``). Episodes are
returned in (group, member) order, whatever order they finish in.

Videos: ``rollout(..., video_episodes=K, video_dir=D)`` makes the envs with
``render_mode="rgb_array"`` and films the first K episodes (``env.render()``
after the reset and after every step) to ``D/<prefix>-epNNN.mp4`` plus a
looping GIF preview, every frame at least 320x240 with the step, reward and
success written under it; each filmed episode's ``metadata["video"]`` and
``metadata["video_preview"]`` hold the paths.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from omnigym import info_keys as K
from omnigym.agents import agent_name, as_batched, resolve_agent
from omnigym.episodes import Episode, write_episodes
from omnigym.registry import make
from omnigym.user_code import import_user_module


def video_name(text: str) -> str:
    """``text`` made safe as part of a file name (agent and panel names)."""
    return re.sub(r"[^\w.-]+", "_", str(text)).strip("_") or "video"


class _Film:
    """Streams one episode's frames to an MP4 and keeps a GIF preview; each
    frame is at least 320x240 with the step, reward, return and success
    (for envs that report one) written under it."""

    def __init__(self, env, env_id: str, path: Path):
        from omnigym.datasets.video import GifSampler, Mp4Writer
        self.env_id, self.path = env_id, path
        self.fps = float(env.metadata.get("render_fps") or 30)
        self.writer, self.preview = Mp4Writer(path, self.fps), GifSampler()
        self.writer.__enter__()

    def add(self, frame, episode: Episode) -> None:
        """``frame``: the render after ``episode``'s latest step (or its reset)."""
        from omnigym.datasets.video import at_least, caption
        if frame is None:
            self.writer.__exit__(None, None, None)
            raise ValueError(f"{self.env_id} returned no frame from render(); videos need an "
                             "env that supports render_mode='rgb_array'")
        frame = caption(at_least(frame), _overlay(episode))
        self.writer.append(frame)
        self.preview.append(frame)

    def finish(self, episode: Episode) -> None:
        from omnigym.datasets.video import write_gif
        self.writer.__exit__(None, None, None)
        gif = write_gif(self.preview.frames, self.path.with_suffix(".gif"), self.fps / self.preview.stride)
        episode.metadata.update(video=str(self.path), video_preview=str(gif), video_frames=self.writer.n_frames)


def _number(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _overlay(episode: Episode) -> list[tuple[str, tuple[int, int, int]]]:
    """The caption of a frame: (text, RGB colour) pieces."""
    white = (235, 235, 235)
    parts = [(f"step {episode.length}", white)]
    if episode.rewards:  # none yet after the reset
        parts.append((f"reward {_number(episode.rewards[-1])}", white))
    parts.append((f"return {_number(episode.total_return)}", white))
    info = episode.infos[-1] if episode.infos else {}
    if K.SUCCESS in info:  # envs without a success signal (CartPole) show none
        parts.append(("success: yes", (90, 220, 110)) if info[K.SUCCESS] else ("success: no", (170, 170, 170)))
    return parts


def run_batch(envs: list, agent, starts: list[tuple[int | None, int, int]], *, env_id: str,
              options: dict | None = None, max_steps: int | None = None, films: dict | None = None,
              on_episode=None) -> list[Episode]:
    """Episodes of ``agent`` (an ``as_batched`` agent) on ``envs``, one per
    ``(seed, group, member)`` in ``starts`` (env i plays starts[i]), all
    stepped together until each ends. ``films``: {env index: _Film}."""
    films = films or {}
    episodes, obs, infos = [], [], []
    for slot, (env, (seed, group, member)) in enumerate(zip(envs, starts)):
        o, info = env.reset(seed=seed, options=options)
        frame = env.render() if slot in films else None   # before the agent's reset can touch the env
        agent.reset_slot(slot, env, seed, member)
        episodes.append(Episode.from_reset(o, info, env_id=env_id, seed=seed, group=group, member=member,
                                           policy={"name": agent.name}))
        if slot in films:
            films[slot].add(frame, episodes[-1])
        obs.append(o)
        infos.append(info)
    active = list(range(len(envs)))
    while active:
        actions = agent.act_slots(active, [obs[i] for i in active], [infos[i] for i in active])
        still = []
        for i, action in zip(active, actions):
            o, reward, terminated, truncated, info = envs[i].step(action)
            if max_steps is not None and episodes[i].length + 1 >= max_steps:
                truncated = True
            episodes[i].append_step(o, action, float(reward), bool(terminated), bool(truncated), info)
            if i in films:
                films[i].add(envs[i].render(), episodes[i])
            obs[i], infos[i] = o, info
            if terminated or truncated:
                if i in films:
                    films[i].finish(episodes[i])
                if on_episode is not None:
                    on_episode(episodes[i])
            else:
                still.append(i)
        active = still
    return episodes


def run_episode(env, agent, seed: int | None, *, env_id: str, options: dict | None = None,
                max_steps: int | None = None) -> Episode:
    """One episode of ``agent`` on an already-made ``env`` (``run_batch`` of one)."""
    agent = resolve_agent(agent, env_id)
    return run_batch([env], as_batched(agent, 1), [(seed, None, None)], env_id=env_id, options=options,
                     max_steps=max_steps)[0]


def rollout(agent, env_id: str, seeds: Iterable[int], group_size: int = 1, *,
            groups_per_batch: int = 1, env_kwargs: dict | None = None, options: dict | None = None,
            max_steps: int | None = None, record_to: str | None = None,
            progress: bool = True, desc: str | None = None, video_episodes: int = 0,
            video_dir: str | Path | None = None, video_prefix: str | None = None) -> list[Episode]:
    """Episodes of ``agent`` on ``env_id``: for each seed, ``group_size``
    identical resets; ``groups_per_batch`` groups are stepped together (a
    batched agent sees ``group_size * groups_per_batch`` observations per
    call). ``agent`` is a name (``random``, ``expert``), an object with
    ``act`` or ``act_batch``, or a callable. ``record_to``: also write the
    episodes as Parquet (atomically) to this file. ``video_episodes``: film
    the first that many episodes into ``video_dir`` (see the module docstring)."""
    if group_size < 1 or groups_per_batch < 1:
        raise ValueError("group_size and groups_per_batch must be at least 1")
    seeds = list(seeds)
    agent = resolve_agent(agent, env_id)
    name = agent_name(agent)
    # A trained run remembers the env it was trained on: the modules that register
    # it and its kwargs (its observation format, e.g. mode="vector"); what the caller passes wins.
    for module in getattr(agent, "env_modules", None) or ():
        import_user_module(module)
    env_kwargs = {**(getattr(agent, "env_kwargs", None) or {}), **dict(env_kwargs or {})}
    if video_episodes > 0:
        env_kwargs.setdefault("render_mode", "rgb_array")
        video_dir = Path(video_dir if video_dir is not None else "videos")
        video_prefix = video_name(video_prefix or f"{name}-{env_id}")
    starts = [(seed, group, member) for group, seed in enumerate(seeds) for member in range(group_size)]
    width = min(len(starts), group_size * groups_per_batch) or 1
    envs = [make(env_id, **env_kwargs) for _ in range(width)]
    batched = as_batched(agent, width)
    episodes: list[Episode] = []
    bar = tqdm(total=len(starts), desc=desc or f"{name} on {env_id}", disable=not progress, unit="ep",
               leave=False)
    try:
        for first in range(0, len(starts), width):
            batch = starts[first:first + width]
            films = {i: _Film(envs[i], env_id, video_dir / f"{video_prefix}-ep{first + i:03d}.mp4")
                     for i in range(len(batch)) if first + i < video_episodes}
            episodes += run_batch(envs[:len(batch)], batched, batch, env_id=env_id, options=options,
                                  max_steps=max_steps, films=films, on_episode=lambda _: bar.update(1))
    finally:
        bar.close()
        for env in envs:
            env.close()
    if record_to is not None:
        write_episodes(episodes, record_to)
    return episodes

