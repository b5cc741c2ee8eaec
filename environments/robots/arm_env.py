"""ArmEnv: reach, push and pick-and-place on a table, on MuJoCo or PyBullet.

Action: ``Box(-1, 1, (4,))`` -- end-effector displacement (x, y, z) in units of
``MAX_DELTA`` metres per step, and the gripper command (-1 closed, +1 open).
The backend turns displacements into joint targets by inverse kinematics.

State (``observation.state``; layout from ``ArmTask.state_layout``):
end-effector xyz, gripper opening, every block's xyz, every pad/goal xyz and,
for the language-conditioned variants, one-hot target block and pad.
"""
from __future__ import annotations

import numpy as np
import gymnasium as gym

from omnigym.environments.robots.arm_tasks import (
    BLOCK_COLORS, EE_HOME, GOAL_COLOR, MAX_DELTA, PAD_COLORS, ArmTask,
)
from omnigym.environments.robots.base import RobotEnv

BACKENDS = {
    "mujoco": "omnigym.environments.robots.mujoco_arm:MujocoArm",
    "pybullet": "omnigym.environments.robots.bullet_arm:BulletArm",
}


def _backend_class(name: str):
    import importlib
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


class ArmEnv(RobotEnv):
    def __init__(self, task: str = "reach", n_blocks: int | None = None, n_pads: int = 1,
                 backend: str = "mujoco", reward_type: str = "dense", **kwargs):
        super().__init__(**kwargs)
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        if n_blocks is None:
            n_blocks = 0 if task == "reach" else 1
        self.task = ArmTask(task, n_blocks, n_pads)
        self.dense = reward_type == "dense"
        self.backend_name = backend
        block_colors = [BLOCK_COLORS[n] for n in self.task.block_names]
        pad_colors = [PAD_COLORS[n] for n in self.task.pad_names] if self.task.language else [GOAL_COLOR]
        self.sim = _backend_class(backend)(self.task.n_blocks, self.task.n_pads, block_colors, pad_colors)
        self.available_cameras = tuple(self.sim.cameras)
        self.render_camera = "scene"     # videos show the whole arm; observations keep their cameras
        self.state_dim = self.task.state_dim
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self._build_spaces()
        self._grip = 1.0
        self._layout: dict = {}

    def make_expert(self, **kwargs):
        """The scripted arm expert (it reads the task kind and the state layout)."""
        from omnigym.environments.robots.arm_expert import ArmExpert
        return ArmExpert(**kwargs)

    # --- RobotEnv hooks -------------------------------------------------
    def _randomize(self, values: dict) -> None:
        self.sim.randomize(values)

    def _reset_sim(self, rng, options) -> None:
        layout = self.task.sample(rng)
        self._layout = layout
        self._grip = 1.0
        self.sim.reset_scene(EE_HOME.copy(), layout["blocks"], layout["pads"])
        self.instruction = self.task.instruction(layout)
        self.task_id = self.task.task_id(layout)
        self._task = {"layout": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in layout.items()},
                      "grip": self._grip}

    def _apply_action(self, action: np.ndarray) -> None:
        self._grip = float(action[3])
        self._task["grip"] = self._grip
        self.sim.command(action[:3] * MAX_DELTA, self._grip)

    def _hold_action(self) -> np.ndarray:
        return np.array([0.0, 0.0, 0.0, self._grip])

    def _parts(self):
        return self.sim.ee_position(), self.sim.block_positions().reshape(-1, 3)

    def _state_vector(self) -> np.ndarray:
        ee, blocks = self._parts()
        return self.task.state_vector(ee, self.sim.gripper_opening(), blocks, self._layout)

    def _physical_state(self) -> np.ndarray:
        return self.sim.physical_state()

    def _success(self) -> bool:
        ee, blocks = self._parts()
        return self.task.success(ee, blocks, self._layout)

    def _reward(self, success: bool) -> float:
        ee, blocks = self._parts()
        return self.task.reward(ee, blocks, self._layout, success, self.dense)

    def _get_sim_state(self):
        return self.sim.get_state()

    def _set_sim_state(self, state) -> None:
        self.sim.set_state(state)
        layout = self._task["layout"]
        self._layout = {"blocks": np.asarray(layout["blocks"], dtype=np.float64).reshape(-1, 3),
                        "pads": np.asarray(layout["pads"], dtype=np.float64).reshape(-1, 3),
                        "target_block": layout["target_block"], "target_pad": layout["target_pad"]}
        self._grip = float(self._task["grip"])

    def _render(self, camera: str, height: int, width: int) -> np.ndarray:
        return self.sim.render(camera, height, width)

    def close(self) -> None:
        self.sim.close()
