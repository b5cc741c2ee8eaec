"""Arm tasks defined once, independent of the physics backend.

A task decides the layout (where blocks, pads and the goal go), what the
state vector holds, the reward and success. Backends (``mujoco_arm``,
``bullet_arm``) only move the arm and report poses, so the same task runs on
MuJoCo and PyBullet with identical semantics.

Coordinates are in the **task frame**: origin at the centre of the table top,
x away from the robot base, y to the robot's left, z up, metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_HALF = 0.02            # blocks are 4 cm cubes
WORKSPACE = 0.12             # objects and goals lie in [-WORKSPACE, WORKSPACE]^2
EE_HOME = np.array([-0.10, 0.0, 0.15])
MAX_DELTA = 0.03             # metres of end-effector motion per step at |action| = 1
REACH_TOLERANCE = 0.03
PLACE_TOLERANCE = 0.04
MIN_SEPARATION = 0.07        # between blocks, pads and the goal at reset

BLOCK_COLORS = {"red": (0.85, 0.15, 0.15), "green": (0.15, 0.7, 0.2), "blue": (0.15, 0.3, 0.85)}
PAD_COLORS = {"yellow": (0.95, 0.85, 0.1), "purple": (0.6, 0.2, 0.75), "orange": (0.95, 0.5, 0.1)}
GOAL_COLOR = (0.1, 0.8, 0.8)


@dataclass(frozen=True)
class ArmTask:
    """``kind``: reach | push | pick_place. ``n_blocks``/``n_pads`` > 1 make the
    language-conditioned variant: the instruction names the block and the pad."""
    kind: str
    n_blocks: int = 1
    n_pads: int = 1

    def __post_init__(self):
        if self.kind not in ("reach", "push", "pick_place"):
            raise ValueError(f"unknown arm task {self.kind!r}")
        if self.kind == "reach" and (self.n_blocks, self.n_pads) != (0, 1):
            raise ValueError("reach has no blocks and one goal")
        if self.kind != "reach" and not (1 <= self.n_blocks <= len(BLOCK_COLORS)
                                         and 1 <= self.n_pads <= len(PAD_COLORS)):
            raise ValueError(f"blocks in 1..{len(BLOCK_COLORS)} and pads in 1..{len(PAD_COLORS)}")

    @property
    def language(self) -> bool:
        return self.n_blocks > 1 or self.n_pads > 1

    @property
    def block_names(self) -> list[str]:
        return list(BLOCK_COLORS)[: self.n_blocks]

    @property
    def pad_names(self) -> list[str]:
        return list(PAD_COLORS)[: self.n_pads] if self.language else ["goal"]

    @property
    def state_dim(self) -> int:
        # ee xyz, gripper opening, blocks xyz, pads xyz, one-hot block, one-hot pad
        extra = (self.n_blocks + self.n_pads) if self.language else 0
        return 4 + 3 * self.n_blocks + 3 * self.n_pads + extra

    def state_layout(self) -> dict[str, slice]:
        """Where each quantity lies in ``observation.state`` (for experts and docs)."""
        out, i = {"ee": slice(0, 3), "gripper": slice(3, 4)}, 4
        for name in self.block_names:
            out[f"block.{name}"] = slice(i, i + 3)
            i += 3
        for name in self.pad_names:
            out[f"pad.{name}"] = slice(i, i + 3)
            i += 3
        if self.language:
            out["target_block"] = slice(i, i + self.n_blocks)
            i += self.n_blocks
            out["target_pad"] = slice(i, i + self.n_pads)
        return out

    # --- episodes -------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        """The episode's layout: block and pad positions, targets, instruction."""
        points: list[np.ndarray] = []

        def free_xy() -> np.ndarray:
            for _ in range(1000):
                xy = rng.uniform(-WORKSPACE, WORKSPACE, size=2)
                if all(np.linalg.norm(xy - p) >= MIN_SEPARATION for p in points):
                    points.append(xy)
                    return xy
            raise RuntimeError("could not place objects apart; shrink the layout")

        blocks = [np.array([*free_xy(), BLOCK_HALF]) for _ in range(self.n_blocks)]
        if self.kind == "reach":
            pads = [np.array([*rng.uniform(-WORKSPACE, WORKSPACE, size=2), rng.uniform(0.03, 0.2)])]
        elif self.kind == "pick_place" and not self.language:
            # As in Fetch's pick-and-place: half the goals in the air.
            height = rng.uniform(0.04, 0.12) if rng.random() < 0.5 else BLOCK_HALF
            pads = [np.array([*free_xy(), height])]
        else:
            pads = [np.array([*free_xy(), BLOCK_HALF]) for _ in range(self.n_pads)]
        target_block = int(rng.integers(self.n_blocks)) if self.n_blocks else -1
        target_pad = int(rng.integers(self.n_pads))
        return {"blocks": np.array(blocks).reshape(-1, 3), "pads": np.array(pads).reshape(-1, 3),
                "target_block": target_block, "target_pad": target_pad}

    def instruction(self, layout: dict) -> str:
        if self.kind == "reach":
            return "move the gripper to the target"
        block = "the block" if self.n_blocks == 1 else f"the {self.block_names[layout['target_block']]} block"
        pad = "the target" if not self.language else f"the {self.pad_names[layout['target_pad']]} pad"
        if self.kind == "push":
            return f"push {block} onto {pad}"
        return f"pick up {block} and place it on {pad}" if self.language else f"pick up {block} and put it at {pad}"

    def task_id(self, layout: dict) -> str:
        if not self.language:
            return self.kind
        return f"{self.kind}:{self.block_names[layout['target_block']]}:{self.pad_names[layout['target_pad']]}"

    # --- per step ---------------------------------------------------------
    def state_vector(self, ee: np.ndarray, gripper: float, blocks: np.ndarray, layout: dict) -> np.ndarray:
        parts = [ee, [gripper], np.asarray(blocks).reshape(-1), layout["pads"].reshape(-1)]
        if self.language:
            parts += [np.eye(self.n_blocks)[layout["target_block"]], np.eye(self.n_pads)[layout["target_pad"]]]
        return np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1) for p in parts])

    def goal(self, layout: dict) -> np.ndarray:
        return layout["pads"][layout["target_pad"]]

    def distances(self, ee: np.ndarray, blocks: np.ndarray, layout: dict) -> tuple[float, float]:
        """(object-to-goal, gripper-to-object); for reach the object is the gripper."""
        goal = self.goal(layout)
        if self.kind == "reach":
            return float(np.linalg.norm(ee - goal)), 0.0
        block = blocks[layout["target_block"]]
        if self.kind == "push":
            to_goal = float(np.linalg.norm(block[:2] - goal[:2]))
        else:
            to_goal = float(np.linalg.norm(block - goal))
        return to_goal, float(np.linalg.norm(ee - block))

    def success(self, ee: np.ndarray, blocks: np.ndarray, layout: dict) -> bool:
        to_goal, _ = self.distances(ee, blocks, layout)
        if self.kind == "reach":
            return to_goal < REACH_TOLERANCE
        if self.kind == "push":
            block = blocks[layout["target_block"]]
            on_table = block[2] < BLOCK_HALF + 0.01
            return to_goal < PLACE_TOLERANCE and bool(on_table)
        return to_goal < PLACE_TOLERANCE

    def reward(self, ee: np.ndarray, blocks: np.ndarray, layout: dict, success: bool, dense: bool) -> float:
        if not dense:
            return float(success)
        to_goal, to_object = self.distances(ee, blocks, layout)
        return -to_goal - 0.5 * to_object + (1.0 if success else 0.0)
