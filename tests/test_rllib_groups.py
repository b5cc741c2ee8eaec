"""Grouped resets: members of a group start their k-th episodes from identical
states, alone (GroupedResets) and across RLlib env runners and sub-envs."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from ray.rllib.env.env_context import EnvContext

from omnigym import info_keys as K
from omnigym.groups import GroupedResets, GroupSchedule
from omnigym.registry import make
from omnigym.rllib.env_spec import resolve_env

HOLD = "household/Hold-v0"


def hold(schedule: GroupSchedule, slot: int) -> GroupedResets:
    return GroupedResets(make(HOLD, mode="vector"), schedule, slot)


def play(env, info: dict, steps: int, rng) -> dict:
    """Up to ``steps`` admissible actions from ``info``'s state; returns the last info."""
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(info[K.ACTION_MASK]))))
        if terminated or truncated:
            break
    return info


def test_members_start_each_episode_alike_whatever_seed_and_whenever_they_reset():
    schedule = GroupSchedule(group_size=2, seeds=range(500, 510), num_groups=2)
    envs = [hold(schedule, slot) for slot in range(4)]
    rng = np.random.default_rng(0)
    starts = defaultdict(list)           # (group slot, episode) -> reset infos of its members
    for slot, env in enumerate(envs):
        # Members reset with different seeds and after episodes of different lengths.
        for k in range(3):
            _, info = env.reset(seed=int(rng.integers(1 << 30)))
            starts[slot // 2, k].append(info)
            step_info = play(env, info, steps=1 + 3 * slot + k, rng=rng)
            assert (step_info[K.GROUP], step_info[K.MEMBER]) == (info[K.GROUP], info[K.MEMBER])
    for (group_slot, k), infos in starts.items():
        assert [i[K.MEMBER] for i in infos] == [0, 1]
        assert {i[K.GROUP] for i in infos} == {k * 2 + group_slot}
        assert len({i[K.STATE_KEY] for i in infos}) == 1
    assert len({infos[0][K.STATE_KEY] for infos in starts.values()}) == len(starts)     # groups differ
    # The info keys of reset and step are the same (the contract), group ids included.
    _, reset_info = envs[0].reset()
    assert set(play(envs[0], reset_info, 1, rng)) == set(reset_info)


def test_scheduled_tasks_are_played_and_bad_slots_refused():
    schedule = GroupSchedule(group_size=1, seeds=[7], tasks=["hold:mug", "hold:book"], num_groups=1)
    env = hold(schedule, 0)
    assert [env.reset(options={"task": "hold:apple"})[1][K.TASK_ID] for _ in range(3)] == \
        ["hold:mug", "hold:book", "hold:mug"]
    with pytest.raises(ValueError, match="outside the schedule"):
        hold(schedule, 1)
    with pytest.raises(ValueError, match="at least one seed"):
        GroupSchedule(group_size=2, seeds=[])


def test_env_creator_numbers_the_sub_envs_of_each_runner():
    from omnigym.rllib.envs import EnvCreator
    spec = resolve_env(HOLD, {"mode": "vector"}, groups=GroupSchedule(4, range(100), num_groups=2))
    creator = EnvCreator(spec, envs_per_runner=4)

    def build_runner_envs(worker_index):
        # One EnvContext per (re)build of a runner's vector env, as SingleAgentEnvRunner does.
        ctx = EnvContext({}, worker_index=worker_index, num_workers=2)
        infos = [creator(ctx).reset()[1] for _ in range(4)]
        return [(i[K.GROUP], i[K.MEMBER]) for i in infos]

    assert build_runner_envs(1) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert build_runner_envs(2) == [(1, 0), (1, 1), (1, 2), (1, 3)]
    assert build_runner_envs(2) == [(1, 0), (1, 1), (1, 2), (1, 3)]     # a rebuilt runner numbers alike


def test_rllib_env_runners_sample_whole_groups_of_identical_starts(ray_session, tmp_path):
    """2 env runners x 4 sub-envs, groups of 4: the first group lives in runner 1, the second in runner 2."""
    from omnigym.rllib.algo_config import build_algo_config
    from omnigym.rllib.env_spec import train_env
    from omnigym.rllib.train_config import compose
    cfg = compose(["env=household_hold", "groups.size=4", "groups.seeds=[300,399]",
                   "resources.num_env_runners=2", "resources.num_envs_per_env_runner=4",
                   "policy.config.hidden=[16]", "algo.training.train_batch_size_per_learner=320",
                   "algo.training.minibatch_size=80"])
    algo = build_algo_config(cfg, train_env(cfg), tmp_path).build_algo()
    try:
        per_runner = algo.env_runner_group.foreach_env_runner(
            lambda runner: runner.sample(num_timesteps=400, random_actions=False), local_env_runner=False)
    finally:
        algo.stop()
    assert len(per_runner) == 2
    starts = defaultdict(dict)           # group id -> {member: state key at reset}
    for runner, episodes in enumerate(per_runner):
        for episode in episodes:
            infos = episode.get_infos()
            assert all(K.GROUP in i and K.MEMBER in i for i in infos)
            first = infos[0]
            if episode.t_started == 0:   # the chunk begins with the reset info
                assert first[K.GROUP] % 2 == runner     # group slot 0 in runner 1, group slot 1 in runner 2
                starts[int(first[K.GROUP])][int(first[K.MEMBER])] = first[K.STATE_KEY]
    assert {0, 1} <= set(starts)
    assert all(sorted(starts[g]) == [0, 1, 2, 3] for g in (0, 1))    # every member's first episode
    for members in starts.values():
        assert len(set(members.values())) == 1                          # identical starts in a group
    assert len({next(iter(m.values())) for m in starts.values()}) == len(starts)   # groups differ
