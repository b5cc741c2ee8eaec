"""What a physics backend must provide to run the arm tasks.

``ArmEnv`` talks to the simulator only through this interface, in the task
frame of ``arm_tasks`` (origin at the table-top centre, x away from the robot,
z up). A backend owns one simulator instance, one arm with a parallel gripper,
``n_blocks`` free 4 cm cubes and ``n_pads`` visual (non-colliding) goal pads.

Contract every backend is tested against:

- ``command(delta, grip)`` moves the end effector (the point between the
  fingertips) by ``delta`` (task frame, metres, |delta_i| <= MAX_DELTA) within
  one env step, using inverse kinematics; ``grip`` in [-1, 1]: -1 closes the
  gripper fully, +1 opens it fully, values between interpolate. Motion is
  limited to the reachable workspace (the backend clips the target).
- ``ee_position()`` is in the task frame; ``gripper_opening()`` in [0, 1]
  (1 = fully open).
- After ``reset_scene``, the arm holds still at ``ee_start`` with the gripper
  open and blocks resting on the table at the given positions.
- ``get_state``/``set_state`` restore the physics exactly: stepping after a
  restore gives the same result as stepping from the original state.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class ArmBackend(ABC):
    cameras: tuple[str, ...] = ("front",)

    def __init__(self, n_blocks: int, n_pads: int, block_colors: list, pad_colors: list):
        self.n_blocks = n_blocks
        self.n_pads = n_pads
        self.block_colors = block_colors      # rgb tuples in [0, 1], one per block
        self.pad_colors = pad_colors          # one per pad

    @abstractmethod
    def reset_scene(self, ee_start: np.ndarray, blocks: np.ndarray, pads: np.ndarray) -> None:
        """Arm at ``ee_start`` (gripper open), blocks (n, 3) at rest, pads (m, 3) shown."""

    @abstractmethod
    def command(self, delta: np.ndarray, grip: float) -> None:
        """Move the end effector by ``delta`` and drive the gripper (one env step)."""

    @abstractmethod
    def ee_position(self) -> np.ndarray:
        ...

    @abstractmethod
    def gripper_opening(self) -> float:
        ...

    @abstractmethod
    def block_positions(self) -> np.ndarray:
        """(n_blocks, 3) centres in the task frame."""

    @abstractmethod
    def physical_state(self) -> np.ndarray:
        """Joint positions/velocities and block poses/velocities (for state keys)."""

    @abstractmethod
    def get_state(self):
        ...

    @abstractmethod
    def set_state(self, state) -> None:
        ...

    @abstractmethod
    def render(self, camera: str, height: int, width: int) -> np.ndarray:
        """uint8 (height, width, 3)."""

    def randomize(self, values: dict) -> None:
        """Apply ``Randomization.draw`` values ({} restores nominal): keys
        ``mass_scale``, ``friction_scale``, ``color_jitter``, ``camera_offset``."""

    def close(self) -> None:
        pass
