"""The contract every robots id keeps, whatever its backend (see robots/base.py)."""
from __future__ import annotations

import copy
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from omnigym import info_keys as K
from omnigym.registry import list_envs, make

ROBOT_IDS = [e.id for e in list_envs("robots")]
SMALL = dict(image_size=(32, 40))


def _same(a, b) -> bool:
    """Equal observations or infos, arrays compared by value."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _camera(env_id):
    env = make(env_id, mode="vector").unwrapped
    cam = env.available_cameras[0]
    env.close()
    return cam


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_family_is_complete():
    names = {i.split("/")[1] for i in ROBOT_IDS}
    for expected in ("HalfCheetah-v5", "Ant-v5", "Reach-v0", "Push-v0", "PickPlace-v0", "PushT-v0",
                     "LangPush-v0", "BulletReach-v0", "BulletPush-v0"):
        assert expected in names


@pytest.mark.parametrize("env_id", ROBOT_IDS)
def test_env_checker_both_modes(env_id):
    vec = make(env_id, mode="vector")
    check_env(vec.unwrapped, skip_render_check=True)
    vec.close()
    cam = _camera(env_id)
    env = make(env_id, mode="dict", cameras=(cam,), **SMALL)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"observation.state", f"observation.images.{cam}", "instruction"}
    assert obs["observation.state"].dtype == np.float32
    assert obs[f"observation.images.{cam}"].shape == (32, 40, 3)
    assert obs["instruction"] == info[K.INSTRUCTION] != ""
    for key in (K.SUCCESS, K.INSTRUCTION, K.TASK_ID, K.INVALID_ACTION, K.STATE_KEY, K.ACTION_CLIPPED):
        assert key in info
    env.close()


@pytest.mark.parametrize("env_id", ROBOT_IDS)
def test_bad_actions_are_flagged_never_raised(env_id):
    env = make(env_id, mode="vector")
    env.reset(seed=1)
    shape = env.action_space.shape
    for bad in (np.full(shape, np.nan), np.zeros(shape[0] + 1), None, "forward", [[1.0]], np.full(shape, np.inf)):
        obs, reward, terminated, truncated, info = env.step(bad)
        assert info[K.INVALID_ACTION] is True
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
    obs, *_, info = env.step(env.action_space.sample())
    assert info[K.INVALID_ACTION] is False and info[K.ACTION_CLIPPED] is False
    # Out-of-range values are clipped or passed on like gymnasium, never rejected.
    *_, info = env.step(env.action_space.high * 10)
    assert info[K.INVALID_ACTION] is False and info[K.ACTION_CLIPPED] is True
    env.close()


@pytest.mark.parametrize("env_id", ROBOT_IDS)
def test_info_keys_reset_guard_and_invalid_penalty(env_id):
    plain, fined = make(env_id, mode="vector").unwrapped, make(env_id, mode="vector", invalid_penalty=0.5).unwrapped
    for env in (plain, fined):
        with pytest.raises(gym.error.ResetNeeded):
            env.step(env.action_space.sample())
        with pytest.raises(gym.error.ResetNeeded):
            env.get_state()
    _, info = plain.reset(seed=4)
    fined.reset(seed=4)
    assert info[K.ACTION_CLIPPED] is False and info[K.STATE_KEY] == plain.state_key()
    bad = np.full(plain.action_space.shape, np.nan)
    _, r_plain, *_, i_plain = plain.step(bad)
    _, r_fined, *_, i_fined = fined.step(bad)
    assert i_plain[K.INVALID_ACTION] and r_fined == r_plain - 0.5
    *_, good = plain.step(plain.action_space.sample())
    assert set(info) == set(i_plain) == set(good)  # every info has the same keys
    assert good[K.STATE_KEY] == plain.state_key()
    plain.close()
    fined.close()


@pytest.mark.parametrize("env_id", ROBOT_IDS)
def test_set_state_returns_what_the_env_returned_then(env_id):
    env = make(env_id, mode="vector").unwrapped
    rng = np.random.default_rng(0)
    env.reset(seed=5)
    for _ in range(3):
        returned = env.step(rng.uniform(env.action_space.low, env.action_space.high))
    snap = env.get_state()
    at_snapshot = copy.deepcopy((returned[0], returned[4]))
    env.step(env.action_space.sample())
    obs, info = env.set_state(snap)
    assert _same(obs, at_snapshot[0]) and _same(info, at_snapshot[1]) and info[K.STATE_KEY] == env.state_key()
    obs[:] = 0  # what a caller does with the result does not touch the snapshot
    info.clear()
    again = env.set_state(snap)
    assert _same(again[0], at_snapshot[0]) and _same(again[1], at_snapshot[1])
    env.step(env.action_space.sample())  # nor does the simulation (gymnasium's Humanoid info views MjData)
    env.close()
    if getattr(env, "backend_name", None) == "pybullet":
        return  # PyBullet's saved states live in their own physics client
    fresh = make(env_id, mode="vector").unwrapped
    elsewhere = fresh.set_state(snap)
    assert _same(elsewhere[0], at_snapshot[0]) and _same(elsewhere[1], at_snapshot[1])
    assert fresh.state_key() == at_snapshot[1][K.STATE_KEY]
    fresh.close()


@pytest.mark.parametrize("env_id", ROBOT_IDS)
def test_state_key_covers_the_drawn_randomisation(env_id):
    env = make(env_id, mode="vector").unwrapped
    _, nominal = env.reset(seed=3)
    _, randomised = env.reset(seed=3, options={"randomize": {"mass": [0.5, 0.6]}})
    assert nominal[K.STATE_KEY] != randomised[K.STATE_KEY]
    env.close()


def test_experts_come_from_the_env():
    for e in list_envs("robots"):
        env = make(e.id, mode="vector").unwrapped
        assert hasattr(env, "make_expert") == bool(e.expert), e.id
        if e.expert:
            assert " " in e.expert and "\n" not in e.expert  # a one-line description, not an import path
            assert env.make_expert(unknown_option=1).name == "expert"
        env.close()


@pytest.mark.parametrize("env_id", ROBOT_IDS)
def test_same_seed_same_episode_and_snapshot_replay(env_id):
    a, b = make(env_id, mode="vector"), make(env_id, mode="vector")
    rng = np.random.default_rng(0)
    actions = [rng.uniform(a.action_space.low, a.action_space.high).astype(a.action_space.dtype) for _ in range(12)]
    oa, ia = a.reset(seed=7)
    ob, ib = b.reset(seed=7)
    assert np.array_equal(oa, ob) and ia[K.STATE_KEY] == ib[K.STATE_KEY]
    for act in actions[:4]:
        a.step(act)
        b.step(act)
    snapshot = a.unwrapped.get_state()
    first = [a.step(act) for act in actions[4:]]
    second = [b.step(act) for act in actions[4:]]
    a.unwrapped.set_state(snapshot)
    replay = [a.step(act) for act in actions[4:]]
    for x, y, z in zip(first, second, replay):
        assert np.array_equal(x[0], y[0]) and np.array_equal(x[0], z[0])
        assert x[1] == y[1] == z[1]
        assert x[4][K.STATE_KEY] == y[4][K.STATE_KEY] == z[4][K.STATE_KEY]
    a.close()
    b.close()


@pytest.mark.parametrize("env_id", ROBOT_IDS)
def test_rgb_array_render_is_a_real_frame(env_id):
    env = make(env_id, mode="vector", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.std() > 5  # not a blank or single-colour image
    env.close()


def test_headless_rendering_needs_no_setup(tmp_path):
    """Without MUJOCO_GL and without a display, `import omnigym` chooses EGL
    before mujoco loads, so a user script renders instead of aborting."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY", "PYOPENGL_PLATFORM")}
    code = ("import omnigym, mujoco\n"
            "env = omnigym.make('robots/Reach-v0', mode='vector', render_mode='rgb_array')\n"
            "env.reset(seed=0)\n"
            "print(env.render().std() > 5)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("True")
