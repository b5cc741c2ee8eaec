"""ShIOEnv-style command construction: the contract on every shell id, masks that
hold, the reward terms, and an execution log for datasets."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import omnigym
from omnigym import info_keys as K
from omnigym.environments.shell.construct_env import ShellConstructEnv


@pytest.fixture(scope="module")
def ls_env():
    env = ShellConstructEnv("ls")
    yield env
    env.close()


def test_every_utility_with_a_grammar_has_an_id():
    # gymnasium's check_env and every omnigym convention run on each of them in
    # tests/test_contract.py (omnigym check over every registered id and mode).
    ids = [e.id for e in omnigym.list_envs("shell")]
    assert len([i for i in ids if i.startswith("shell/Construct") and i != "shell/Construct-v0"]) >= 20
    assert all(set(omnigym.registry.entry(i).modes) == {"discrete", "text", "vector"}
               for i in ids if i.startswith("shell/Construct"))


def test_masked_random_walks_never_take_invalid_actions(ls_env):
    rng = np.random.default_rng(0)
    for seed in range(6):
        obs, info = ls_env.reset(seed=seed)
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(info[K.ACTION_MASK])))
            obs, reward, terminated, truncated, info = ls_env.step(action)
            assert info[K.INVALID_ACTION] is False
            done = terminated or truncated


def test_masked_choice_is_invalid_and_unmasked_variant_allows_it():
    masked, unmasked = ShellConstructEnv("head"), ShellConstructEnv("head", masked=False)
    try:
        _, info = masked.reset(seed=0)
        forbidden = np.flatnonzero(~info[K.ACTION_MASK][:len(masked.vocab)])
        assert len(forbidden) > 0
        _, _, _, _, info = masked.step(int(forbidden[0]))
        assert info[K.INVALID_ACTION] is True
        _, info = unmasked.reset(seed=0)
        assert info[K.ACTION_MASK][:len(unmasked.vocab)].all()
        assert (info["grammar_mask"] == masked.reset(seed=0)[1]["grammar_mask"]).all()
        _, _, _, _, info = unmasked.step(int(forbidden[0]))
        assert info[K.INVALID_ACTION] is False
    finally:
        masked.close()
        unmasked.close()


def test_rewards_follow_exit_status_and_redundancy():
    env = ShellConstructEnv("ls", mode="text", masked=False)
    try:
        env.reset(seed=0)
        _, r1, _, _, info = env.step("notes.txt")
        assert info["exit_code"] == 0 and r1 == pytest.approx(1.0)        # clean exit, new behaviour
        _, r2, _, _, info = env.step("-1")                                # one name per line: same output
        assert info["exit_code"] == 0 and r2 == pytest.approx(1.0 - 0.5)  # redundant argument
        _, r3, _, _, info = env.step("missing-file")
        assert info["exit_code"] != 0 and r3 == pytest.approx(-1.0)
        log = env.executions[-3:]
        assert [e["args"] for e in log] == [["notes.txt"], ["notes.txt", "-1"],
                                             ["notes.txt", "-1", "missing-file"]]
        assert log[0]["signature"] == log[1]["signature"] != log[2]["signature"]
    finally:
        env.close()


def test_bad_actions_never_raise(ls_env):
    ls_env.reset(seed=1)
    for bad in (-1, 10**9, 1.5, "3", None, [1], True):
        obs, _, _, _, info = ls_env.step(bad)
        assert info[K.INVALID_ACTION] is True and ls_env.observation_space.contains(obs)
    text = ShellConstructEnv("wc", mode="text")
    try:
        text.reset(seed=0)
        for bad in ("", None, "x" * 1000, b"\xff"):
            _, _, _, _, info = text.step(bad)
            assert isinstance(info[K.INVALID_ACTION], bool)
        _, _, _, _, info = text.step("-l")
        assert info[K.INVALID_ACTION] is False and info["command"] == "wc -l"
    finally:
        text.close()


def test_same_seed_same_episode_across_env_instances():
    """Fixture files carry one fixed timestamp, so even `ls -l` repeats exactly."""
    runs = []
    for _ in range(2):
        env = ShellConstructEnv("ls", mode="text", masked=False)
        try:
            obs, info = env.reset(seed=3)
            steps = [(obs, info[K.STATE_KEY])]
            for arg in ("-l", "-a", "notes.txt"):
                obs, reward, _, _, info = env.step(arg)
                steps.append((obs, reward, info[K.STATE_KEY]))
            runs.append(steps)
        finally:
            env.close()
    assert runs[0] == runs[1]
    assert "Jan  1  2026" in runs[0][1][0]


# ------------------------------------------------------------ the contract
def test_snapshots_round_trip_into_a_fresh_env_and_pickle():
    import pickle
    env = ShellConstructEnv("ls", mode="text", masked=False)
    fresh = ShellConstructEnv("ls", mode="text", masked=False)
    try:
        env.reset(seed=0)
        env.step("-a")
        at_snap = env.step("-1")
        snapshot = pickle.loads(pickle.dumps(env.get_state()))
        after = env.step("notes.txt")
        env.step("<execute>")
        for target in (env, fresh):
            obs, info = target.set_state(snapshot)
            assert obs == at_snap[0] and info[K.TURN] == at_snap[4][K.TURN]
            assert info[K.STATE_KEY] == at_snap[4][K.STATE_KEY] == target.state_key()
            assert target.args == ["-a", "-1"] and target.state.tokens == ["-a", "-1"]
            replay = target.step("notes.txt")
            assert replay[:4] == after[:4] and replay[4][K.STATE_KEY] == after[4][K.STATE_KEY]
        # the snapshot's grammar state was not advanced by playing on from it
        assert snapshot["grammar"].tokens == ["-a", "-1"]
    finally:
        env.close()
        fresh.close()


def test_snapshot_in_discrete_mode_restores_the_mask(ls_env):
    _, info = ls_env.reset(seed=2)
    allowed = np.flatnonzero(info[K.ACTION_MASK])
    _, _, _, _, info = ls_env.step(int(allowed[1]))
    snapshot, mask = ls_env.get_state(), info[K.ACTION_MASK].copy()
    ls_env.step(int(np.flatnonzero(info[K.ACTION_MASK])[1]))
    _, restored = ls_env.set_state(snapshot)
    assert (restored[K.ACTION_MASK] == mask).all() and restored[K.ADMISSIBLE_ACTIONS] == info[K.ADMISSIBLE_ACTIONS]


def test_state_key_follows_the_command_and_the_end_not_the_feedback():
    env = ShellConstructEnv("ls", mode="text")
    try:
        _, info = env.reset(seed=0)
        start = info[K.STATE_KEY]
        assert start == env.state_key()
        _, _, _, _, info = env.step("--no-such-option")
        assert info[K.INVALID_ACTION] and info[K.STATE_KEY] == start  # nothing was appended
        _, _, _, _, info = env.step("-a")
        assert info[K.STATE_KEY] not in (start, None) and info[K.STATE_KEY] == env.state_key()
        before_end = info[K.STATE_KEY]
        _, _, terminated, _, info = env.step("<execute>")
        assert terminated and info[K.STATE_KEY] != before_end  # an ended episode is another situation
        other = ShellConstructEnv("wc", mode="text")
        try:
            assert other.reset(seed=0)[1][K.STATE_KEY] != start  # another utility
        finally:
            other.close()
    finally:
        env.close()


def test_turns_in_text_and_discrete_modes_only():
    for mode in ("text", "discrete", "vector"):
        env = ShellConstructEnv("wc", mode=mode)
        try:
            obs, info = env.reset(seed=0)
            if mode == "vector":
                assert K.TURN not in info and K.TURN not in env.step(0)[4]
                continue
            system, user = info[K.TURN]
            assert system["role"] == "system" and "wc" in system["content"] and user["content"] == obs
            action = "-l" if mode == "text" else env.index["-l"]
            obs, _, _, _, info = env.step(action)
            assert info[K.TURN] == [{"role": "assistant", "content": "-l"}, {"role": "user", "content": obs}]
            bad = "" if mode == "text" else -1
            obs, _, _, _, info = env.step(bad)
            assert info[K.INVALID_ACTION] and info[K.TURN][0]["content"] == str(bad)
            assert info[K.TURN][1] == {"role": "user", "content": obs} and "Invalid action" in obs
        finally:
            env.close()


def test_invalid_penalty_and_reset_guard():
    env = ShellConstructEnv("head", invalid_penalty=0.25)
    try:
        with pytest.raises(gym.error.ResetNeeded):
            env.step(0)
        with pytest.raises(gym.error.ResetNeeded):
            env.get_state()
        _, info = env.reset(seed=0)
        forbidden = int(np.flatnonzero(~info[K.ACTION_MASK][:len(env.vocab)])[0])
        _, reward, _, _, info = env.step(forbidden)
        assert info[K.INVALID_ACTION] and reward == pytest.approx(-0.25)
        _, reward, _, _, info = env.step(float("nan"))
        assert info[K.INVALID_ACTION] and reward == pytest.approx(-0.25)
    finally:
        env.close()


def test_construct_ids_have_named_seed_panels():
    for env_id in ("shell/Construct-v0", "shell/ConstructLs-v0"):
        assert omnigym.registry.panels_of(env_id) == {"train": (None, list(range(50))),
                                                      "test": (None, list(range(100000, 100050)))}
        assert omnigym.registry.entry(env_id).expert is None
