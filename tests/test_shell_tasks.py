"""Free-form shell tasks: every reference solution passes its verifier, wrong answers fail,
the env keeps the contract (checker, bad input, determinism, snapshots)."""
from __future__ import annotations

import pytest
from gymnasium.utils.env_checker import check_env

import omnigym
from omnigym import info_keys as K
from omnigym.environments.shell.freeform_env import ShellTaskEnv
from omnigym.environments.shell.tasks import load_shell_suite

SUITE = load_shell_suite("freeform")


@pytest.fixture(scope="module")
def env():
    e = ShellTaskEnv()
    yield e
    e.close()


def test_suite_has_at_least_thirty_tasks_with_solutions():
    assert len(SUITE.tasks) >= 30
    assert all(t.solution and t.instruction for t in SUITE.tasks.values())


def test_env_checker():
    e = omnigym.make("shell/FreeForm-v0").unwrapped
    try:
        check_env(e, skip_render_check=True)
    finally:
        e.close()


@pytest.mark.parametrize("task_id", sorted(SUITE.tasks))
def test_reference_solution_passes_and_wrong_answers_fail(env, task_id):
    obs, info = env.reset(seed=0, options={"task": task_id})
    assert info[K.TASK_ID] == task_id and info[K.SUCCESS] is False
    # Doing nothing useful never passes: the start state is not a solution.
    for wrong in ("true", "echo 0", "ls"):
        _, reward, terminated, _, info = env.step(wrong)
        assert not terminated and reward == 0.0 and info[K.SUCCESS] is False, wrong
    env.reset(seed=0, options={"task": task_id})
    obs, reward, terminated, _, info = env.step(env.reference_solution())
    assert terminated and reward == 1.0 and info[K.SUCCESS], (task_id, info["verifier"], obs[-400:])


def test_bad_actions_are_invalid_not_exceptions(env):
    env.reset(seed=1)
    for bad in (None, "", "   ", 42, ["ls"], "x" * 100_000, b"\xff\xfe"):
        obs, reward, terminated, truncated, info = env.step(bad)
        assert isinstance(info[K.INVALID_ACTION], bool)
        assert env.observation_space.contains(obs)
    _, _, _, _, info = env.step(None)
    assert info[K.INVALID_ACTION] is True
    _, _, _, _, info = env.step("ls")
    assert info[K.INVALID_ACTION] is False


def test_same_seed_same_episode(env):
    runs = []
    for _ in range(2):
        obs, info = env.reset(seed=7)
        steps = [obs]
        for cmd in ("ls", "touch made.txt", "cat notes.txt | head -n 2"):
            obs, reward, terminated, truncated, info = env.step(cmd)
            steps.append((obs, reward, info[K.STATE_KEY]))
        runs.append(steps)
    assert runs[0] == runs[1]


def test_snapshots_round_trip_and_state_key_tracks_the_file_system(env):
    obs, info = env.reset(seed=0, options={"task": "delete_tmp"})
    key0 = info[K.STATE_KEY]
    state = env.get_state()
    _, _, _, _, info = env.step("rm tmp/cache.tmp")
    assert info[K.STATE_KEY] != key0
    _, _, _, _, info = env.step("ls tmp")
    obs2, info2 = env.set_state(state)
    assert obs2 == obs and info2[K.STATE_KEY] == key0
    obs3, _, _, _, info = env.step("ls tmp")
    assert "cache.tmp" in obs3.split("$ ls tmp")[-1]      # the file is back after set_state


def test_unknown_task_and_mode_fail_clearly():
    with pytest.raises(ValueError, match="unknown shell tasks"):
        ShellTaskEnv(tasks=["nope"])
    with pytest.raises(ValueError, match="mode 'text'"):
        ShellTaskEnv(mode="discrete")
