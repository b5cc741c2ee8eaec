"""PushTEnv: Diffusion Policy's Push-T benchmark on MuJoCo.

A top-down planar scene: a round pusher (a cylinder) pushes a T-shaped block
across a table, inside four walls, until the T covers a fixed green target T.

- **Physics.** The T (a bar and a stem: two boxes in one body) moves on planar
  joints only (slide x, slide y, hinge z), so it can never tip; table friction
  is emulated by joint damping and friction loss, which makes pushing nearly
  quasi-static (the T's velocity decays in ~5 ms once the pusher lets go), as
  in Diffusion Policy, whose pymunk space kills all velocity. The T and the
  floor never collide. The pusher slides in x, y under two position actuators
  (a critically damped PD, natural frequency 30 rad/s). One env step is 0.1 s
  (10 Hz control, as Diffusion Policy), 20 physics steps of 5 ms.
- **Action.** ``Box(-0.25, 0.25, (2,))``: the pusher's target position (metres),
  like Diffusion Policy's action (the agent's target position in pixels).
- **Observation.** ``observation.state`` (and the whole observation in
  ``mode="vector"``) is ``[pusher x, pusher y, T x, T y, sin θ, cos θ]``, with
  the T's position being its area centroid and θ its heading (θ = 0: bar along
  +x, stem towards -y). The goal is fixed, so the state needs no goal entries.
  Cameras: ``top`` (top-down, the whole workspace) and ``angle`` (oblique).
- **Success.** ``coverage = area(T ∩ target T) / area(T) >= 0.95``, computed
  exactly by clipping the four rectangle pairs (no grid, no shapely). The
  reward is Diffusion Policy's: ``clip(coverage / 0.95, 0, 1)``; ``info`` also
  reports ``coverage``.
- **Resets.** The T's centroid is uniform in ``[-0.15, 0.15]^2`` m with any
  heading (Diffusion Policy: block in [100, 400]^2 of a 512 px workspace); the
  pusher is uniform in ``[-0.2, 0.2]^2`` m, clear of the T. The target is the
  centre of the workspace at θ = π/4, as in Diffusion Policy.
  ``reset(options={"t_pose": (x, y, θ), "pusher_pos": (x, y)})`` overrides
  the draw (the draw still happens, so the stream stays aligned).

Scale: 1 mm ≈ 1 Diffusion Policy pixel (bar 120 x 30 mm, stem 30 x 90 mm,
pusher radius 15 mm).
"""
from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np

from omnigym.environments.robots.base import RobotEnv
from omnigym.environments.robots.mujoco_render import RendererCache

# --- geometry (metres) --------------------------------------------------
# In the T's own frame the bar spans y in [0, 0.03] and the stem y in [-0.09, 0]
# before we move the origin to the area centroid, so that the hinge (and the
# friction torque it emulates) acts about the centroid.
BAR_HALF = (0.06, 0.015)
STEM_HALF = (0.015, 0.045)
_BAR_AREA = 4 * BAR_HALF[0] * BAR_HALF[1]
_STEM_AREA = 4 * STEM_HALF[0] * STEM_HALF[1]
T_AREA = _BAR_AREA + _STEM_AREA
_CENTROID_Y = (_BAR_AREA * 0.015 + _STEM_AREA * -0.045) / T_AREA
BAR_CENTER = (0.0, 0.015 - _CENTROID_Y)
STEM_CENTER = (0.0, -0.045 - _CENTROID_Y)
# (centre, half-size) of the two rectangles, in the T frame.
T_PIECES = ((BAR_CENTER, BAR_HALF), (STEM_CENTER, STEM_HALF))
# Radius of gyration about the centroid: sqrt(I / m) for a uniform T.
T_GYRATION = math.sqrt(sum(a * ((hx * hx + hy * hy) / 3 + cy * cy)
                           for a, ((_, cy), (hx, hy)) in zip((_BAR_AREA, _STEM_AREA), T_PIECES)) / T_AREA)

PUSHER_RADIUS = 0.015
THICKNESS = 0.02            # height of the T and the pusher (irrelevant to the planar physics)
WORKSPACE = 0.25            # action bounds: pusher targets in [-WORKSPACE, WORKSPACE]^2
WALL = 0.29                 # inner face of the walls: the pusher (0.25 + 0.015) never reaches them
T_INIT_RANGE = 0.15         # T centroid drawn in [-T_INIT_RANGE, T_INIT_RANGE]^2
PUSHER_INIT_RANGE = 0.2     # pusher drawn in [-PUSHER_INIT_RANGE, PUSHER_INIT_RANGE]^2
PUSHER_INIT_CLEARANCE = 0.01
GOAL_POSE = (0.0, 0.0, math.pi / 4)
SUCCESS_COVERAGE = 0.95

# --- physics -------------------------------------------------------------
TIMESTEP = 0.005
N_SUBSTEPS = 20             # 20 x 5 ms = one 0.1 s env step
T_MASS = 0.1
PUSHER_MASS = 1.0
PUSHER_KP = 900.0           # omega = sqrt(kp / m) = 30 rad/s
PUSHER_KV = 60.0            # 2 * sqrt(kp * m): critically damped
T_DAMPING = 20.0            # N s/m: the T's velocity decays with tau = m / d = 5 ms
T_FRICTIONLOSS = 0.3        # N: Coulomb table friction (mu ~ 0.3 of the T's weight)
# Rotational counterparts of a friction spread over the T's area: damping
# scales with the squared radius of gyration, Coulomb torque with the mean
# radius of the T's area about its centroid (~ 0.04 m).
T_ROT_DAMPING = T_DAMPING * T_GYRATION ** 2
T_ROT_FRICTIONLOSS = T_FRICTIONLOSS * 0.04
CONTACT_FRICTION = 0.5      # pusher-T and T-wall sliding friction

INSTRUCTION = "push the T-shaped block onto the green target"
TASK_ID = "push_t"
CAMERAS = ("top", "angle")

T_COLOR = (0.47, 0.53, 0.60, 1.0)        # LightSlateGray, as Diffusion Policy
PUSHER_COLOR = (0.25, 0.41, 0.88, 1.0)   # RoyalBlue
GOAL_COLOR = (0.56, 0.93, 0.56, 1.0)     # LightGreen


# --- exact coverage --------------------------------------------------------
def t_rectangles(pose) -> list[np.ndarray]:
    """The T's two rectangles at ``pose = (x, y, θ)``: (4, 2) world corners, counter-clockwise."""
    x, y, th = (float(v) for v in pose)
    c, s = math.cos(th), math.sin(th)
    rot = np.array([[c, -s], [s, c]])
    out = []
    for (cx, cy), (hx, hy) in T_PIECES:
        local = np.array([[cx - hx, cy - hy], [cx + hx, cy - hy], [cx + hx, cy + hy], [cx - hx, cy + hy]])
        out.append(local @ rot.T + (x, y))
    return out


def _clip(subject: list, clipper: list) -> list:
    """Sutherland-Hodgman: ``subject`` ∩ convex counter-clockwise ``clipper``."""
    out = subject
    n = len(clipper)
    for i in range(n):
        if not out:
            return out
        ax, ay = clipper[i]
        bx, by = clipper[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        inp, out = out, []
        px, py = inp[-1]
        p_in = ex * (py - ay) - ey * (px - ax) >= 0  # left of edge a->b = inside
        for qx, qy in inp:
            q_in = ex * (qy - ay) - ey * (qx - ax) >= 0
            if q_in != p_in:  # the edge p->q crosses the clip line: add the crossing
                dp = ex * (py - ay) - ey * (px - ax)
                dq = ex * (qy - ay) - ey * (qx - ax)
                t = dp / (dp - dq)
                out.append((px + t * (qx - px), py + t * (qy - py)))
            if q_in:
                out.append((qx, qy))
            px, py, p_in = qx, qy, q_in
    return out


def _area(poly: list) -> float:
    return 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1])))


def coverage(pose, goal=GOAL_POSE) -> float:
    """area(T at ``pose`` ∩ T at ``goal``) / area(T), exactly. Each T is two
    rectangles that overlap only on an edge, so the intersection is the sum of
    the four rectangle-rectangle (convex) intersections."""
    mine = [[tuple(p) for p in r] for r in t_rectangles(pose)]
    target = [[tuple(p) for p in r] for r in t_rectangles(goal)]
    inter = sum(_area(_clip(a, b)) for a in mine for b in target)
    return min(inter / T_AREA, 1.0)


def t_distance(pose, points) -> np.ndarray:
    """Signed distance from ``points`` (..., 2) to the T at ``pose``
    (positive outside; exact outside, a lower bound of the depth inside)."""
    points = np.asarray(points, dtype=np.float64)
    x, y, th = (float(v) for v in pose)
    c, s = math.cos(th), math.sin(th)
    rel = points - (x, y)
    local = np.stack([c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1]], axis=-1)
    dist = []
    for center, half in T_PIECES:
        q = np.abs(local - center) - half
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
        dist.append(outside + np.minimum(np.max(q, axis=-1), 0.0))
    return np.minimum(*dist)


def pose_error(pose, goal=GOAL_POSE) -> float:
    """RMS distance between the T's points at ``pose`` and at ``goal``:
    sqrt(|Δp|² + 2 (1 - cos Δθ) r_g²) about the centroid -- a smooth shaping
    distance where coverage (0 when apart) is flat."""
    dx, dy = pose[0] - goal[0], pose[1] - goal[1]
    return math.sqrt(dx * dx + dy * dy + 2.0 * (1.0 - math.cos(pose[2] - goal[2])) * T_GYRATION ** 2)


# --- MJCF ------------------------------------------------------------------
def _rgba(c) -> str:
    return " ".join(f"{v:g}" for v in c)


def _mjcf() -> str:
    """The scene, built from the constants above so geometry and coverage agree."""
    h = THICKNESS / 2
    (bx, by), (bhx, bhy) = T_PIECES[0]
    (sx, sy), (shx, shy) = T_PIECES[1]
    bar_mass = T_MASS * _BAR_AREA / T_AREA
    gx, gy, gth = GOAL_POSE
    w = WALL + 0.01  # wall centres (walls are 2 cm thick)
    walls = "\n".join(
        f'<geom name="wall_{n}" type="box" pos="{px:g} {py:g} {h:g}" size="{sx_:g} {sy_:g} {h:g}" rgba=".5 .5 .5 1"/>'
        for n, px, py, sx_, sy_ in (("e", w, 0, 0.01, w + 0.01), ("w", -w, 0, 0.01, w + 0.01),
                                    ("n", 0, w, w + 0.01, 0.01), ("s", 0, -w, w + 0.01, 0.01)))
    return f"""
<mujoco model="push_t">
  <compiler angle="radian"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <visual>
    <global offwidth="1024" offheight="1024"/>
    <quality shadowsize="0"/>
    <headlight ambient=".35 .35 .35" diffuse=".25 .25 .25" specular="0 0 0"/>
  </visual>
  <default>
    <geom condim="3" friction="{CONTACT_FRICTION} 0.005 0.0001"/>
  </default>
  <worldbody>
    <light pos="0 0 1.5" dir="0 0 -1" directional="true" diffuse=".4 .4 .4" specular="0 0 0"/>
    <!-- the table: visual only (table friction lives in the T's joints) -->
    <geom name="floor" type="plane" size=".4 .4 .01" rgba=".95 .95 .95 1" contype="0" conaffinity="0"/>
    {walls}
    <body name="goal" pos="{gx:g} {gy:g} 0.0005" euler="0 0 {gth:.12g}">
      <geom name="goal_bar" type="box" pos="{bx:g} {by:.12g} 0" size="{bhx:g} {bhy:g} 0.0005"
            rgba="{_rgba(GOAL_COLOR)}" contype="0" conaffinity="0"/>
      <geom name="goal_stem" type="box" pos="{sx:g} {sy:.12g} 0" size="{shx:g} {shy:g} 0.0005"
            rgba="{_rgba(GOAL_COLOR)}" contype="0" conaffinity="0"/>
    </body>
    <body name="tblock" pos="0 0 {h:g}">
      <joint name="t_x" type="slide" axis="1 0 0" damping="{T_DAMPING}" frictionloss="{T_FRICTIONLOSS}"/>
      <joint name="t_y" type="slide" axis="0 1 0" damping="{T_DAMPING}" frictionloss="{T_FRICTIONLOSS}"/>
      <joint name="t_rot" type="hinge" axis="0 0 1" damping="{T_ROT_DAMPING:.8g}"
             frictionloss="{T_ROT_FRICTIONLOSS:.8g}"/>
      <geom name="t_bar" type="box" pos="{bx:g} {by:.12g} 0" size="{bhx:g} {bhy:g} {h:g}"
            mass="{bar_mass:.8g}" rgba="{_rgba(T_COLOR)}"/>
      <geom name="t_stem" type="box" pos="{sx:g} {sy:.12g} 0" size="{shx:g} {shy:g} {h:g}"
            mass="{T_MASS - bar_mass:.8g}" rgba="{_rgba(T_COLOR)}"/>
    </body>
    <body name="pusher" pos="0 0 {h:g}">
      <joint name="p_x" type="slide" axis="1 0 0"/>
      <joint name="p_y" type="slide" axis="0 1 0"/>
      <geom name="pusher" type="cylinder" size="{PUSHER_RADIUS} {h:g}" mass="{PUSHER_MASS}"
            rgba="{_rgba(PUSHER_COLOR)}"/>
    </body>
    <camera name="top" pos="0 0 0.75" xyaxes="1 0 0 0 1 0" fovy="45"/>
    <camera name="angle" pos="0 -0.62 0.62" xyaxes="1 0 0 0 0.7071 0.7071" fovy="45"/>
  </worldbody>
  <actuator>
    <position name="pusher_x" joint="p_x" kp="{PUSHER_KP}" kv="{PUSHER_KV}"/>
    <position name="pusher_y" joint="p_y" kp="{PUSHER_KP}" kv="{PUSHER_KV}"/>
  </actuator>
</mujoco>
"""


class PushTEnv(RobotEnv):
    """Push-T (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / (TIMESTEP * N_SUBSTEPS))}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.model = mujoco.MjModel.from_xml_string(_mjcf())
        self.data = mujoco.MjData(self.model)
        m = self.model
        jnt = lambda name: int(m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)])
        # Where the T's (x, y, θ) and the pusher's (x, y) live in qpos (public:
        # planners edit snapshots with them).
        self.t_qpos = slice(jnt("t_x"), jnt("t_x") + 3)
        self.pusher_qpos = slice(jnt("p_x"), jnt("p_x") + 2)
        self._t_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "tblock")
        self._t_dofs = [int(m.jnt_dofadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)])
                        for n in ("t_x", "t_y", "t_rot")]
        self._t_geoms = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in ("t_bar", "t_stem")]
        # Nominal values: randomisation always scales these, so nothing accumulates.
        self._nominal = {
            "mass": m.body_mass[self._t_body], "inertia": m.body_inertia[self._t_body].copy(),
            "damping": m.dof_damping[self._t_dofs].copy(), "frictionloss": m.dof_frictionloss[self._t_dofs].copy(),
            "rgba": m.geom_rgba[self._t_geoms].copy(), "cam_pos": m.cam_pos.copy(),
        }
        self.state_dim = 6
        self.available_cameras = CAMERAS
        self.render_camera = "top"
        self.action_space = gym.spaces.Box(-WORKSPACE, WORKSPACE, shape=(2,), dtype=np.float32)
        self._renderers = RendererCache(self.model)
        self._coverage_cache: tuple[bytes, float] | None = None
        self._build_spaces()

    # --- readouts ---------------------------------------------------------
    def t_pose(self) -> np.ndarray:
        """(x, y, θ) of the T's centroid."""
        return self.data.qpos[self.t_qpos].copy()

    def pusher_position(self) -> np.ndarray:
        return self.data.qpos[self.pusher_qpos].copy()

    def coverage(self) -> float:
        """Current coverage of the target (cached per T pose: success and reward both ask)."""
        pose = self.t_pose()
        key = pose.tobytes()
        if self._coverage_cache is None or self._coverage_cache[0] != key:
            self._coverage_cache = (key, coverage(pose))
        return self._coverage_cache[1]

    def advance(self, action) -> None:
        """Physics only: one env step's worth of simulation towards pusher
        target ``action`` (clipped), without observations or counters -- the
        fast path for planners that restore a snapshot afterwards."""
        self.data.ctrl[:] = np.clip(action, -WORKSPACE, WORKSPACE)
        mujoco.mj_step(self.model, self.data, nstep=N_SUBSTEPS)

    def make_expert(self, **kwargs):
        """The push-primitive planner (privileged: it simulates on this env's snapshots)."""
        from omnigym.environments.robots.push_t_expert import PushTExpert
        return PushTExpert(**kwargs)

    # --- RobotEnv hooks ---------------------------------------------------
    def _randomize(self, values: dict) -> None:
        m, nom = self.model, self._nominal
        mass = float(values.get("mass_scale", 1.0))
        m.body_mass[self._t_body] = nom["mass"] * mass
        m.body_inertia[self._t_body] = nom["inertia"] * mass
        friction = float(values.get("friction_scale", 1.0))
        m.dof_damping[self._t_dofs] = nom["damping"] * friction
        m.dof_frictionloss[self._t_dofs] = nom["frictionloss"] * friction
        rgba = nom["rgba"].copy()
        rgba[:, :3] = np.clip(rgba[:, :3] + np.asarray(values.get("color_jitter", (0, 0, 0))), 0, 1)
        m.geom_rgba[self._t_geoms] = rgba
        m.cam_pos[:] = nom["cam_pos"] + np.asarray(values.get("camera_offset", (0, 0, 0)))
        # Mass changes need derived quantities (body_subtreemass, ...) refreshed.
        mujoco.mj_setConst(m, self.data)

    def _reset_sim(self, rng: np.random.Generator, options: dict) -> None:
        while True:  # a start that is already solved is no task (it essentially never happens)
            pose = np.array([*rng.uniform(-T_INIT_RANGE, T_INIT_RANGE, 2), rng.uniform(-math.pi, math.pi)])
            if coverage(pose) < SUCCESS_COVERAGE:
                break
        while True:  # the pusher starts clear of the T
            pusher = rng.uniform(-PUSHER_INIT_RANGE, PUSHER_INIT_RANGE, 2)
            if t_distance(pose, pusher) > PUSHER_RADIUS + PUSHER_INIT_CLEARANCE:
                break
        if "t_pose" in options:
            pose = np.asarray(options["t_pose"], dtype=np.float64).reshape(3)
        if "pusher_pos" in options:
            pusher = np.asarray(options["pusher_pos"], dtype=np.float64).reshape(2)
        d = self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[self.t_qpos] = pose
        d.qpos[self.pusher_qpos] = pusher
        d.ctrl[:] = pusher  # hold still until the first action
        mujoco.mj_forward(self.model, d)
        self._task = {"goal": list(GOAL_POSE)}
        self.instruction = INSTRUCTION
        self.task_id = TASK_ID

    def _apply_action(self, action: np.ndarray) -> None:
        self.advance(action)

    def _hold_action(self) -> np.ndarray:
        return np.clip(self.pusher_position(), -WORKSPACE, WORKSPACE)

    def _state_vector(self) -> np.ndarray:
        x, y, th = self.t_pose()
        return np.array([*self.pusher_position(), x, y, math.sin(th), math.cos(th)])

    def _physical_state(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    def _success(self) -> bool:
        return self.coverage() >= SUCCESS_COVERAGE

    def _reward(self, success: bool) -> float:
        return float(np.clip(self.coverage() / SUCCESS_COVERAGE, 0.0, 1.0))

    def _info(self, success: bool, invalid: bool, clipped: bool) -> dict:
        info = super()._info(success, invalid, clipped)
        info["coverage"] = self.coverage()
        return info

    def _get_sim_state(self) -> dict:
        d = self.data
        # The warm start is part of what the next mj_step reads: without it a
        # replay from a snapshot differs in the last bits.
        return {"qpos": d.qpos.copy(), "qvel": d.qvel.copy(), "act": d.act.copy(), "ctrl": d.ctrl.copy(),
                "time": float(d.time), "qacc_warmstart": d.qacc_warmstart.copy()}

    def _set_sim_state(self, state: dict) -> None:
        d = self.data
        d.qpos[:] = state["qpos"]
        d.qvel[:] = state["qvel"]
        d.act[:] = state["act"]
        d.ctrl[:] = state["ctrl"]
        d.time = state["time"]
        # Positions and contacts for observations and rendering; then put the
        # warm start back in case mj_forward touched it.
        mujoco.mj_forward(self.model, d)
        d.qacc_warmstart[:] = state["qacc_warmstart"]

    def _render(self, camera: str, height: int, width: int) -> np.ndarray:
        return self._renderers.render(self.data, camera, height, width)

    def close(self) -> None:
        self._renderers.close()
        super().close()
