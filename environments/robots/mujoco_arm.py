"""MujocoArm: the arm tasks' physics backend on MuJoCo.

A 6-DOF arm (``sim_assets/robots/arm.xml``: base yaw, shoulder, elbow,
forearm roll, wrist pitch, tool roll) with a parallel two-finger gripper
stands behind the table at x = -0.45. The MuJoCo world frame *is* the task
frame (table-top centre, x away from the robot, z up), so positions need no
conversion.

Control (``command``): the end-effector target accumulates the commanded
displacements (clipped to a reachable box), damped-least-squares inverse
kinematics turns it into joint targets for the position actuators, and the
physics runs one env step (``N_SUBSTEPS`` x 2 ms). IK is seeded with the
previous joint targets, not the measured joints, so the targets follow the
commanded path exactly and nothing drifts; an orientation term keeps the
gripper pointing down at a fixed yaw (fingers close along the y axis).
"""
from __future__ import annotations

import importlib
from pathlib import Path

import mujoco
import numpy as np

from omnigym.environments.robots.arm_backend import ArmBackend
from omnigym.environments.robots.arm_tasks import BLOCK_HALF, EE_HOME, MAX_DELTA
from omnigym.environments.robots.mujoco_render import RendererCache

N_SUBSTEPS = 25                 # 25 x 2 ms = one 50 ms env step (20 Hz, the env's render_fps)
# Joint targets ramp from the old to the new IK solution over the first 20
# substeps, then hold: the hand moves at a steady speed (it nudges blocks
# instead of hitting them) and the last 10 ms let the servos catch up, so the
# end effector ends each step within a few millimetres of its target.
RAMP_SUBSTEPS = 20
ARM_JOINTS = ("j1", "j2", "j3", "j4", "j5", "j6")
FINGERS = ("finger_left", "finger_right")
FINGER_OPEN = 0.035             # slide range of each finger: 7 cm between open fingers
# Finger targets move at most this fast (m/s; a full stroke takes two env
# steps, about a real parallel gripper's speed). Snapping fingers would bat
# a block across the table at metres per second.
FINGER_SPEED = 0.35
# Reachable box for the end-effector target: a little wider than the task's
# workspace (|x|, |y| <= 0.12, goals up to z = 0.2); the lower z bound keeps the
# fingertips (1 cm below the end-effector point) just above the table.
TARGET_LOW = np.array([-0.2, -0.2, 0.012])
TARGET_HIGH = np.array([0.2, 0.2, 0.3])
# The target may lead the measured end effector by at most this much: when the
# gripper is blocked (pressing on the table or a block) commands do not wind up
# into a spring that releases later. Larger than one step's motion plus the
# servos' lag, so free motion never feels it.
LEASH = 0.05
# Gripper pointing down (tool z axis = -z) with its fingers closing along y.
R_DOWN = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
ROT_WEIGHT = 0.3                # metres per radian: how much orientation error counts in IK
IK_DAMPING = 0.02               # damped least squares: bounded steps near singular poses
HOME_POSTURE = np.array([0.0, 0.35, 2.1, 0.0, 0.7, 0.0])  # elbow up, gripper roughly down: the IK seed at reset
BLOCK_MASS = 0.06
PAD_RADIUS = 0.04               # PLACE_TOLERANCE: a block centred inside the disc is on target
MARKER_RADIUS = 0.015
HIDDEN = np.array([0.0, 0.0, -5.0])  # where unused markers go (under the floor)


def arm_xml_path() -> Path:
    """``omnigym/sim_assets/robots/arm.xml`` wherever the package is installed."""
    return Path(importlib.import_module("omnigym.sim_assets.robots").__file__).resolve().parent / "arm.xml"


def _rgba(rgb, alpha: float = 1.0) -> str:
    return " ".join(f"{float(v):.4f}" for v in (*rgb, alpha))


def build_xml(n_blocks: int, n_pads: int, block_colors, pad_colors) -> str:
    """arm.xml plus ``n_blocks`` free cubes and ``n_pads`` goal pads.

    A pad is two mocap bodies: a flat disc on the table under the goal and a
    small sphere at the goal itself (shown only for goals above the table, such
    as reach targets and air goals). Mocap positions are part of MuJoCo's state,
    so snapshots carry the pads along."""
    parts = []
    for i in range(n_blocks):
        parts.append(
            f'<body name="block{i}" pos="{0.05 * i:.3f} 0 {BLOCK_HALF}">'
            f'<freejoint name="block{i}"/>'
            f'<geom name="block{i}" type="box" size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}" mass="{BLOCK_MASS}" '
            f'condim="4" friction="0.7 0.005 0.0001" solimp="0.95 0.99 0.001" solref="0.01 1" '
            f'rgba="{_rgba(block_colors[i])}"/></body>')
    for i in range(n_pads):
        parts.append(
            f'<body name="pad{i}" mocap="true" pos="0 0 0.0008"><geom name="pad{i}" class="visual" type="cylinder" '
            f'size="{PAD_RADIUS} 0.0008" rgba="{_rgba(pad_colors[i], 0.9)}"/></body>'
            f'<body name="pad{i}_marker" mocap="true" pos="{HIDDEN[0]} {HIDDEN[1]} {HIDDEN[2]}">'
            f'<geom name="pad{i}_marker" class="visual" type="sphere" size="{MARKER_RADIUS}" '
            f'rgba="{_rgba(pad_colors[i], 0.8)}"/></body>')
    xml = arm_xml_path().read_text()
    head, tag, tail = xml.rpartition("</worldbody>")
    return head + "\n".join(parts) + "\n" + tag + tail


class MujocoArm(ArmBackend):
    cameras = ("front", "top", "wrist", "scene")

    def __init__(self, n_blocks: int, n_pads: int, block_colors: list, pad_colors: list):
        super().__init__(n_blocks, n_pads, block_colors, pad_colors)
        self.model = mujoco.MjModel.from_xml_string(build_xml(n_blocks, n_pads, block_colors, pad_colors))
        self.data = mujoco.MjData(self.model)
        self._ik_data = mujoco.MjData(self.model)   # scratch for IK, never stepped
        m = self.model
        self._arm_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in ARM_JOINTS])
        self._arm_dadr = np.array([m.jnt_dofadr[m.joint(j).id] for j in ARM_JOINTS])
        self._arm_range = np.array([m.jnt_range[m.joint(j).id] for j in ARM_JOINTS])
        self._finger_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in FINGERS])
        self._arm_act = np.array([m.actuator(j).id for j in ARM_JOINTS])
        self._finger_act = np.array([m.actuator(j).id for j in FINGERS])
        self._ee = m.site("ee").id
        self._block_bodies = np.array([m.body(f"block{i}").id for i in range(n_blocks)], dtype=int)
        self._block_geoms = np.array([m.geom(f"block{i}").id for i in range(n_blocks)], dtype=int)
        self._block_qadr = np.array([m.jnt_qposadr[m.joint(f"block{i}").id] for i in range(n_blocks)], dtype=int)
        self._block_dadr = np.array([m.jnt_dofadr[m.joint(f"block{i}").id] for i in range(n_blocks)], dtype=int)
        self._finger_geoms = np.array([m.geom(g).id for g in FINGERS])
        self._pad_mocap = np.array([m.body_mocapid[m.body(f"pad{i}").id] for i in range(n_pads)], dtype=int)
        self._marker_mocap = np.array([m.body_mocapid[m.body(f"pad{i}_marker").id] for i in range(n_pads)],
                                      dtype=int)
        self._world_cams = np.array([m.camera(c).id for c in ("front", "top")])
        # Nominal values that ``randomize`` scales or shifts ({} restores them).
        self._nominal = {"mass": m.body_mass.copy(), "inertia": m.body_inertia.copy(),
                         "friction": m.geom_friction.copy(), "rgba": m.geom_rgba.copy(),
                         "cam_pos": m.cam_pos.copy()}
        self._state_spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self._target = EE_HOME.copy()                 # accumulated end-effector target
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._renderers = RendererCache(self.model)
        # A valid scene from the start (blocks and pads in a row, apart); the env resets it.
        self.reset_scene(EE_HOME.copy(), [(0.08 * i - 0.08, 0.08, BLOCK_HALF) for i in range(n_blocks)],
                         [(0.08 * i - 0.08, -0.08, BLOCK_HALF) for i in range(n_pads)])

    # --- inverse kinematics ---------------------------------------------
    def _solve_ik(self, target: np.ndarray, seed: np.ndarray, iterations: int, tol: float = 1e-6) -> np.ndarray:
        """Joint angles that put the end effector at ``target``, gripper down.

        Damped least squares on the stacked [position; orientation] Jacobian of
        the end-effector site, iterated from ``seed`` on a scratch MjData (the
        simulation's own data is untouched)."""
        m, d = self.model, self._ik_data
        q = seed.copy()
        for _ in range(iterations):
            d.qpos[self._arm_qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)   # mj_jacSite needs the com-based quantities
            rot = d.site_xmat[self._ee].reshape(3, 3)
            # Small-angle rotation taking the current frame onto R_DOWN (world axes).
            rot_err = 0.5 * np.cross(rot.T, R_DOWN.T).sum(axis=0)
            err = np.concatenate([target - d.site_xpos[self._ee], ROT_WEIGHT * rot_err])
            if err @ err < tol * tol:
                break
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self._ee)
            jac = np.vstack([self._jacp[:, self._arm_dadr], ROT_WEIGHT * self._jacr[:, self._arm_dadr]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + IK_DAMPING ** 2 * np.eye(6), err)
            # Cap the step so a far target is approached along a smooth path.
            dq *= min(1.0, 0.2 / max(np.abs(dq).max(), 1e-12))
            q = np.clip(q + dq, self._arm_range[:, 0], self._arm_range[:, 1])
        return q

    # --- ArmBackend -------------------------------------------------------
    def reset_scene(self, ee_start: np.ndarray, blocks: np.ndarray, pads: np.ndarray) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self._target = np.clip(np.asarray(ee_start, dtype=np.float64), TARGET_LOW, TARGET_HIGH)
        q = self._solve_ik(self._target, HOME_POSTURE, iterations=500, tol=1e-9)
        d.qpos[self._arm_qadr] = q
        d.ctrl[self._arm_act] = q
        d.qpos[self._finger_qadr] = FINGER_OPEN
        d.ctrl[self._finger_act] = FINGER_OPEN
        for i, pos in enumerate(np.asarray(blocks, dtype=np.float64).reshape(-1, 3)):
            a = self._block_qadr[i]
            d.qpos[a:a + 3] = pos
            d.qpos[a + 3:a + 7] = (1.0, 0.0, 0.0, 0.0)   # axis-aligned, as laid out
        self._place_pads(np.asarray(pads, dtype=np.float64).reshape(-1, 3))
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)

    def _place_pads(self, pads: np.ndarray) -> None:
        """A disc on the table under every pad; a sphere at the goals above it."""
        for i, pos in enumerate(pads):
            self.data.mocap_pos[self._pad_mocap[i]] = (pos[0], pos[1], 0.0008)
            in_air = pos[2] > BLOCK_HALF + 1e-6
            self.data.mocap_pos[self._marker_mocap[i]] = pos if in_air else HIDDEN

    def command(self, delta: np.ndarray, grip: float) -> None:
        m, d = self.model, self.data
        delta = np.clip(np.asarray(delta, dtype=np.float64).reshape(3), -MAX_DELTA, MAX_DELTA)
        if not np.all(np.isfinite(delta)):   # a NaN target would poison IK and the physics
            delta = np.zeros(3)
        grip = float(grip) if np.isfinite(grip) else 1.0
        ee = self.ee_position()
        target = np.clip(self._target + delta, TARGET_LOW, TARGET_HIGH)
        self._target = ee + np.clip(target - ee, -LEASH, LEASH)
        # Seeded with the current joint targets: a small move converges in a few
        # iterations and the result depends on the commanded path only.
        start = d.ctrl[self._arm_act].copy()
        goal = self._solve_ik(self._target, start, iterations=30)
        finger_goal = (np.clip(grip, -1.0, 1.0) + 1.0) / 2.0 * FINGER_OPEN
        finger_step = FINGER_SPEED * m.opt.timestep
        for k in range(1, N_SUBSTEPS + 1):
            d.ctrl[self._arm_act] = start + min(k / RAMP_SUBSTEPS, 1.0) * (goal - start)
            fingers = d.ctrl[self._finger_act]
            d.ctrl[self._finger_act] = fingers + np.clip(finger_goal - fingers, -finger_step, finger_step)
            mujoco.mj_step(m, d)
        # mj_step leaves positions of the substep's start in xpos/site_xpos;
        # recompute them so observations match the state (and a restored one).
        mujoco.mj_forward(m, d)

    def ee_position(self) -> np.ndarray:
        return self.data.site_xpos[self._ee].copy()

    def gripper_opening(self) -> float:
        return float(np.clip(self.data.qpos[self._finger_qadr].mean() / FINGER_OPEN, 0.0, 1.0))

    def block_positions(self) -> np.ndarray:
        return self.data.xpos[self._block_bodies].copy().reshape(-1, 3)

    def physical_state(self) -> np.ndarray:
        # qpos holds the arm and finger joints and every block's pose, qvel
        # their velocities: the whole dynamic state.
        return np.concatenate([self.data.qpos, self.data.qvel])

    def get_state(self) -> dict:
        m, d = self.model, self.data
        physics = np.empty(mujoco.mj_stateSize(m, self._state_spec))
        # INTEGRATION: time, qpos, qvel, act, warmstart, ctrl, applied forces,
        # mocap poses (the pads) -- everything the next mj_step reads.
        mujoco.mj_getState(m, d, physics, self._state_spec)
        return {"physics": physics, "target": self._target.copy()}

    def set_state(self, state) -> None:
        mujoco.mj_setState(self.model, self.data, np.asarray(state["physics"], dtype=np.float64),
                           self._state_spec)
        self._target = np.array(state["target"], dtype=np.float64)
        mujoco.mj_forward(self.model, self.data)

    def render(self, camera: str, height: int, width: int) -> np.ndarray:
        if camera not in self.cameras:
            raise ValueError(f"unknown camera {camera!r}; this arm has {list(self.cameras)}")
        return self._renderers.render(self.data, camera, height, width)

    def randomize(self, values: dict) -> None:
        m, nominal = self.model, self._nominal
        # Start from nominal every time, so nothing accumulates across episodes.
        m.body_mass[:] = nominal["mass"]
        m.body_inertia[:] = nominal["inertia"]
        m.geom_friction[:] = nominal["friction"]
        m.geom_rgba[:] = nominal["rgba"]
        m.cam_pos[:] = nominal["cam_pos"]
        if "mass_scale" in values:
            scale = float(values["mass_scale"])
            m.body_mass[self._block_bodies] *= scale
            m.body_inertia[self._block_bodies] *= scale   # same shape, denser material
        if "friction_scale" in values:
            geoms = np.concatenate([self._block_geoms, self._finger_geoms])
            m.geom_friction[geoms, 0] *= float(values["friction_scale"])
        if "color_jitter" in values:
            jitter = np.asarray(values["color_jitter"], dtype=np.float64)
            rgb = m.geom_rgba[self._block_geoms, :3] + jitter
            m.geom_rgba[self._block_geoms, :3] = np.clip(rgb, 0.0, 1.0)
        if "camera_offset" in values:
            # The scene cameras move; the wrist camera stays fixed to the hand.
            m.cam_pos[self._world_cams] += np.asarray(values["camera_offset"], dtype=np.float64)

    def close(self) -> None:
        self._renderers.close()
