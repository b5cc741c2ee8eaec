"""Grouped resets: several copies of an env start each episode from the same state.

Group-relative RL (GRPO, GiGPO) compares the episodes of a group, so every
member of a group must start its k-th episode from the identical state, even
when the members' previous episodes ended at different times. A trainer that
steps many sub-environments side by side (RLlib's env runners) numbers them
with a global ``slot``; ``GroupedResets`` makes slot ``s`` member
``s % group_size`` of group slot ``s // group_size`` and takes the seed (and
task) of each reset from a ``GroupSchedule`` instead of from its caller::

    schedule = GroupSchedule(group_size=4, seeds=range(1000), num_groups=2)
    envs = [GroupedResets(make("household/Hold-v0", mode="vector"), schedule, slot) for slot in range(8)]

Every info (reset and step) carries ``group`` (one id per group slot and
episode number) and ``member``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import gymnasium as gym

from omnigym import info_keys as K


class GroupStart(NamedTuple):
    group: int          # unique per (group slot, episode number)
    seed: int
    options: dict       # reset options ({"task": ...} when the schedule has tasks)


@dataclass(frozen=True)
class GroupSchedule:
    """Which start each group plays: the k-th episode of group slot g is
    start number ``k * num_groups + g``, so the groups running side by side
    play consecutive starts and no start number is ever played by two groups.
    Start number i resets with ``seeds[i % len(seeds)]`` and, with ``tasks``,
    ``options={"task": tasks[i % len(tasks)]}``."""

    group_size: int
    seeds: Sequence[int]
    tasks: Sequence | None = None
    num_groups: int = 1

    def __post_init__(self):
        if self.group_size < 1 or self.num_groups < 1:
            raise ValueError(f"group_size and num_groups must be at least 1, got {self.group_size}, {self.num_groups}")
        if len(self.seeds) == 0:
            raise ValueError("a group schedule needs at least one seed")
        if self.tasks is not None and len(self.tasks) == 0:
            raise ValueError("tasks: give at least one task, or None to let the seed pick it")

    @property
    def num_slots(self) -> int:
        return self.group_size * self.num_groups

    def start(self, group_slot: int, episode: int) -> GroupStart:
        number = episode * self.num_groups + group_slot
        options = {} if self.tasks is None else {"task": self.tasks[number % len(self.tasks)]}
        return GroupStart(number, int(self.seeds[number % len(self.seeds)]), options)


class GroupedResets(gym.Wrapper):
    """Sub-environment ``slot`` of a grouped sampler (see the module docstring).

    Its k-th reset ignores the seed it is given and resets with the start the
    schedule assigns to (its group slot, k); other reset options pass through,
    a scheduled task replaces any given one."""

    def __init__(self, env: gym.Env, schedule: GroupSchedule, slot: int):
        super().__init__(env)
        if not 0 <= slot < schedule.num_slots:
            raise ValueError(f"slot {slot} is outside the schedule's {schedule.num_slots} slots "
                             f"({schedule.num_groups} groups of {schedule.group_size})")
        self.schedule = schedule
        self.group_slot, self.member = divmod(slot, schedule.group_size)
        self.resets = 0
        self._ids: dict = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        start = self.schedule.start(self.group_slot, self.resets)
        self.resets += 1
        obs, info = self.env.reset(seed=start.seed, options={**(options or {}), **start.options} or None)
        self._ids = {K.GROUP: start.group, K.MEMBER: self.member}
        return obs, {**info, **self._ids}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, **self._ids}
