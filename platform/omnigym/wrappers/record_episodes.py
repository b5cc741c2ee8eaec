"""RecordEpisodes: write every step of every episode to Parquet shards.

Recording sits in a wrapper so any environment, any policy and any training or
evaluation loop produces the same dataset without cooperating with it. Shards
are written with :func:`omnigym.episodes.write_episodes` (atomic), so a crash
loses at most the episodes not yet flushed, never corrupts a finished shard.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from omnigym.episodes import Episode, write_episodes

__all__ = ["RecordEpisodes"]


def _snapshot(value: Any) -> Any:
    """Copy arrays (and containers holding them): envs may reuse their buffers."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    return value


class RecordEpisodes(gym.Wrapper):
    """Record episodes into ``{out_dir}/{file_prefix}-{NNNNNN}.parquet`` shards.

    A shard is written every ``episodes_per_file`` finished episodes; ``flush()``
    writes the finished ones held so far and ``close()`` also writes the episode
    in progress. An episode cut short by ``reset()`` (or by ``close()``) is kept
    with ``metadata["incomplete"] = True`` rather than dropped. Shard numbers
    continue after the highest one already in ``out_dir``, so earlier recordings
    are never overwritten.
    """

    def __init__(self, env: gym.Env, out_dir: str | os.PathLike, episodes_per_file: int = 100,
                 policy: dict | None = None, metadata: dict | None = None,
                 file_prefix: str = "episodes"):
        super().__init__(env)
        if episodes_per_file < 1:
            raise ValueError("episodes_per_file must be >= 1")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.episodes_per_file = int(episodes_per_file)
        self.policy = dict(policy or {})
        self.metadata = dict(metadata or {})
        self.file_prefix = file_prefix
        self.env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        self.recorded_paths: list[Path] = []
        self._pending: list[Episode] = []
        self._current: Episode | None = None
        self._pattern = re.compile(rf"^{re.escape(file_prefix)}-(\d+)\.parquet$")
        self._next_shard = self._first_free_shard()
        self._closed = False

    def _first_free_shard(self) -> int:
        found = [int(m.group(1)) for p in self.out_dir.iterdir()
                 if (m := self._pattern.match(p.name))]
        return max(found, default=-1) + 1

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._keep_unfinished()
        obs, info = self.env.reset(seed=seed, options=options)
        self._current = Episode.from_reset(
            _snapshot(obs), _snapshot(info), env_id=self.env_id, seed=seed,
            policy=self.policy, metadata=self.metadata)
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._current is None:
            warnings.warn("RecordEpisodes: step() without a reset() after the episode ended; "
                          "this step is not recorded", RuntimeWarning, stacklevel=2)
        else:
            self._current.append_step(_snapshot(obs), _snapshot(action), reward, terminated,
                                      truncated, _snapshot(info))
            if terminated or truncated:
                self._pending.append(self._current)
                self._current = None
                if len(self._pending) >= self.episodes_per_file:
                    self._write(self._pending[:self.episodes_per_file])
                    del self._pending[:self.episodes_per_file]
        return obs, reward, terminated, truncated, info

    def _keep_unfinished(self) -> None:
        if self._current is not None:
            self._current.metadata["incomplete"] = True
            self._pending.append(self._current)
            self._current = None

    def _write(self, episodes: list[Episode]) -> Path:
        # Re-scan so another recorder sharing the directory is not overwritten either.
        self._next_shard = max(self._next_shard, self._first_free_shard())
        path = self.out_dir / f"{self.file_prefix}-{self._next_shard:06d}.parquet"
        write_episodes(episodes, path)
        self._next_shard += 1
        self.recorded_paths.append(path)
        return path

    def flush(self) -> None:
        """Write the finished episodes not yet in a shard (in shards of ``episodes_per_file``)."""
        while self._pending:
            self._write(self._pending[:self.episodes_per_file])
            del self._pending[:self.episodes_per_file]

    def close(self) -> None:
        """Write everything recorded, the episode in progress included, then close the env."""
        try:
            if not self._closed:
                self._closed = True
                self._keep_unfinished()
                self.flush()
        finally:
            super().close()
