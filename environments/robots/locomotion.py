"""Gymnasium's MuJoCo locomotion tasks (v5) with the robots family's conventions.

The physics, rewards, terminations and (in ``mode="vector"``) observations
are gymnasium's own, bit for bit: each env is a subclass of gymnasium's class
that only adds to ``step``/``reset``. What it adds:

- ``mode="dict"`` (default): ``{"observation.state", "observation.images.<camera>",
  "instruction"}`` like every robots env; ``mode="vector"`` keeps gymnasium's array;
- info keys ``success``, ``instruction``, ``task_id``, ``invalid_action``,
  ``state_key`` (a hash of qpos/qvel rounded to ``key_resolution``);
- non-finite or wrongly shaped actions apply zero torque and set
  ``invalid_action`` instead of corrupting the simulation;
- ``get_state``/``set_state`` (qpos, qvel, act, time, start position);
- domain randomisation (``randomize=``), off by default so physics is unchanged.

``success`` has no gymnasium counterpart; here it means the torso has moved
``success_distance`` metres forward since reset (for HumanoidStandup: the torso
is ``success_height`` metres high), thresholds a trained policy reaches and a
random one does not.
"""
from __future__ import annotations

import hashlib
import importlib

import gymnasium as gym
import mujoco
import numpy as np

from omnigym import info_keys as K
from omnigym.environments.robots.base import IMAGES, INSTRUCTION, STATE, Randomization, observation_space
from omnigym.environments.robots.mujoco_render import RendererCache
from omnigym.environments.robots.mujoco_state import get_mj_state, set_mj_state

# name: (gymnasium entry point, success distance in metres, instruction)
TASKS = {
    "HalfCheetah": ("gymnasium.envs.mujoco.half_cheetah_v5:HalfCheetahEnv", 20.0, "run forward"),
    "Hopper": ("gymnasium.envs.mujoco.hopper_v5:HopperEnv", 5.0, "hop forward without falling"),
    "Walker2d": ("gymnasium.envs.mujoco.walker2d_v5:Walker2dEnv", 5.0, "walk forward without falling"),
    "Ant": ("gymnasium.envs.mujoco.ant_v5:AntEnv", 10.0, "walk forward"),
    "Humanoid": ("gymnasium.envs.mujoco.humanoid_v5:HumanoidEnv", 5.0, "walk forward without falling"),
    "HumanoidStandup": ("gymnasium.envs.mujoco.humanoidstandup_v5:HumanoidStandupEnv", 1.0, "stand up"),
    "Swimmer": ("gymnasium.envs.mujoco.swimmer_v5:SwimmerEnv", 3.0, "swim forward"),
}

_CLASSES: dict[str, type] = {}


def make_locomotion(name: str, **kwargs) -> gym.Env:
    """Entry point of ``robots/<name>-v5``."""
    if name not in TASKS:
        raise ValueError(f"unknown locomotion task {name!r}; choose one of {sorted(TASKS)}")
    if name not in _CLASSES:
        module, _, attr = TASKS[name][0].partition(":")
        base = getattr(importlib.import_module(module), attr)
        _CLASSES[name] = type(f"{name}Env", (LocomotionMixin, base),
                              {"__doc__": f"gymnasium {name}-v5 with omnigym's robots conventions.",
                               "task_name": name})
    return _CLASSES[name](**kwargs)


class LocomotionMixin:
    """Placed before gymnasium's env class in the MRO (see ``make_locomotion``)."""

    task_name: str

    def __init__(self, mode: str = "dict", cameras=(), image_size=(96, 96), success_distance: float | None = None,
                 randomize=None, key_resolution: float = 1e-3, **gym_kwargs):
        if mode not in ("dict", "vector"):
            raise ValueError(f"mode must be 'dict' or 'vector', got {mode!r}")
        super().__init__(**gym_kwargs)
        _, default_distance, self.instruction = TASKS[self.task_name]
        self.success_distance = float(success_distance if success_distance is not None else default_distance)
        self.mode = mode
        self.cameras = (cameras,) if isinstance(cameras, str) else tuple(cameras)
        self.available_cameras = ("track",)
        self.image_size = tuple(int(v) for v in image_size)
        # gymnasium's own array space in vector mode; the canonical dict otherwise.
        self.observation_space = observation_space(mode, self.observation_space, self.cameras,
                                                   self.available_cameras, self.image_size)
        self.randomization = Randomization.parse(randomize)
        self.drawn_randomization: dict = {}
        self.key_resolution = float(key_resolution)
        self._inv_resolution = 1.0 / self.key_resolution
        self._key_buffer = np.empty(self.model.nq + self.model.nv)
        self._key_views = (self._key_buffer[:self.model.nq], self._key_buffer[self.model.nq:])
        self._key_ints = np.empty(self.model.nq + self.model.nv, dtype=np.int64)
        self.task_id = self.task_name
        self._nominal = {"body_mass": self.model.body_mass.copy(), "body_inertia": self.model.body_inertia.copy(),
                        "geom_friction": self.model.geom_friction.copy(),
                         "geom_rgba": self.model.geom_rgba.copy(), "cam_pos": self.model.cam_pos.copy()}
        self._renderers = RendererCache(self.model)
        self._start = 0.0
        self._zero = np.zeros(self.action_space.shape, dtype=self.action_space.dtype)

    # --- gymnasium API ----------------------------------------------------
    def reset(self, *, seed=None, options=None):
        options = dict(options or {})
        spec = Randomization.parse(options.pop("randomize")) if "randomize" in options else self.randomization
        if spec is not None or self.drawn_randomization:
            if seed is not None:
                self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
            rng = np.random.default_rng(int(self.np_random.integers(2**63)) if spec else 0)
            self._apply_randomization(spec.draw(rng) if spec else {})
        obs, info = super().reset(seed=seed, options=options)
        self._start = self._progress()
        return self._wrap(obs), self._info(info, False)

    def step(self, action):
        invalid = False
        try:
            # Checked as given, and passed on unconverted: gymnasium's control
            # cost is computed in the action's own dtype.
            checked = action if type(action) is np.ndarray else np.asarray(action, dtype=np.float64)
            if checked.shape != self._zero.shape or not np.isfinite(checked).all():
                raise ValueError
        except (TypeError, ValueError):
            action, invalid = self._zero, True
        obs, reward, terminated, truncated, info = super().step(action)
        return self._wrap(obs), reward, terminated, truncated, self._info(info, invalid)

    # --- snapshots ------------------------------------------------------
    def get_state(self) -> dict:
        return {"mujoco": get_mj_state(self.model, self.data), "start": self._start,
                "randomization": dict(self.drawn_randomization)}

    def set_state(self, state, qvel=None) -> None:
        """``set_state(snapshot)`` restores a ``get_state()`` snapshot;
        ``set_state(qpos, qvel)`` keeps gymnasium's MujocoEnv meaning (its
        ``reset_model`` calls it that way)."""
        if qvel is not None:
            return super().set_state(state, qvel)
        if state["randomization"] != self.drawn_randomization:
            self._apply_randomization(state["randomization"])
        set_mj_state(self.model, self.data, state["mujoco"])
        self._start = state["start"]

    def state_key(self) -> str:
        # Rounded in a preallocated buffer: this runs every step and must stay
        # cheap next to the physics (see benchmarks/robots_steps.py).
        buf, (q, v), ints = self._key_buffer, self._key_views, self._key_ints
        np.multiply(self.data.qpos, self._inv_resolution, out=q)
        np.multiply(self.data.qvel, self._inv_resolution, out=v)
        np.rint(buf, out=ints, casting="unsafe")  # integers: -0.0 and 0.0 hash alike
        return hashlib.blake2b(ints, digest_size=12).hexdigest()

    # --- helpers --------------------------------------------------------
    def _progress(self) -> float:
        # HumanoidStandup's goal is height (qpos z); every other task's is x.
        return float(self.data.qpos[2] if self.task_name == "HumanoidStandup" else self.data.qpos[0])

    def success(self) -> bool:
        if self.task_name == "HumanoidStandup":
            return self._progress() >= self.success_distance
        return self._progress() - self._start >= self.success_distance

    def _wrap(self, obs):
        if self.mode == "vector":
            return obs
        out = {STATE: obs.astype(np.float32)}
        for cam in self.cameras:
            out[IMAGES + cam] = self.render_camera(cam, *self.image_size)
        out[INSTRUCTION] = self.instruction
        return out

    def _info(self, info: dict, invalid: bool) -> dict:
        info[K.SUCCESS] = self.success()
        info[K.INSTRUCTION] = self.instruction
        info[K.TASK_ID] = self.task_id
        info[K.INVALID_ACTION] = invalid
        info[K.STATE_KEY] = self.state_key()
        return info

    def render_camera(self, camera: str, height: int, width: int) -> np.ndarray:
        """An offscreen frame from a named camera (observation images)."""
        return self._renderers.render(self.data, camera, height, width)

    def _apply_randomization(self, values: dict) -> None:
        m, nominal = self.model, self._nominal
        # Scaling inertia with mass keeps each body's shape (density scaled).
        m.body_mass[:] = nominal["body_mass"] * values.get("mass_scale", 1.0)
        m.body_inertia[:] = nominal["body_inertia"] * values.get("mass_scale", 1.0)
        m.geom_friction[:] = nominal["geom_friction"]
        m.geom_friction[:, 0] *= values.get("friction_scale", 1.0)
        m.geom_rgba[:] = nominal["geom_rgba"]
        if "color_jitter" in values:
            m.geom_rgba[:, :3] = np.clip(m.geom_rgba[:, :3] + np.asarray(values["color_jitter"]), 0, 1)
        m.cam_pos[:] = nominal["cam_pos"] + np.asarray(values.get("camera_offset", np.zeros(3)))
        self.drawn_randomization = dict(values)

    def close(self):
        self._renderers.close()
        super().close()
