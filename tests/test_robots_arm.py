"""The MuJoCo arm tasks against the robots contract (environments/robots/base.py)
and the backend contract (arm_backend.py): strict gymnasium envs in both
modes, bad actions never raise, determinism, exact snapshots, rendering,
domain randomisation, and the scripted expert solving every task."""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import omnigym  # noqa: E402
from omnigym import info_keys as K  # noqa: E402
from omnigym.environments.robots.arm_expert import ArmExpert  # noqa: E402
from omnigym.environments.robots.arm_tasks import BLOCK_HALF, EE_HOME, MAX_DELTA  # noqa: E402
from omnigym.environments.robots.mujoco_arm import MujocoArm  # noqa: E402
from omnigym.rollout import rollout  # noqa: E402

ARM_IDS = ["robots/Reach-v0", "robots/Push-v0", "robots/PickPlace-v0", "robots/LangPush-v0",
           "robots/LangPickPlace-v0"]
STATE = "observation.state"
SMALL = (32, 40)


def _raw(env_id: str, **kw):
    return omnigym.make(env_id, **kw).unwrapped


def _run(env, actions):
    """(observations, state keys) after each action."""
    out = []
    for a in actions:
        obs, _, _, _, info = env.step(a)
        out.append((obs, info[K.STATE_KEY]))
    return out


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def _random_actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 4)).astype(np.float32)


# ----------------------------------------------------------------- gymnasium
@pytest.mark.parametrize("env_id", ARM_IDS)
def test_check_env_in_both_modes(env_id):
    env = _raw(env_id, mode="dict", cameras=("front",), image_size=SMALL, render_mode="rgb_array",
               render_size=SMALL)
    check_env(env, skip_render_check=False)
    env.close()
    env = _raw(env_id, mode="vector")
    check_env(env, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.shape == (env.task.state_dim,) and obs.dtype == np.float32
    assert {K.SUCCESS, K.INSTRUCTION, K.TASK_ID, K.INVALID_ACTION, K.STATE_KEY} <= set(info)
    env.close()


# ------------------------------------------------------------- the backend
def test_backend_reset_holds_still_and_command_moves_by_delta():
    arm = MujocoArm(2, 1, [(1, 0, 0), (0, 1, 0)], [(0, 0, 1)])
    blocks = np.array([[0.05, 0.05, BLOCK_HALF], [-0.05, -0.08, BLOCK_HALF]])
    arm.reset_scene(EE_HOME.copy(), blocks, np.array([[0.1, -0.1, BLOCK_HALF]]))
    np.testing.assert_allclose(arm.ee_position(), EE_HOME, atol=1e-6)
    assert arm.gripper_opening() == pytest.approx(1.0)
    for _ in range(5):   # holding still: nothing moves, blocks rest where they were put
        arm.command(np.zeros(3), 1.0)
    np.testing.assert_allclose(arm.ee_position(), EE_HOME, atol=1e-3)
    np.testing.assert_allclose(arm.block_positions(), blocks, atol=1e-3)
    # Displacements add up with no drift: a square path returns to its start.
    path = [np.array([MAX_DELTA, 0, 0])] * 3 + [np.array([0, MAX_DELTA, -0.01])] * 3 \
        + [np.array([-MAX_DELTA, 0, 0])] * 3 + [np.array([0, -MAX_DELTA, 0.01])] * 3
    for delta in path:
        before = arm.ee_position()
        arm.command(delta, 1.0)
        assert np.linalg.norm(arm.ee_position() - before - delta) < 0.015   # servo lag only
    for _ in range(3):
        arm.command(np.zeros(3), 1.0)
    np.testing.assert_allclose(arm.ee_position(), EE_HOME, atol=1e-3)
    # The gripper stays pointing down (fingers below the hand) everywhere.
    rot = arm.data.site_xmat[arm._ee].reshape(3, 3)
    assert rot[2, 2] == pytest.approx(-1.0, abs=1e-3)
    # Closing fully with nothing between the fingers; targets beyond reach are clipped.
    for _ in range(4):
        arm.command(np.array([0.0, 0.0, 0.03]), -1.0)
    assert arm.gripper_opening() < 0.02
    for _ in range(20):
        arm.command(np.array([0.0, 0.0, MAX_DELTA]), -1.0)
    assert arm.ee_position()[2] == pytest.approx(0.3, abs=2e-3)
    assert arm.physical_state().shape == (arm.model.nq + arm.model.nv,)
    arm.close()


# -------------------------------------------------------------- determinism
def test_same_seed_same_actions_same_episode():
    actions = _random_actions(25)
    runs = []
    for _ in range(2):
        env = _raw("robots/LangPickPlace-v0", mode="dict", cameras=("front",), image_size=SMALL)
        obs, info = env.reset(seed=7)
        runs.append([(obs, info[K.STATE_KEY])] + _run(env, actions))
        env.close()
    assert all(_same(a[0], b[0]) and a[1] == b[1] for a, b in zip(*runs))
    env = _raw("robots/LangPickPlace-v0", mode="vector")
    other, _ = env.reset(seed=8)
    assert not np.array_equal(other, runs[0][0][0][STATE])


def test_snapshot_round_trip_replays_exactly():
    env = _raw("robots/PickPlace-v0", mode="vector")
    env.reset(seed=3)
    _run(env, _random_actions(10, seed=1))
    snap = env.get_state()
    actions = _random_actions(20, seed=2)
    first = _run(env, actions)
    env.set_state(snap)
    again = _run(env, actions)
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, again))
    # A snapshot also carries over to another env of the same id (after any reset).
    other = _raw("robots/PickPlace-v0", mode="vector")
    other.reset(seed=11)
    other.set_state(snap)
    elsewhere = _run(other, actions)
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, elsewhere))


# --------------------------------------------------------- invalid actions
@pytest.mark.parametrize("bad", [np.array([np.nan, 0, 0, 1]), np.zeros(3), None, "up", [np.inf] * 4,
                                 np.zeros((2, 4))], ids=["nan", "short", "none", "string", "inf", "2d"])
def test_invalid_actions_hold_and_are_flagged(bad):
    env = _raw("robots/Push-v0", mode="vector")
    obs, _ = env.reset(seed=0)
    obs2, reward, terminated, truncated, info = env.step(bad)
    assert info[K.INVALID_ACTION] is True
    assert np.isfinite(obs2).all() and np.isfinite(reward)
    np.testing.assert_allclose(obs2[:3], obs[:3], atol=2e-3)     # the hold action: the arm stays
    _, _, _, _, info = env.step(np.zeros(4, dtype=np.float32))
    assert info[K.INVALID_ACTION] is False


# ---------------------------------------------------------------- rendering
def test_every_camera_renders_a_scene():
    env = _raw("robots/LangPush-v0", mode="dict", cameras=("front", "top", "wrist"), image_size=(48, 64),
               render_mode="rgb_array", render_size=(60, 80))
    obs, _ = env.reset(seed=0)
    for cam in ("front", "top", "wrist"):
        img = obs["observation.images." + cam]
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20, cam   # a scene, not a blank frame
    frame = env.render()
    assert frame.shape == (60, 80, 3) and frame.std() > 5
    env.close()
    with pytest.raises(ValueError):
        _raw("robots/Push-v0", mode="dict", cameras=("side",))


# ------------------------------------------------------ domain randomisation
def test_randomisation_changes_the_scene_but_repeats_with_the_seed():
    env = _raw("robots/Push-v0", mode="dict", cameras=("front",), image_size=SMALL, randomize=True)
    nominal = _raw("robots/Push-v0", mode="dict", cameras=("front",), image_size=SMALL)
    obs, _ = env.reset(seed=4)
    obs_nominal, _ = nominal.reset(seed=4)
    drawn = env.drawn_randomization
    assert set(drawn) == {"mass_scale", "friction_scale", "color_jitter", "camera_offset"}
    sim, block = env.sim, env.sim._block_bodies[0]
    assert sim.model.body_mass[block] == pytest.approx(nominal.sim.model.body_mass[block] * drawn["mass_scale"])
    finger = sim._finger_geoms[0]
    assert sim.model.geom_friction[finger, 0] == pytest.approx(
        nominal.sim.model.geom_friction[finger, 0] * drawn["friction_scale"])
    # The layout does not depend on randomisation; the picture does.
    np.testing.assert_array_equal(obs[STATE], obs_nominal[STATE])
    assert not np.array_equal(obs["observation.images.front"], obs_nominal["observation.images.front"])
    # Same seed, same randomisation, same episode.
    actions = _random_actions(15, seed=5)
    first = _run(env, actions)
    twin = _raw("robots/Push-v0", mode="dict", cameras=("front",), image_size=SMALL, randomize=True)
    twin.reset(seed=4)
    assert twin.drawn_randomization == drawn
    assert all(_same(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, _run(twin, actions)))
    # {} restores the nominal model exactly.
    env.reset(seed=4, options={"randomize": False})
    for name in ("body_mass", "body_inertia", "geom_friction", "geom_rgba", "cam_pos"):
        np.testing.assert_array_equal(getattr(env.sim.model, name), getattr(nominal.sim.model, name))
    for e in (env, nominal, twin):
        e.close()


# -------------------------------------------------------------- the expert
@pytest.mark.parametrize("env_id", ARM_IDS)
def test_expert_solves_a_small_panel(env_id):
    # Measured: 300/300 seeds on every id (also with randomize=True), so a
    # miss on these 8 is a regression, not bad luck.
    episodes = rollout("expert", env_id, range(8), progress=False)
    assert [e.seed for e in episodes if not e.success] == []


def test_expert_recovers_from_a_dropped_block():
    """The phase comes from the geometry: knock the block out of the grasp
    mid-carry and the expert goes back for it."""
    env = omnigym.make("robots/PickPlace-v0", mode="vector")
    obs, info = env.reset(seed=0)
    expert = ArmExpert()
    expert.reset(env=env, seed=0)
    sim = env.unwrapped.sim
    dropped = False
    for _ in range(100):
        obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
        block = sim.block_positions()[0]
        if not dropped and block[2] > 0.06:
            # Teleport the block back onto the table, away from the gripper.
            adr = sim._block_qadr[0]
            sim.data.qpos[adr:adr + 3] = (-0.05, 0.1, BLOCK_HALF)
            sim.data.qvel[sim._block_dadr[0]:sim._block_dadr[0] + 6] = 0.0
            mujoco.mj_forward(sim.model, sim.data)
            obs = env.unwrapped._observation()
            dropped = True
        if terminated or truncated:
            break
    assert dropped and info[K.SUCCESS]


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ARM_IDS)
def test_expert_panel_of_forty(env_id):
    episodes = rollout("expert", env_id, range(40), progress=False)
    assert sum(e.success for e in episodes) >= 38      # >= 95 %
