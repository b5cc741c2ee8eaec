"""robots/<Locomotion>-v5: gymnasium's physics unchanged, our conventions added."""
from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

from omnigym import info_keys as K
from omnigym.environments.robots.locomotion import TASKS
from omnigym.registry import make

warnings.filterwarnings("ignore", message=".*settotalmass.*")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_vector_mode_is_gymnasium_bit_for_bit(name):
    ours, theirs = make(f"robots/{name}-v5", mode="vector"), gym.make(f"{name}-v5")
    o1, _ = ours.reset(seed=11)
    o2, _ = theirs.reset(seed=11)
    assert np.array_equal(o1, o2)
    theirs.action_space.seed(0)
    for _ in range(40):
        action = theirs.action_space.sample()
        r1, r2 = ours.step(action), theirs.step(action)
        assert np.array_equal(r1[0], r2[0])
        assert r1[1:4] == r2[1:4]  # reward, terminated, truncated
        if r1[2]:
            break
    ours.close()
    theirs.close()


def test_dict_mode_holds_the_same_state_as_float32():
    ours, theirs = make("robots/Hopper-v5"), gym.make("Hopper-v5")
    obs, info = ours.reset(seed=3)
    ref, _ = theirs.reset(seed=3)
    assert np.array_equal(obs["observation.state"], ref.astype(np.float32))
    assert obs["instruction"] == info[K.INSTRUCTION] == "hop forward without falling"
    assert info[K.TASK_ID] == "Hopper"


def test_success_means_moving_the_success_distance_forward():
    env = make("robots/HalfCheetah-v5", mode="vector", success_distance=0.5)
    _, info = env.reset(seed=0)
    assert info[K.SUCCESS] is False
    moved = env.unwrapped
    qpos, qvel = moved.data.qpos.copy(), moved.data.qvel.copy()
    qpos[0] += 0.6
    moved.set_joint_state(qpos, qvel)  # gymnasium's MujocoEnv.set_state, under its own name
    *_, info = env.step(np.zeros(6, dtype=np.float32))
    assert info[K.SUCCESS] is True
    standup = make("robots/HumanoidStandup-v5", mode="vector")
    _, info = standup.reset(seed=0)
    assert info[K.SUCCESS] is False  # lying down at reset


def test_randomisation_changes_physics_deterministically():
    def first_obs(seed, randomize):
        env = make("robots/Ant-v5", mode="vector", randomize=randomize)
        env.reset(seed=seed)
        obs = env.step(np.full(8, 0.5, dtype=np.float32))[0]
        masses = env.unwrapped.model.body_mass.copy()
        env.close()
        return obs, masses

    nominal, m0 = first_obs(5, None)
    a, ma = first_obs(5, {"mass": [0.5, 0.6]})
    b, mb = first_obs(5, {"mass": [0.5, 0.6]})
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert np.all(ma[1:] < m0[1:]) and not np.array_equal(a, nominal)
    # Back to nominal physics on the next plain reset.
    env = make("robots/Ant-v5", mode="vector", randomize={"mass": [0.5, 0.6]})
    env.reset(seed=5)
    env.reset(seed=5, options={"randomize": False})
    assert np.array_equal(env.unwrapped.model.body_mass, m0)


def test_camera_images_follow_the_robot():
    env = make("robots/HalfCheetah-v5", cameras=("track",), image_size=(48, 64))
    obs, _ = env.reset(seed=0)
    img = obs["observation.images.track"]
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img.std() > 5
    with pytest.raises(ValueError, match="unknown cameras"):
        make("robots/HalfCheetah-v5", cameras=("wrist",))


def test_snapshots_return_what_the_env_returned_and_key_the_start():
    env = make("robots/Hopper-v5", mode="vector").unwrapped
    at_reset = env.reset(seed=2)
    snap = env.get_state()
    for _ in range(3):
        at_step = env.step(np.full(3, 0.3))
    later = env.get_state()
    env.step(np.zeros(3))
    obs, info = env.set_state(snap)
    assert np.array_equal(obs, at_reset[0]) and info == at_reset[1]
    obs, info = env.set_state(later)
    assert np.array_equal(obs, at_step[0]) and info == at_step[4] and info[K.STATE_KEY] == env.state_key()
    # The same joints, measured from another start, are another situation.
    elsewhere = {**later, "start": later["start"] - 1.0}
    _, moved = env.set_state(elsewhere)
    assert env.state_key() != info[K.STATE_KEY]
    *_, stepped = env.step(np.zeros(3))
    assert stepped[K.STATE_KEY] == env.state_key()


def test_reset_routes_gymnasium_joint_setter_and_keeps_set_state_public():
    env = make("robots/Ant-v5", mode="vector").unwrapped
    env.reset(seed=0)
    assert "set_state" not in vars(env)  # the routing during reset_model leaves nothing behind
    with pytest.raises(TypeError):
        env.set_state(env.data.qpos.copy(), env.data.qvel.copy())


def test_out_of_bounds_actions_are_flagged_and_passed_on_unchanged():
    ours, theirs = make("robots/Swimmer-v5", mode="vector"), gym.make("Swimmer-v5")
    _, info = ours.reset(seed=1)
    theirs.reset(seed=1)
    assert info[K.ACTION_CLIPPED] is False
    big = np.array([3.0, -0.2], dtype=np.float32)
    r1, r2 = ours.step(big), theirs.step(big)
    assert r1[4][K.ACTION_CLIPPED] is True and r1[4][K.INVALID_ACTION] is False
    assert np.array_equal(r1[0], r2[0]) and r1[1] == r2[1]  # gymnasium's control cost of the raw action
    *_, info = ours.step(np.array([0.5, -0.2], dtype=np.float32))
    assert info[K.ACTION_CLIPPED] is False
