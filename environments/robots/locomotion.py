"""Gymnasium's MuJoCo locomotion tasks (v5) with the robots family's conventions.

The physics, rewards, terminations and (in ``mode="vector"``) observations
are gymnasium's own, bit for bit: each env is a subclass of gymnasium's class
that only adds to ``step``/``reset``. What it adds:

- ``mode="dict"`` (default): ``{"observation.state", "observation.images.<camera>",
  "instruction"}`` like every robots env; ``mode="vector"`` keeps gymnasium's array;
- info keys ``success``, ``instruction``, ``task_id``, ``invalid_action``,
  ``action_clipped`` and ``state_key`` (= ``state_key()``: a hash of qpos/qvel
  rounded to ``key_resolution``, the task, the start position success is
  measured from and the drawn randomisation). gymnasium's own keys that only
  a step reports (``reward_ctrl``, ``x_velocity``, ...) are None on reset, so
  every info has the same keys;
- non-finite or wrongly shaped actions apply zero torque, set
  ``invalid_action`` and cost ``invalid_penalty`` (0 by default) instead of
  corrupting the simulation. Finite actions outside the bounds go to
  gymnasium unchanged (MuJoCo clamps the controls; gymnasium's control cost
  sees the raw action) and set ``action_clipped``;
- ``step``/``get_state`` before ``reset`` raise ``gymnasium.error.ResetNeeded``;
- ``get_state()``/``set_state(snapshot)`` (the whole ``MjData``, start position,
  randomisation); ``set_state`` returns the (obs, info) of the snapshot's
  moment. gymnasium's ``MujocoEnv.set_state(qpos, qvel)`` is ``set_joint_state``;
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
import numpy as np

from omnigym import contract
from omnigym import info_keys as K
from omnigym.environments.robots.base import (
    IMAGES, INSTRUCTION, REAL_KINDS, STATE, Randomization, copy_returned, observation_space,
)
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
# gymnasium's info keys that its step reports and its reset does not: None on reset.
_FORWARD = ("reward_ctrl", "reward_forward", "x_velocity")
STEP_ONLY_INFO = {
    "HalfCheetah": _FORWARD,
    "Hopper": (*_FORWARD, "reward_survive"),
    "Walker2d": (*_FORWARD, "reward_survive"),
    "Ant": (*_FORWARD, "reward_survive", "reward_contact", "y_velocity"),
    "Humanoid": (*_FORWARD, "reward_survive", "reward_contact", "y_velocity"),
    "HumanoidStandup": ("reward_impact", "reward_linup", "reward_quadctrl"),
    "Swimmer": (*_FORWARD, "y_velocity"),
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
                 randomize=None, key_resolution: float = 1e-3, invalid_penalty: float = 0.0, **gym_kwargs):
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
        self.invalid_penalty = float(invalid_penalty)
        self._start = 0.0
        self._episode_key = b""    # task, start and randomisation: fixed for an episode, hashed once
        self._zero = np.zeros(self.action_space.shape, dtype=self.action_space.dtype)
        self._low, self._high = self.action_space.low, self.action_space.high
        # (obs, info) as last returned (None before the first reset): snapshots carry it.
        self._returned: tuple | None = None

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
        self._set_start(self._progress())
        for key in STEP_ONLY_INFO[self.task_name]:
            info.setdefault(key, None)
        return self._emit(obs, info, False, False)

    def reset_model(self):
        # gymnasium's reset_model places the joints with self.set_state(qpos, qvel):
        # for the length of that call the name means gymnasium's setter again.
        self.set_state = self.set_joint_state
        try:
            return super().reset_model()
        finally:
            del self.set_state

    def step(self, action):
        contract.require_reset(self._returned is not None)
        invalid = clipped = False
        try:
            # Checked as given, and passed on unconverted: gymnasium's control
            # cost is computed in the action's own dtype. One comparison settles
            # the common case: within the (finite) bounds, hence finite too.
            checked = action if type(action) is np.ndarray else np.asarray(action, dtype=np.float64)
            if checked.shape != self._zero.shape or checked.dtype.kind not in REAL_KINDS:
                raise ValueError
            if not ((checked >= self._low) & (checked <= self._high)).all():
                if not np.isfinite(checked).all():
                    raise ValueError
                clipped = True
        except (TypeError, ValueError):
            action, invalid = self._zero, True
        obs, reward, terminated, truncated, info = super().step(action)
        obs, info = self._emit(obs, info, invalid, clipped)
        return obs, contract.penalised(reward, invalid, self.invalid_penalty), terminated, truncated, info

    # --- snapshots ------------------------------------------------------
    def get_state(self) -> dict:
        contract.require_reset(self._returned is not None, "get_state")
        return {"mujoco": get_mj_state(self.model, self.data), "start": self._start,
                "randomization": dict(self.drawn_randomization), "returned": copy_returned(self._returned)}

    def set_state(self, state: dict) -> tuple:
        """Restore a ``get_state()`` snapshot (into this env or a fresh one);
        returns the (obs, info) of the moment it was taken."""
        if state["randomization"] != self.drawn_randomization:
            self._apply_randomization(state["randomization"])
        set_mj_state(self.model, self.data, state["mujoco"])
        self._set_start(state["start"])
        self._returned = copy_returned(state["returned"])
        return copy_returned(self._returned)

    def set_joint_state(self, qpos, qvel) -> None:
        """gymnasium's ``MujocoEnv.set_state``: set qpos and qvel, then ``mj_forward``."""
        super().set_state(qpos, qvel)

    def state_key(self) -> str:
        # Rounded in a preallocated buffer: this runs every step and must stay
        # cheap next to the physics (see benchmarks/robots_steps.py).
        buf, (q, v), ints = self._key_buffer, self._key_views, self._key_ints
        np.multiply(self.data.qpos, self._inv_resolution, out=q)
        np.multiply(self.data.qvel, self._inv_resolution, out=v)
        np.rint(buf, out=ints, casting="unsafe")  # integers: -0.0 and 0.0 hash alike
        key = hashlib.blake2b(ints, digest_size=12)  # contract.hash_key's role, on raw bytes
        key.update(self._episode_key)
        return key.hexdigest()

    # --- helpers --------------------------------------------------------
    def _set_start(self, start: float) -> None:
        self._start = start
        self._episode_key = contract.hash_key(self.task_name, self.success_distance, start,
                                              self.drawn_randomization).encode()

    def _emit(self, obs, info: dict, invalid: bool, clipped: bool) -> tuple:
        obs, info = self._wrap(obs), self._info(info, invalid, clipped)
        # Copied now: wrappers may add keys to the info they pass on.
        self._returned = (obs, dict(info))
        return obs, info

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

    def _info(self, info: dict, invalid: bool, clipped: bool) -> dict:
        info[K.SUCCESS] = self.success()
        info[K.INSTRUCTION] = self.instruction
        info[K.TASK_ID] = self.task_id
        info[K.INVALID_ACTION] = invalid
        info[K.ACTION_CLIPPED] = clipped
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
