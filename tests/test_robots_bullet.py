"""The PyBullet Panda arm (robots/BulletReach-v0, robots/BulletPush-v0).

The robots contract (env checker, determinism, exact snapshots, invalid
actions, images), faithful end-effector tracking, and the same task semantics
as the MuJoCo arm: the task lives in ``arm_tasks`` once, so for a seed both
backends pose the same problem and count success the same way.
"""
from __future__ import annotations

import copy
import gc
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from omnigym import info_keys as K
from omnigym.environments.robots.arm_expert import ArmExpert
from omnigym.environments.robots.arm_tasks import EE_HOME, MAX_DELTA, REACH_TOLERANCE
from omnigym.environments.robots.bullet_arm import BLOCK_MASS, TARGET_HIGH, TARGET_LOW
from omnigym.registry import make
from omnigym.rollout import rollout

IDS = ("robots/BulletReach-v0", "robots/BulletPush-v0")
SMALL = dict(cameras=("front",), image_size=(48, 64))
STATE = "observation.state"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _actions(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, 4).astype(np.float32) for _ in range(n)]


def _expert_actions(env_id: str, seed: int, n: int) -> list[np.ndarray]:
    """The expert's first ``n`` actions (padded with holds): a path that
    touches the block, unlike random actions."""
    episode = rollout("expert", env_id, [seed], progress=False)[0]
    actions = [np.asarray(a, dtype=np.float32) for a in episode.actions[:n]]
    return actions + [np.array([0, 0, 0, -1], dtype=np.float32)] * (n - len(actions))


@pytest.mark.parametrize("env_id", IDS)
def test_env_checker_dict_and_vector(env_id):
    env = make(env_id, mode="dict", **SMALL)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert set(obs) == {STATE, "observation.images.front", "instruction"}
    assert obs["observation.images.front"].shape == (48, 64, 3)
    assert obs["instruction"] == info[K.INSTRUCTION] != ""
    env.close()
    vec = make(env_id, mode="vector")
    check_env(vec.unwrapped, skip_render_check=True)
    vec.close()


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_episode_whatever_ran_before(env_id):
    # Two envs in one process (each its own physics client), stepped in turn.
    a, b = make(env_id, mode="vector"), make(env_id, mode="vector")
    actions = _expert_actions(env_id, 5, 25) if "Push" in env_id else _actions(25)

    def episode(env, seed):
        out = [env.reset(seed=seed)[0]]
        for act in actions:
            obs, reward, _, _, info = env.step(act)
            out.append((obs, reward, info[K.STATE_KEY]))
        return out

    first = episode(a, 5)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(first[1:], episode(b, 5)[1:]))
    # Another episode, then the same seed again: no contact or warm start
    # carries over from earlier episodes, the replay is bit for bit.
    episode(a, 11)
    again = episode(a, 5)
    assert np.array_equal(first[0], again[0])
    for x, y in zip(first[1:], again[1:]):
        assert np.array_equal(x[0], y[0]) and x[1] == y[1] and x[2] == y[2]
    a.close()
    b.close()


def test_snapshot_replays_exactly_through_contact():
    env = make("robots/BulletPush-v0", mode="vector", terminate_on_success=False).unwrapped
    actions = _expert_actions("robots/BulletPush-v0", 3, 30)
    env.reset(seed=3)
    for act in actions[:8]:
        env.step(act)
    snapshot = env.get_state()
    block_before = env.sim.block_positions()[0].copy()
    first = [env.step(act) for act in actions[8:]]
    assert np.linalg.norm(env.sim.block_positions()[0] - block_before) > 0.01   # the branch pushes the block
    env.set_state(copy.deepcopy(snapshot))       # copies share the saved state
    replay = [env.step(act) for act in actions[8:]]
    for x, y in zip(first, replay):
        assert np.array_equal(x[0], y[0]) and x[1] == y[1] and x[4][K.STATE_KEY] == y[4][K.STATE_KEY]
    # Still exact after another episode has run in between.
    env.reset(seed=9)
    for act in actions[:10]:
        env.step(act)
    env.set_state(snapshot)
    later = [env.step(act) for act in actions[8:]]
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(first, later))

    # A snapshot frees its saved state when dropped (PyBullet then reuses the id).
    state_id = env.get_state()["sim"].state_id
    gc.collect()
    assert env.get_state()["sim"].state_id == state_id
    # Saved states belong to one physics client.
    other = make("robots/BulletPush-v0", mode="vector").unwrapped
    other.reset(seed=3)
    with pytest.raises(ValueError):
        other.set_state(snapshot)
    other.close()
    env.close()
    env.close()                                  # closing twice is harmless
    del snapshot
    gc.collect()                                 # and so is dropping a snapshot of a closed env


@pytest.mark.parametrize("env_id", IDS)
def test_invalid_actions_are_flagged_and_hold_still(env_id):
    env = make(env_id, mode="vector")
    obs, _ = env.reset(seed=1)
    for bad in (np.full(4, np.nan), np.zeros(5), None, "forward", [[1.0]], np.full(4, np.inf)):
        new, reward, _, _, info = env.step(bad)
        assert info[K.INVALID_ACTION] is True
        assert np.all(np.isfinite(new)) and np.isfinite(reward)
        assert np.linalg.norm(new[:3] - obs[:3]) < 1e-3      # the hold action: the gripper stays put
    *_, info = env.step(np.ones(4, dtype=np.float32) * 10)  # out of range: clipped, not invalid
    assert info[K.INVALID_ACTION] is False
    env.close()


def test_cameras_render_real_frames():
    env = make("robots/BulletPush-v0", mode="dict", cameras=("front", "top", "wrist"), image_size=(48, 64),
               render_mode="rgb_array", render_size=(60, 80))
    obs, _ = env.reset(seed=0)
    for cam in ("front", "top", "wrist"):
        image = obs[f"observation.images.{cam}"]
        assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
        assert image.std() > 5                        # not blank
    frame = env.render()
    assert frame.shape == (60, 80, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()
    with pytest.raises(ValueError):
        make("robots/BulletPush-v0", mode="dict", cameras=("nowhere",))


def test_end_effector_tracks_commands():
    """After every step the end effector is where the commands put it (the
    target accumulates the displacements, clipped to the reachable box)."""
    env = make("robots/BulletReach-v0", mode="vector", terminate_on_success=False)
    obs, _ = env.reset(seed=0)
    assert np.linalg.norm(obs[:3] - EE_HOME) < 1e-3
    target, errors = EE_HOME.copy(), []
    for act in _actions(80, seed=2):
        act[3] = 1.0
        obs, *_ = env.step(act)
        target = np.clip(target + act[:3] * MAX_DELTA, TARGET_LOW, TARGET_HIGH)
        errors.append(np.linalg.norm(obs[:3] - target))
    assert max(errors) < 0.005, f"tracking error up to {max(errors):.4f} m"
    # The gripper follows its command within a step or two.
    for _ in range(2):
        obs, *_ = env.step(np.array([0, 0, 0, -1], dtype=np.float32))
    assert obs[3] < 0.05
    for _ in range(2):
        obs, *_ = env.step(np.array([0, 0, 0, 1], dtype=np.float32))
    assert obs[3] > 0.95
    env.close()


def test_randomization_is_seeded_and_nominal_restores():
    env = make("robots/BulletPush-v0", mode="vector", randomize=True).unwrapped
    block = env.sim.blocks[0]
    obs, _ = env.reset(seed=4)
    drawn = dict(env.drawn_randomization)
    assert set(drawn) == {"mass_scale", "friction_scale", "color_jitter", "camera_offset"}
    assert env.sim.sim.getDynamicsInfo(block, -1)[0] == pytest.approx(BLOCK_MASS * drawn["mass_scale"])
    env.sim.render("front", 24, 32)
    again, _ = env.reset(seed=4)
    assert env.drawn_randomization == drawn and np.array_equal(obs, again)
    plain, _ = env.reset(seed=4, options={"randomize": None})    # {}: nominal, same layout
    assert env.sim.sim.getDynamicsInfo(block, -1)[0] == pytest.approx(BLOCK_MASS)
    assert np.array_equal(plain, obs)
    env.close()


# --- one task, two backends -------------------------------------------------
def _space_signature(space):
    return {k: (type(s).__name__, getattr(s, "shape", None), getattr(s, "max_length", None))
            for k, s in space.spaces.items()}


@pytest.mark.parametrize("name", ["Reach", "Push"])
def test_backends_pose_the_same_task(name):
    mj = make(f"robots/{name}-v0", mode="dict", **SMALL)
    pb = make(f"robots/Bullet{name}-v0", mode="dict", **SMALL)
    assert _space_signature(mj.observation_space) == _space_signature(pb.observation_space)
    assert mj.action_space == pb.action_space
    assert mj.spec.max_episode_steps == pb.spec.max_episode_steps
    for seed in range(4):
        om, im = mj.reset(seed=seed)
        op, ip = pb.reset(seed=seed)
        assert set(om) == set(op)
        assert om["instruction"] == op["instruction"] and im[K.TASK_ID] == ip[K.TASK_ID]
        sm, sp = om[STATE], op[STATE]
        # Blocks and goals come from the shared layout: identical. The arms
        # differ, but both start at the home pose with the gripper open.
        assert np.array_equal(sm[4:], sp[4:])
        for s in (sm, sp):
            assert np.linalg.norm(s[:3] - EE_HOME) < 0.01 and s[3] > 0.95
        assert im[K.SUCCESS] is ip[K.SUCCESS] is False
    mj.close()
    pb.close()


@pytest.mark.parametrize("name", ["Reach", "Push"])
def test_success_means_the_same_on_both_backends(name):
    """A simple controller (reach) or the expert (push) succeeds on both
    backends for the same seeds, and every step's success is the shared
    task's verdict on the positions the backend reports."""
    for env_id in (f"robots/{name}-v0", f"robots/Bullet{name}-v0"):
        env = make(env_id, mode="vector")
        task = env.unwrapped.task
        lay = task.state_layout()
        for seed in range(3):
            obs, info = env.reset(seed=seed)
            layout = env.unwrapped._layout
            expert = ArmExpert()
            expert.reset(env=env)
            for _ in range(env.spec.max_episode_steps):
                if name == "Reach":
                    move = np.clip((obs[lay["pad.goal"]] - obs[lay["ee"]]) / MAX_DELTA, -1, 1)
                    act = np.append(move, 1.0).astype(np.float32)
                else:
                    act = expert.act(obs, info)
                obs, _, terminated, truncated, info = env.step(act)
                ee, blocks = env.unwrapped._parts()        # the backend's readings
                assert info[K.SUCCESS] == task.success(ee, blocks, layout)
                if terminated or truncated:
                    break
            assert info[K.SUCCESS], f"{env_id} seed {seed}"
            if name == "Reach":
                assert np.linalg.norm(obs[:3] - obs[lay["pad.goal"]]) < REACH_TOLERANCE
        env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_expert_succeeds(env_id):
    episodes = rollout("expert", env_id, range(8), progress=False)
    assert sum(e.success for e in episodes) == len(episodes)
