"""Free-form shell tasks: every reference solution passes its verifier, wrong answers fail,
the env keeps the contract (checker, bad input, determinism, snapshots)."""
from __future__ import annotations

import pytest
from gymnasium.utils.env_checker import check_env

import omnigym
from omnigym import info_keys as K
from omnigym.environments.shell.freeform_env import ShellTaskEnv
from omnigym.tasks.shell import load_shell_suite

SUITE = load_shell_suite("freeform")


@pytest.fixture(scope="module")
def env():
    e = ShellTaskEnv()
    yield e
    e.close()


def test_suite_has_at_least_thirty_tasks_with_solutions():
    assert len(SUITE.tasks) >= 30
    assert all(t.data["solution"] and t.instruction for t in SUITE.tasks.values())


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
    obs, info = env.reset(seed=0, options={"task": task_id})
    expert = env.make_expert()
    expert.reset(env=env)
    obs, reward, terminated, _, info = env.step(expert.act(obs, info))
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
    assert "cache.tmp" in obs3      # the file is back after set_state


def test_unknown_task_and_mode_fail_clearly():
    with pytest.raises(ValueError, match="unknown shell tasks"):
        ShellTaskEnv(tasks=["nope"])
    with pytest.raises(ValueError, match="mode 'text'"):
        ShellTaskEnv(mode="discrete")


# ------------------------------------------------------------ the contract
def test_observations_are_the_new_text_only_and_turns_carry_the_chat(env):
    obs, info = env.reset(seed=0, options={"task": "count_lines"})
    assert SUITE.tasks["count_lines"].instruction in obs and "one shell command" in obs
    assert {k: info[k] for k in ("exit_code", "limit", "verifier")} == {"exit_code": None, "limit": None,
                                                                      "verifier": None}
    system, user = info[K.TURN]
    assert system["role"] == "system" and info[K.INSTRUCTION] in system["content"]
    assert user == {"role": "user", "content": obs}
    reset_keys = set(info)
    obs, _, _, _, info = env.step("echo hello; echo oops >&2; false")
    assert obs == "hello\n[stderr] oops\n[exit 1]"      # that command's output, nothing older
    assert set(info) == reset_keys and info["exit_code"] == 1 and info["verifier"]
    assert info[K.TURN] == [{"role": "assistant", "content": "echo hello; echo oops >&2; false"},
                            {"role": "user", "content": obs}]
    obs, _, _, _, info = env.step("pwd")
    assert "hello" not in obs and obs.endswith("[exit 0]")


def test_invalid_commands_say_why_and_cost_the_penalty():
    e = ShellTaskEnv(invalid_penalty=0.5)
    try:
        _, info = e.reset(seed=0)
        key = info[K.STATE_KEY]
        for bad, why in ((None, "strings"), ("  ", "empty"), (b"\xff\xfe", "UTF-8"), ("x" * 5000, "4096")):
            obs, reward, terminated, _, info = e.step(bad)
            assert info[K.INVALID_ACTION] is True and reward == -0.5 and not terminated
            assert obs.startswith("Invalid action:") and why in obs, obs
            assert info["exit_code"] is None and info[K.TURN][1]["content"] == obs
        assert len(info[K.TURN][0]["content"]) == 4096
        _, reward, _, _, info = e.step(b"ls")      # bytes that are text are a command
        assert info[K.INVALID_ACTION] is False and reward == 0.0 and info[K.STATE_KEY] != key
    finally:
        e.close()


def test_state_key_method_covers_task_files_and_last_output(env):
    _, a = env.reset(seed=0, options={"task": "count_lines"})
    assert a[K.STATE_KEY] == env.state_key()
    _, b = env.reset(seed=0, options={"task": "count_words"})
    assert b[K.STATE_KEY] != a[K.STATE_KEY]  # same files, another task
    _, _, _, _, ls = env.step("ls")
    _, _, _, _, pwd = env.step("pwd")
    assert ls[K.STATE_KEY] != pwd[K.STATE_KEY] == env.state_key()  # same files, other output
    _, _, _, _, again = env.step("ls")
    assert again[K.STATE_KEY] == ls[K.STATE_KEY]


def test_set_state_returns_the_moment_of_the_snapshot_in_a_fresh_env(env):
    import pickle
    env.reset(seed=0, options={"task": "make_tree"})
    at_snap = env.step("mkdir build && echo made")
    snapshot = pickle.loads(pickle.dumps(env.get_state()))
    after = env.step("mkdir -p build/out/bin")
    assert after[2] and after[4][K.SUCCESS]
    fresh = ShellTaskEnv()
    try:
        obs, info = fresh.set_state(snapshot)
        assert (obs, info) == (at_snap[0], at_snap[4]) and info[K.STATE_KEY] == fresh.state_key()
        assert fresh.step("mkdir -p build/out/bin")[1:] == after[1:]
    finally:
        fresh.close()


def test_expert_solves_every_panel_episode_through_make():
    from omnigym.agents import ExpertAgent
    e = omnigym.make("shell/FreeForm-v0")
    try:
        agent = ExpertAgent()
        assert e.unwrapped.make_expert(anything=1).name == "expert"
        for seed in omnigym.registry.panels_of("shell/FreeForm-v0")["test"][1][:5]:
            obs, info = e.reset(seed=seed)
            agent.reset(env=e, seed=seed)
            obs, reward, terminated, _, info = e.step(agent.act(obs, info))
            assert terminated and reward == 1.0 and info[K.SUCCESS]
    finally:
        e.close()


def test_admissible_actions_are_read_only_commands_that_run(env):
    _, info = env.reset(seed=0, options={"task": "delete_tmp"})
    assert "ls" in info[K.ADMISSIBLE_ACTIONS] and "cat notes.txt" in info[K.ADMISSIBLE_ACTIONS]
    key = info[K.STATE_KEY]
    for command in info[K.ADMISSIBLE_ACTIONS]:
        _, _, _, _, info = env.step(command)
        assert info["exit_code"] == 0, command
    assert env.get_state()["fs"].digest == env._baseline.digest  # looking around changed no file
    assert key != info[K.STATE_KEY]


def test_freeform_panels_come_from_its_suite_and_splits_pick_tasks():
    panels = omnigym.registry.panels_of("shell/FreeForm-v0")
    assert panels == {"train": ("train", list(range(50))), "test": ("train", list(range(200000, 200050)))}
    assert ShellTaskEnv(split="train").task_ids == list(SUITE.splits["train"])
    with pytest.raises(KeyError, match="heldout"):
        ShellTaskEnv(split="nope")


# ------------------------------------------------------------- suite files
GOOD_TASK = "  t1: {instruction: print 1, verify: {stdout: '1'}, solution: echo 1}\n"


@pytest.mark.parametrize("text, names", [
    ("tasks:\n  t1: {instruction: x, solution: echo 1}\n", ["t1", "verify"]),
    ("tasks:\n  t1: {instruction: x, verify: {stdout: '1'}}\n", ["t1", "solution"]),
    ("tasks:\n  t1: {instruction: x, verify: {stdoot: '1'}, solution: echo 1}\n", ["t1", "stdoot"]),
    ("tasks:\n  t1: {instruction: x, verify: {files: {a: {colour: red}}}, solution: echo 1}\n", ["t1", "colour"]),
    ("tasks:\n  t1: {instruction: x, verify: {files: {a: {mode: 0o9}}}, solution: echo 1}\n", ["t1", "0o9"]),
    ("tasks:\n  t1: {instruction: x, verify: {files: {a: {content_from: b, transform: rot13}}}, "
     "solution: echo 1}\n", ["t1", "rot13"]),
    ("tasks:\n" + GOOD_TASK + "fixtures: {}\n", ["fixtures"]),
    ("tasks:\n" + GOOD_TASK + "fixture: {files: {a: {content: x, mode: rw}}}\n", ["fixture a", "rw"]),
])
def test_bad_shell_suites_fail_at_load_naming_file_and_task(tmp_path, text, names):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as exc:
        load_shell_suite(str(path))
    for name in [str(path.resolve()), *names]:
        assert name in str(exc.value), f"{name!r} not in: {exc.value}"


def test_a_users_shell_suite_plays(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("max_steps: 3\nfixture:\n  files: {run.sh: {content: 'echo hi', mode: 0o644}}\n"
                    "tasks:\n" + GOOD_TASK +
                    "  t2: {instruction: x, verify: {files: {run.sh: {mode_set: 0o100}}}, solution: chmod u+x run.sh}\n")
    suite = load_shell_suite(str(path))
    assert suite.extras["fixture"] == {"files": {"run.sh": {"content": "echo hi", "mode": 0o644}}, "setup": ""}
    e = ShellTaskEnv(suite=str(path))
    try:
        for task_id in ("t1", "t2"):
            e.reset(seed=0, options={"task": task_id})
            assert e.step(suite.tasks[task_id].data["solution"])[4][K.SUCCESS], task_id
    finally:
        e.close()
