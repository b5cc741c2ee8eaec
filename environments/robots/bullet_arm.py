"""PyBullet backend of the arm tasks: a Franka Panda on a table.

World frame = task frame (``arm_tasks``): the table top is the plane z = 0
with its centre at the origin, and the Panda's fixed base stands on the table
``BASE_X`` metres behind it (x points away from the robot).

- Each instance owns its own physics client in DIRECT mode, so several envs
  coexist in one process, plus a second, never-stepped client holding a copy
  of the arm for inverse kinematics (solving IK there never disturbs the
  simulated robot, so results depend on the simulated state alone).
- ``command`` moves an end-effector *target* by the commanded displacement
  (clipped to a reachable box, as on the MuJoCo arm), solves IK with the
  gripper pointing straight down at a fixed yaw (fingers close along y) and
  ramps stiff joint position motors to the answer over one env step
  (12 x 1/240 s): the end effector ends within 0.1 mm of its target and moves
  at a steady speed, so it pushes blocks instead of batting them away.
- ``reset_scene`` starts from a state saved at construction and clears stale
  contacts, so an episode depends on its layout alone, not on earlier ones.
- Snapshots are PyBullet ``saveState`` ids (contacts included, so a restored
  branch replays exactly) plus the Python-side command state; a snapshot
  frees its id when it is garbage collected.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import weakref

import numpy as np


@contextlib.contextmanager
def _silent_stdout():
    """PyBullet's C code prints its build time on import and ``argv[0]=`` on
    every connect; keep that out of our users' stdout (and their pipes)."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        libc.fflush(None)  # C stdio buffers: flush them while fd 1 is still /dev/null
        os.dup2(saved, 1)
        os.close(saved)


with _silent_stdout():
    import pybullet as p
import pybullet_data  # noqa: E402
from pybullet_utils import bullet_client  # noqa: E402

from omnigym.environments.robots.arm_backend import ArmBackend
from omnigym.environments.robots.arm_tasks import BLOCK_HALF, MAX_DELTA

BASE_X = -0.5                   # robot base on the table, behind the workspace
TIME_STEP = 1.0 / 240.0
SUBSTEPS = 12                   # 12 / 240 s = 0.05 s per env step (render_fps 20)

ARM_JOINTS = list(range(7))
FINGER_JOINTS = [9, 10]
EE_LINK = 11                    # panda_grasptarget: 0.105 m below the hand, 7 mm above the fingertips
FINGER_OPEN = 0.04              # metres per finger when fully open
FINGER_FORCE = 20.0             # N, the URDF's effort limit
FINGER_GAIN = 0.2               # closes or opens the gripper fully in about two env steps, like the MuJoCo arm
# Stronger than the real Panda's 87/12 N m: the motors follow the commanded
# path whatever gravity and the URDF's heavy link inertias ask of them.
ARM_FORCE = 500.0               # N m
ARM_GAIN = 0.5                  # position gain; the velocity feed-forward does most of the work

# Where the end-effector target may go: the MuJoCo arm's box, so both
# backends clip alike. At z = 0.012 the fingertips are 5 mm above the table.
TARGET_LOW = np.array([-0.2, -0.2, 0.012])
TARGET_HIGH = np.array([0.2, 0.2, 0.3])
# As on the MuJoCo arm, the target leads the measured end effector by at most
# this much: a blocked gripper (pressing on a block) does not wind up commands
# that would be released later. Free motion never reaches it.
LEASH = 0.05

# A comfortable posture (elbow up, hand down) used as the IK seed at reset
# and as the null-space attractor, so the arm does not drift over an episode.
REST_POSE = [0.0, -0.3, 0.0, -2.4, 0.0, 2.1, np.pi / 4]
DOWN = p.getQuaternionFromEuler([np.pi, 0.0, 0.0])   # gripper pointing down, fingers along y

BLOCK_MASS = 0.1                # kg
BLOCK_FRICTION = 0.5            # Bullet multiplies frictions: 0.5 against the table (1.0) and the fingers (1.0)
TABLE_FRICTION = 1.0
TABLE_HALF = (0.6, 0.45, 0.025)
TABLE_CENTRE = (-0.15, 0.0, -0.025)
PAD_RADIUS = 0.04               # = PLACE_TOLERANCE: the disc shows where success counts
MARKER_RADIUS = 0.015           # sphere for goals in the air (reach)
HIDDEN = (0.0, 0.0, -5.0)       # under the table: unused markers, and blocks before the first reset

# Fixed cameras: (eye, target, up, vertical fov in degrees).
CAMERAS = {
    "front": ((0.65, 0.0, 0.45), (-0.08, 0.0, 0.03), (0.0, 0.0, 1.0), 50.0),
    "top": ((0.0, 0.0, 0.85), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), 40.0),
    "scene": ((1.0, 0.0, 0.8), (-0.5, 0.0, 0.2), (0.0, 0.0, 1.0), 50.0),   # whole arm and table: videos
}


class _Snapshot:
    """A saved PyBullet state plus the backend's Python-side data. Immutable,
    so copies share it; the saved state is freed once nothing refers to it."""

    def __init__(self, client: bullet_client.BulletClient, state_id: int, data: dict):
        self.owner = weakref.ref(client)
        self.state_id = state_id
        self.data = data
        weakref.finalize(self, _remove_state, self.owner, state_id)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("a PyBullet snapshot lives in its physics client and cannot be pickled")


def _remove_state(owner: weakref.ref, state_id: int) -> None:
    # Only through a live, connected client object: PyBullet reuses the ids
    # of closed clients, so freeing by id alone could hit another env's state.
    client = owner()
    if client is not None and client._client >= 0:      # BulletClient sets -1 on disconnect
        try:
            client.removeState(state_id)
        except p.error:
            pass


def _connect() -> bullet_client.BulletClient:
    with _silent_stdout():
        client = bullet_client.BulletClient(connection_mode=p.DIRECT)
    client.setAdditionalSearchPath(pybullet_data.getDataPath())
    return client


def _load_panda(client) -> int:
    return client.loadURDF("franka_panda/panda.urdf", basePosition=[BASE_X, 0.0, 0.0],
                           useFixedBase=True, flags=p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES)


class BulletArm(ArmBackend):
    cameras = ("front", "top", "wrist", "scene")

    def __init__(self, n_blocks: int, n_pads: int, block_colors: list, pad_colors: list):
        super().__init__(n_blocks, n_pads, block_colors, pad_colors)
        self.sim = _connect()
        self.sim.setGravity(0.0, 0.0, -9.81)
        # deterministicOverlappingPairs: contact order independent of history.
        self.sim.setPhysicsEngineParameter(fixedTimeStep=TIME_STEP, numSolverIterations=50,
                                           deterministicOverlappingPairs=1)

        table_col = self.sim.createCollisionShape(p.GEOM_BOX, halfExtents=TABLE_HALF)
        table_vis = self.sim.createVisualShape(p.GEOM_BOX, halfExtents=TABLE_HALF, rgbaColor=(0.78, 0.66, 0.5, 1))
        self.table = self.sim.createMultiBody(0.0, table_col, table_vis, basePosition=TABLE_CENTRE)
        self.sim.changeDynamics(self.table, -1, lateralFriction=TABLE_FRICTION)

        self.robot = _load_panda(self.sim)
        # The Panda's fingers are geared together: without this a held block
        # pushes one finger open and the other closed when the hand accelerates.
        gear = self.sim.createConstraint(self.robot, FINGER_JOINTS[0], self.robot, FINGER_JOINTS[1],
                                         p.JOINT_GEAR, (1, 0, 0), (0, 0, 0), (0, 0, 0))
        self.sim.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50)
        info = [self.sim.getJointInfo(self.robot, j) for j in ARM_JOINTS]
        self._lower = np.array([i[8] for i in info])
        self._upper = np.array([i[9] for i in info])
        # Null-space IK wants limits for every movable joint (7 arm + 2 fingers).
        self._nullspace = dict(lowerLimits=[*self._lower, 0.0, 0.0],
                               upperLimits=[*self._upper, FINGER_OPEN, FINGER_OPEN],
                               jointRanges=[*(self._upper - self._lower), FINGER_OPEN, FINGER_OPEN],
                               restPoses=[*REST_POSE, FINGER_OPEN, FINGER_OPEN])

        block_col = self.sim.createCollisionShape(p.GEOM_BOX, halfExtents=[BLOCK_HALF] * 3)
        self.blocks = []
        for i in range(n_blocks):
            vis = self.sim.createVisualShape(p.GEOM_BOX, halfExtents=[BLOCK_HALF] * 3,
                                             rgbaColor=(*block_colors[i], 1))
            self.blocks.append(self.sim.createMultiBody(BLOCK_MASS, block_col, vis, basePosition=HIDDEN))
        # Pads never collide: a flat disc on the table, plus a sphere for goals in the air.
        self.discs, self.markers = [], []
        for color in pad_colors:
            disc = self.sim.createVisualShape(p.GEOM_CYLINDER, radius=PAD_RADIUS, length=0.002,
                                              rgbaColor=(*color, 1))
            ball = self.sim.createVisualShape(p.GEOM_SPHERE, radius=MARKER_RADIUS, rgbaColor=(*color, 1))
            self.discs.append(self.sim.createMultiBody(0.0, -1, disc, basePosition=HIDDEN))
            self.markers.append(self.sim.createMultiBody(0.0, -1, ball, basePosition=HIDDEN))

        # The IK client: the same arm, never stepped.
        self.ik_sim = _connect()
        self.ik_robot = _load_panda(self.ik_sim)

        self._target = np.zeros(3)
        self._joint_target = np.array(REST_POSE)
        self._finger_target = FINGER_OPEN
        self._pads = np.zeros((n_pads, 3))
        self._random: dict = {}
        self._apply_randomization()
        # Every reset starts from this state, so no contact cache or warm start
        # carries over from an earlier episode: resets depend on the layout alone.
        self._pristine = self.sim.saveState()

    # --- scene ----------------------------------------------------------
    def reset_scene(self, ee_start: np.ndarray, blocks: np.ndarray, pads: np.ndarray) -> None:
        self.sim.restoreState(stateId=self._pristine)     # (keeps masses and frictions: randomize's)
        self._target = np.clip(np.asarray(ee_start, dtype=np.float64), TARGET_LOW, TARGET_HIGH)
        self._finger_target = FINGER_OPEN
        q = self._solve_ik(self._target, seed=REST_POSE)
        for j, value in zip(ARM_JOINTS, q):
            self.sim.resetJointState(self.robot, j, value, 0.0)
        for j in FINGER_JOINTS:
            self.sim.resetJointState(self.robot, j, FINGER_OPEN, 0.0)
        self._joint_target = q
        self._drive(q, np.zeros(len(ARM_JOINTS)))    # hold this pose from the first substep on
        self._drive_fingers()
        # Contact points outlive restoreState and would warm-start the new
        # episode's contacts with the last episode's impulses: lift the blocks
        # out of reach, let collision detection drop every stale point, and
        # only then put them in place.
        for i, body in enumerate(self.blocks):
            self.sim.resetBasePositionAndOrientation(body, (0.0, 0.0, 10.0 + i), (0, 0, 0, 1))
        self.sim.performCollisionDetection()
        for body, pos in zip(self.blocks, np.asarray(blocks, dtype=np.float64).reshape(-1, 3)):
            self.sim.resetBasePositionAndOrientation(body, pos.tolist(), (0, 0, 0, 1))
            self.sim.resetBaseVelocity(body, (0, 0, 0), (0, 0, 0))
        self._pads = np.asarray(pads, dtype=np.float64).reshape(-1, 3).copy()
        self._place_pads()

    def _place_pads(self) -> None:
        """A disc on the table under every pad; a sphere at goals above it (as on MuJoCo)."""
        for disc, marker, pos in zip(self.discs, self.markers, self._pads):
            in_air = pos[2] > BLOCK_HALF + 1e-6
            self.sim.resetBasePositionAndOrientation(disc, (pos[0], pos[1], 0.0008), (0, 0, 0, 1))
            self.sim.resetBasePositionAndOrientation(marker, pos.tolist() if in_air else HIDDEN, (0, 0, 0, 1))

    # --- control ----------------------------------------------------------
    def command(self, delta: np.ndarray, grip: float) -> None:
        delta = np.clip(np.asarray(delta, dtype=np.float64).reshape(3), -MAX_DELTA, MAX_DELTA)
        ee = self.ee_position()
        target = np.clip(self._target + delta, TARGET_LOW, TARGET_HIGH)
        self._target = ee + np.clip(target - ee, -LEASH, LEASH)
        self._finger_target = FINGER_OPEN * (float(np.clip(grip, -1.0, 1.0)) + 1.0) / 2.0
        start = self._joint_target
        goal = self._solve_ik(self._target, seed=start)
        # Ramp the joint targets over the substeps with a matching velocity
        # feed-forward: the arm moves at the commanded speed all step long. (A
        # single jump would let a contact build up lag that the motors then
        # make up in a burst, batting blocks away at several m/s.) A substep's
        # position target is the ramp at the substep's *start*: the motor adds
        # the velocity term itself, so the arm ends the step on ``goal``.
        velocity = (goal - start) / (SUBSTEPS * TIME_STEP)
        self._drive_fingers()
        for k in range(SUBSTEPS):
            self._drive(start + (goal - start) * (k / SUBSTEPS), velocity)
            self.sim.stepSimulation()
        self._joint_target = goal

    # Motor targets are set before every step (they are not part of a saved
    # state, so a restored snapshot must never run on stale ones).
    def _drive(self, q: np.ndarray, velocity: np.ndarray) -> None:
        n = len(ARM_JOINTS)
        self.sim.setJointMotorControlArray(self.robot, ARM_JOINTS, p.POSITION_CONTROL, targetPositions=q.tolist(),
                                           targetVelocities=velocity.tolist(), forces=[ARM_FORCE] * n,
                                           positionGains=[ARM_GAIN] * n, velocityGains=[1.0] * n)

    def _drive_fingers(self) -> None:
        self.sim.setJointMotorControlArray(self.robot, FINGER_JOINTS, p.POSITION_CONTROL,
                                           targetPositions=[self._finger_target] * 2, forces=[FINGER_FORCE] * 2,
                                           positionGains=[FINGER_GAIN] * 2)

    def _solve_ik(self, target: np.ndarray, seed) -> np.ndarray:
        """Joint angles putting the end effector at ``target``, pointing down.

        PyBullet's null-space IK keeps the posture near ``REST_POSE`` but stops
        a few millimetres short; plain IK started from its answer then closes
        the gap (checked by forward kinematics on the IK client)."""
        sim, robot = self.ik_sim, self.ik_robot
        q = np.asarray(seed, dtype=np.float64)
        for i in range(6):
            for j, value in zip(ARM_JOINTS, q):
                sim.resetJointState(robot, j, value)
            if i > 0 and np.linalg.norm(self._fk(sim, robot) - target) < 1e-4:
                break
            extra = self._nullspace if i == 0 else {}
            sol = sim.calculateInverseKinematics(robot, EE_LINK, target.tolist(), DOWN, maxNumIterations=50,
                                                 residualThreshold=1e-5, **extra)
            q = np.clip(sol[:7], self._lower, self._upper)
        return q

    @staticmethod
    def _fk(sim, robot) -> np.ndarray:
        return np.array(sim.getLinkState(robot, EE_LINK, computeForwardKinematics=True)[4])

    # --- readings ---------------------------------------------------------
    def ee_position(self) -> np.ndarray:
        return self._fk(self.sim, self.robot)

    def gripper_opening(self) -> float:
        fingers = [s[0] for s in self.sim.getJointStates(self.robot, FINGER_JOINTS)]
        return float(np.clip(np.mean(fingers) / FINGER_OPEN, 0.0, 1.0))

    def block_positions(self) -> np.ndarray:
        out = [self.sim.getBasePositionAndOrientation(b)[0] for b in self.blocks]
        return np.array(out, dtype=np.float64).reshape(-1, 3)

    def physical_state(self) -> np.ndarray:
        # Arm and finger joint positions and velocities, then every block's
        # position, quaternion, linear and angular velocity.
        joints = self.sim.getJointStates(self.robot, ARM_JOINTS + FINGER_JOINTS)
        parts = [[s[0] for s in joints], [s[1] for s in joints]]
        for b in self.blocks:
            pos, quat = self.sim.getBasePositionAndOrientation(b)
            lin, ang = self.sim.getBaseVelocity(b)
            parts += [pos, quat, lin, ang]
        return np.concatenate([np.asarray(x, dtype=np.float64) for x in parts])

    # --- snapshots --------------------------------------------------------
    def get_state(self) -> _Snapshot:
        data = {"target": self._target.copy(), "joint_target": self._joint_target.copy(),
                "finger_target": self._finger_target, "pads": self._pads.copy()}
        return _Snapshot(self.sim, self.sim.saveState(), data)

    def set_state(self, state: _Snapshot) -> None:
        # Saved states live in one physics client: only this arm's own restore.
        if not isinstance(state, _Snapshot) or state.owner() is not self.sim:
            raise ValueError("not a snapshot of this PyBullet arm")
        self.sim.restoreState(stateId=state.state_id)
        self._target = state.data["target"].copy()
        self._joint_target = state.data["joint_target"].copy()
        self._finger_target = state.data["finger_target"]
        self._pads = state.data["pads"].copy()
        self._place_pads()

    # --- images -----------------------------------------------------------
    def render(self, camera: str, height: int, width: int) -> np.ndarray:
        if camera == "wrist":
            view, fov = self._wrist_view(), 70.0
        elif camera in CAMERAS:
            eye, target, up, fov = CAMERAS[camera]
            offset = np.asarray(self._random.get("camera_offset", (0.0, 0.0, 0.0)))
            view = self.sim.computeViewMatrix((np.asarray(eye) + offset).tolist(), target, up)
        else:
            raise ValueError(f"unknown camera {camera!r}; this arm has {list(self.cameras)}")
        proj = self.sim.computeProjectionMatrixFOV(fov, width / height, 0.01, 3.0)
        _, _, rgba, _, _ = self.sim.getCameraImage(width, height, view, proj, renderer=p.ER_TINY_RENDERER,
                                                   flags=p.ER_NO_SEGMENTATION_MASK, shadow=0)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()

    def _wrist_view(self):
        # A camera on the hand, looking along the fingers (down) past them.
        pos, quat = self.sim.getLinkState(self.robot, 8, computeForwardKinematics=True)[4:6]
        rot = np.array(self.sim.getMatrixFromQuaternion(quat)).reshape(3, 3)
        eye = np.asarray(pos) + rot @ np.array([0.06, 0.0, 0.02])
        return self.sim.computeViewMatrix(eye.tolist(), (eye + rot[:, 2] * 0.3).tolist(), (rot[:, 0]).tolist())

    # --- domain randomisation -------------------------------------------------
    def randomize(self, values: dict) -> None:
        self._random = dict(values)
        self._apply_randomization()

    def _apply_randomization(self) -> None:
        """Set the blocks' dynamics and colours from nominal and ``self._random``
        (absolute values, so nothing accumulates). The same quantities as the
        MuJoCo arm: block mass (and inertia: same shape, denser material),
        block friction (Bullet multiplies the two bodies' coefficients, so this
        scales block-table and block-finger friction alike), block colours; the
        camera offset is read in ``render``."""
        values = self._random
        mass = BLOCK_MASS * float(values.get("mass_scale", 1.0))
        inertia = [mass * (2 * BLOCK_HALF) ** 2 / 6.0] * 3          # solid cube
        friction = BLOCK_FRICTION * float(values.get("friction_scale", 1.0))
        jitter = np.asarray(values.get("color_jitter", (0.0, 0.0, 0.0)), dtype=np.float64)
        for body, color in zip(self.blocks, self.block_colors):
            self.sim.changeDynamics(body, -1, mass=mass, localInertiaDiagonal=inertia, lateralFriction=friction)
            self.sim.changeVisualShape(body, -1, rgbaColor=(*np.clip(np.asarray(color) + jitter, 0, 1), 1))

    def close(self) -> None:
        for client in (self.sim, self.ik_sim):
            if client._client >= 0:      # BulletClient sets -1 once disconnected
                client.disconnect()
