"""RobotEnv: the robots family's contract on top of ``gymnasium.Env``.

Every robots env (MuJoCo or PyBullet, arm or planar pusher) shares:

- **observations** in one of two modes (``mode=``):

  - ``dict``: ``{"observation.state": float32[d],
    "observation.images.<camera>": uint8[H, W, 3] (one per camera in
    ``cameras``), "instruction": str}`` -- LeRobot's canonical keys;
  - ``vector``: the float32 state alone (everything a state-based policy
    needs, goal included) for MLP policies and RLlib.

- **actions**: a ``Box``. A non-finite, wrongly shaped or non-numeric action
  is replaced by the env's *hold* action (stay where you are), flagged
  ``info["invalid_action"]`` and costs ``invalid_penalty`` (0 by default);
  values outside the bounds are clipped and flagged ``info["action_clipped"]``
  (not an invalid action: nothing is penalised). ``step`` before ``reset``
  raises ``gymnasium.error.ResetNeeded``.
- **info**: ``success`` (every step), ``instruction``, ``task_id``,
  ``invalid_action``, ``action_clipped`` and ``state_key`` (= ``state_key()``):
  a hash of the physical state rounded to ``key_resolution`` (metres /
  radians), the task (goal, layout) and the drawn randomisation, so two
  states a policy cannot tell apart at that resolution share a key.
- **determinism**: ``reset(seed=s)`` fixes the layout and, when domain
  randomisation is on, the randomised parameters.
- **snapshots**: ``get_state()`` / ``set_state(s)`` round-trip the simulator
  state (MuJoCo qpos/qvel/act/time, PyBullet state ids), the goal and the
  step counter: a branch started from a snapshot replays exactly.
  ``set_state`` returns the ``(obs, info)`` the env returned when the
  snapshot was taken.
- **domain randomisation** through ``randomize=`` or
  ``reset(options={"randomize": ...})``: ``True`` for the defaults or a dict
  with ``mass`` and ``friction`` (scale ranges), ``colors`` (bool) and
  ``camera`` (position jitter in metres). Draws come from their own stream,
  so the same seed gives the same layout with or without randomisation.
- **rendering**: ``render_mode="rgb_array"`` renders offscreen (MuJoCo with
  ``MUJOCO_GL=egl`` or ``osmesa``; PyBullet's TinyRenderer).

Subclasses implement the ``_hooks`` below; this class does the bookkeeping.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from omnigym import contract
from omnigym import info_keys as K
from omnigym.text import fit_text, text_space

STATE = "observation.state"
IMAGES = "observation.images."
INSTRUCTION = "instruction"
MODES = ("dict", "vector")
MAX_INSTRUCTION = 256
REAL_KINDS = "biuf"  # numpy dtype kinds an action may have: bool, integers, floats (not complex, str, object)


@dataclass(frozen=True)
class Randomization:
    """What domain randomisation varies; ``None`` fields stay nominal."""
    mass: tuple[float, float] | None = None        # scale of every movable body's mass
    friction: tuple[float, float] | None = None    # scale of sliding friction
    colors: bool = False                            # object colours (an RGB offset)
    camera: float | None = None                     # camera position jitter (m)

    DEFAULTS = None  # filled below

    @classmethod
    def parse(cls, spec) -> "Randomization | None":
        if spec is None or spec is False:
            return None
        if spec is True:
            return cls.DEFAULTS
        if isinstance(spec, Randomization):
            return spec
        if not isinstance(spec, dict):
            raise ValueError(f"randomize must be True, False or a dict, got {type(spec).__name__}")
        unknown = set(spec) - {"mass", "friction", "colors", "camera"}
        if unknown:
            raise ValueError(f"unknown randomisation keys {sorted(unknown)}; "
                             "use mass, friction, colors, camera")
        ranges = {}
        for key in ("mass", "friction"):
            value = spec.get(key)
            if value is None:
                ranges[key] = None
                continue
            lo, hi = (float(v) for v in value)
            if not 0 < lo <= hi:
                raise ValueError(f"randomize.{key} must be a range 0 < lo <= hi, got {value}")
            ranges[key] = (lo, hi)
        camera = spec.get("camera")
        return cls(mass=ranges["mass"], friction=ranges["friction"], colors=bool(spec.get("colors", False)),
                   camera=None if camera is None else float(camera))

    def draw(self, rng: np.random.Generator) -> dict:
        """Concrete values for one episode (what backends apply)."""
        out = {}
        if self.mass:
            out["mass_scale"] = float(rng.uniform(*self.mass))
        if self.friction:
            out["friction_scale"] = float(rng.uniform(*self.friction))
        if self.colors:
            out["color_jitter"] = rng.uniform(-0.15, 0.15, size=3).round(4).tolist()
        if self.camera:
            out["camera_offset"] = rng.uniform(-self.camera, self.camera, size=3).round(5).tolist()
        return out


Randomization.DEFAULTS = Randomization(mass=(0.7, 1.3), friction=(0.7, 1.3), colors=True, camera=0.02)


def observation_space(mode: str, vector_space: gym.spaces.Box, cameras: tuple, available: tuple,
                      image_size: tuple) -> gym.Space:
    """A robots env's observation space: ``vector_space`` itself in vector
    mode, else the dict of canonical keys with one image per camera."""
    if mode == "vector" and cameras:
        raise ValueError("cameras need mode='dict' (the vector mode holds the state alone)")
    unknown = [c for c in cameras if c not in available]
    if unknown:
        raise ValueError(f"unknown cameras {unknown}; this env has {list(available)}")
    if mode == "vector":
        return vector_space
    spaces = {STATE: gym.spaces.Box(-np.inf, np.inf, shape=vector_space.shape, dtype=np.float32)}
    h, w = image_size
    for cam in cameras:
        spaces[IMAGES + cam] = gym.spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8)
    spaces[INSTRUCTION] = text_space(MAX_INSTRUCTION)
    return gym.spaces.Dict(spaces)


def hash_state(values: np.ndarray, resolution: float, *extra: bytes) -> str:
    """A short stable hash of ``values`` rounded to ``resolution``, and of ``extra``."""
    ints = np.round(np.asarray(values, dtype=np.float64) / resolution).astype(np.int64)
    ints[ints == 0] = 0  # -0 and 0 hash the same
    return contract.hash_key(ints.tobytes(), *extra)


def copy_returned(returned: tuple) -> tuple:
    """A copy of an (obs, info) pair that neither a caller nor the simulation
    can alter: every array copied (gymnasium's Humanoid info holds live views
    of ``MjData``), the rest shared (scalars and strings)."""
    obs, info = returned
    return _copy_arrays(obs), _copy_arrays(info)


def _copy_arrays(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in value.items()}
    return value


class RobotEnv(gym.Env):
    """Base class of every robots env (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    # --- set by subclasses before calling ``_build_spaces`` ---------------
    state_dim: int
    available_cameras: tuple[str, ...] = ()
    render_camera: str | None = None

    def __init__(self, *, mode: str = "dict", cameras=(), image_size=(96, 96), render_mode: str | None = None,
                 render_size=(240, 320), randomize=None, terminate_on_success: bool = True,
                 key_resolution: float = 1e-3, invalid_penalty: float = 0.0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if isinstance(cameras, str):
            cameras = (cameras,)
        self.mode = mode
        self.cameras = tuple(cameras)
        self.image_size = tuple(int(v) for v in image_size)
        self.render_mode = render_mode
        self.render_size = tuple(int(v) for v in render_size)
        self.randomization = Randomization.parse(randomize)
        self.terminate_on_success = terminate_on_success
        self.key_resolution = float(key_resolution)
        self.invalid_penalty = float(invalid_penalty)
        self.instruction = ""
        self.task_id = ""
        self.drawn_randomization: dict = {}
        self._randomization_key = _randomization_bytes(self.drawn_randomization)  # for state keys
        self._task: dict = {}      # goal and task data: part of snapshots and state keys
        self._elapsed = 0
        # (obs, info) as last returned (None before the first reset): snapshots carry it.
        self._returned: tuple | None = None

    def _build_spaces(self) -> None:
        state = gym.spaces.Box(-np.inf, np.inf, shape=(self.state_dim,), dtype=np.float32)
        self.observation_space = observation_space(self.mode, state, self.cameras, self.available_cameras,
                                                   self.image_size)

    # --- hooks ------------------------------------------------------------
    def _reset_sim(self, rng: np.random.Generator, options: dict) -> None:
        """Lay out the episode from ``rng``; set ``self._task``,
        ``self.instruction`` and ``self.task_id``."""
        raise NotImplementedError

    def _randomize(self, values: dict) -> None:
        """Apply drawn randomisation values ({} = nominal); called every reset
        before ``_reset_sim``, so nothing accumulates across episodes."""

    def _apply_action(self, action: np.ndarray) -> None:
        raise NotImplementedError

    def _hold_action(self) -> np.ndarray:
        """The action that keeps the robot where it is (used for invalid actions)."""
        raise NotImplementedError

    def _state_vector(self) -> np.ndarray:
        raise NotImplementedError

    def _physical_state(self) -> np.ndarray:
        """Positions and velocities that identify the physical state."""
        raise NotImplementedError

    def _success(self) -> bool:
        raise NotImplementedError

    def _reward(self, success: bool) -> float:
        return float(success)

    def _get_sim_state(self):
        raise NotImplementedError

    def _set_sim_state(self, state) -> None:
        raise NotImplementedError

    def _render(self, camera: str, height: int, width: int) -> np.ndarray:
        raise NotImplementedError

    # --- gymnasium API ----------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        # Randomisation has its own stream so layouts do not depend on it.
        dr_seed = int(self.np_random.integers(2**63))
        spec = Randomization.parse(options.pop("randomize")) if "randomize" in options else self.randomization
        self._set_randomization(spec.draw(np.random.default_rng(dr_seed)) if spec else {})
        self._elapsed = 0
        self._reset_sim(self.np_random, options)
        return self._emit(self._success(), False, False)

    def step(self, action):
        contract.require_reset(self._returned is not None)
        action, invalid, clipped = self._check_action(action)
        self._apply_action(action)
        self._elapsed += 1
        success = self._success()
        reward = contract.penalised(self._reward(success), invalid, self.invalid_penalty)
        terminated = bool(success and self.terminate_on_success)
        obs, info = self._emit(success, invalid, clipped)
        return obs, reward, terminated, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._render(self.render_camera or self.available_cameras[0], *self.render_size)

    # --- snapshots ------------------------------------------------------
    def get_state(self) -> dict:
        """Everything needed to continue this episode exactly."""
        contract.require_reset(self._returned is not None, "get_state")
        return {"sim": self._get_sim_state(), "task": copy.deepcopy(self._task), "elapsed": self._elapsed,
                "instruction": self.instruction, "task_id": self.task_id,
                "randomization": copy.deepcopy(self.drawn_randomization),
                "returned": copy_returned(self._returned)}

    def set_state(self, state: dict) -> tuple:
        """Restore a ``get_state()`` snapshot (into this env or a fresh one);
        returns the (obs, info) of the moment it was taken."""
        if self.drawn_randomization != state["randomization"]:
            self._set_randomization(copy.deepcopy(state["randomization"]))
        self._task = copy.deepcopy(state["task"])
        self._elapsed = int(state["elapsed"])
        self.instruction = state["instruction"]
        self.task_id = state["task_id"]
        self._set_sim_state(state["sim"])
        self._returned = copy_returned(state["returned"])
        return copy_returned(self._returned)

    # --- helpers --------------------------------------------------------
    def _set_randomization(self, values: dict) -> None:
        self.drawn_randomization = values
        self._randomization_key = _randomization_bytes(values)
        self._randomize(values)

    def _check_action(self, action) -> tuple[np.ndarray, bool, bool]:
        """(action to apply, invalid, clipped)."""
        space = self.action_space
        try:
            arr = np.asarray(action)
        except (TypeError, ValueError):  # ragged sequences
            return self._hold_action(), True, False
        if arr.shape != space.shape or arr.dtype.kind not in REAL_KINDS:
            return self._hold_action(), True, False
        arr = arr.astype(np.float64, copy=False)
        if not np.all(np.isfinite(arr)):
            return self._hold_action(), True, False
        clipped = np.clip(arr, space.low, space.high)
        return clipped, False, bool(np.any(clipped != arr))

    def state_key(self) -> str:
        task = json.dumps(_jsonable(self._task), sort_keys=True).encode()
        return hash_state(self._physical_state(), self.key_resolution, task, self._randomization_key)

    def _observation(self):
        state = np.asarray(self._state_vector(), dtype=np.float32)
        if self.mode == "vector":
            return state
        obs = {STATE: state}
        h, w = self.image_size
        for cam in self.cameras:
            obs[IMAGES + cam] = self._render(cam, h, w)
        obs[INSTRUCTION] = fit_text(self.instruction, MAX_INSTRUCTION)
        return obs

    def _info(self, success: bool, invalid: bool, clipped: bool) -> dict:
        return {K.SUCCESS: bool(success), K.INSTRUCTION: self.instruction, K.TASK_ID: self.task_id,
                K.INVALID_ACTION: bool(invalid), K.ACTION_CLIPPED: clipped, K.STATE_KEY: self.state_key()}

    def _emit(self, success: bool, invalid: bool, clipped: bool) -> tuple:
        obs, info = self._observation(), self._info(success, invalid, clipped)
        # Copied now: wrappers may add keys to the info they pass on.
        self._returned = (obs, dict(info))
        return obs, info


def _randomization_bytes(values: dict) -> bytes:
    return json.dumps(values, sort_keys=True).encode()


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in np.asarray(value).tolist()] if isinstance(value, np.ndarray) \
            else [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value
