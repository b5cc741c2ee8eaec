"""ArmExpert: a scripted expert for every arm task, on any physics backend.

It reads only ``observation.state`` (positions in the task frame, laid out by
``ArmTask.state_layout``) and the task kind, so the same script drives the
MuJoCo arm and the PyBullet Panda. Each step's phase is derived from the
geometry (where the gripper, the block and the goal are), not from a script
counter, so the expert recovers when a block slips, is dropped or drifts off
the pushing line: it simply finds itself in an earlier phase again.

Actions are proportional: the wanted end-effector displacement divided by
``MAX_DELTA`` and clipped to [-1, 1]; the fourth entry is the gripper
(-1 closed, +1 open).
"""
from __future__ import annotations

import numpy as np

from omnigym.environments.robots.arm_tasks import BLOCK_HALF, MAX_DELTA

OPEN, CLOSED = 1.0, -1.0

# --- pushing ----------------------------------------------------------------
# The closed fingers are the pusher: a ~2.4 cm square seen from above, so its
# reach towards the block is at most ~1.7 cm (corner first). Stand this far
# behind the block centre before pushing, clear of it.
PUSH_OFFSET = BLOCK_HALF + 0.017 + 0.008
PUSH_Z = BLOCK_HALF                 # push at the block's mid-height so it slides, not tips
HOVER_Z = 0.065                     # fingertips (~1 cm below the ee) clear a 4 cm block
PUSH_SPEED = 0.015                  # m/step: slow enough that the block stays in front
OFF_LINE = 0.012                    # lateral offset (m) beyond which the push is re-aimed
# The pusher must be able to stand at the start point without landing on
# another block: pusher reach (~1.7 cm) + half a block + a margin.
CLEARANCE = 0.017 + BLOCK_HALF + 0.008
# When the start point is taken, push from the side at these angles (rad)
# instead; the block then leaves its spot and the next steps re-aim at the goal.
DETOURS = (0.0, 0.4, -0.4, 0.8, -0.8, 1.2, -1.2)
AT_POINT = 0.01                     # "there" for waypoints (m)

# --- pick and place -----------------------------------------------------------
ALIGNED = 0.01                      # gripper above the block within this (m) before descending
GRASP_XY, GRASP_Z = 0.015, 0.012    # gripper around the block centre within these (m)
GRASP_STEPS = 3                     # steps to let the fingers close before lifting
OPENED = 0.8                        # opening the gripper must reach before it descends on a block
MISSED = 0.15                       # opening below this with nothing between the fingers: a miss
CARRY_Z = 0.08                      # carried block clears the 4 cm blocks on the table
ABOVE_GOAL = 0.02                   # block this close (xy) to the goal: go straight at it
APPROACH_Z = 0.05                   # hover this high above the block before descending


def _toward(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Action components moving ``current`` to ``target``: all the way when it
    is within one step, else at full speed on the axes that are far."""
    return np.clip((target - current) / MAX_DELTA, -1.0, 1.0)


def _push_direction(block: np.ndarray, u: np.ndarray, others: list) -> np.ndarray:
    """Straight at the goal (``u``) unless another block sits where the pusher
    would stand; then the nearest side angle whose start point is free."""
    for angle in DETOURS:
        c, s = np.cos(angle), np.sin(angle)
        d = np.array([c * u[0] - s * u[1], s * u[0] + c * u[1]])
        start = block - d * PUSH_OFFSET
        if all(np.linalg.norm(start - o) > CLEARANCE for o in others):
            return d
    return u


class ArmExpert:
    name = "expert"

    def __init__(self, **_):
        self.kind: str | None = None
        self.layout: dict[str, slice] = {}
        self._closing = 0     # steps spent closing around the block (the one bit of memory)

    def reset(self, env=None, seed=None, member=None) -> None:
        if env is not None:
            task = env.unwrapped.task
            self.kind = task.kind
            self.layout = task.state_layout()
        self._closing = 0

    # --- reading the state -------------------------------------------------
    def _parts(self, state: np.ndarray):
        lay = self.layout
        ee = state[lay["ee"]]
        opening = float(state[lay["gripper"]][0])
        blocks = [state[s] for k, s in lay.items() if k.startswith("block.")]
        pads = [state[s] for k, s in lay.items() if k.startswith("pad.")]
        # Language variants name the target with one-hots; otherwise there is one of each.
        b = int(np.argmax(state[lay["target_block"]])) if "target_block" in lay else 0
        p = int(np.argmax(state[lay["target_pad"]])) if "target_pad" in lay else 0
        others = [blk for i, blk in enumerate(blocks) if i != b]
        return ee, opening, (blocks[b] if blocks else None), pads[p], others

    def act(self, obs, info) -> np.ndarray:
        if self.kind is None:
            raise RuntimeError("ArmExpert needs reset(env=...) first, to learn the task and state layout")
        state = np.asarray(obs["observation.state"] if isinstance(obs, dict) else obs, dtype=np.float64)
        ee, opening, block, goal, others = self._parts(state)
        if self.kind == "reach":
            move, grip = _toward(goal, ee), OPEN
        elif self.kind == "push":
            move, grip = self._push(ee, block, goal, others)
        else:
            move, grip = self._pick_place(ee, opening, block, goal)
        return np.append(move, grip).astype(np.float32)

    # --- push -----------------------------------------------------------------
    def _push(self, ee, block, goal, others):
        to_goal = goal[:2] - block[:2]
        dist = float(np.linalg.norm(to_goal))
        u = _push_direction(block[:2], to_goal / max(dist, 1e-9), [o[:2] for o in others])
        v = np.array([-u[1], u[0]])                    # its left normal
        rel = ee[:2] - block[:2]
        behind, lateral = float(rel @ u), float(rel @ v)
        # Only push once down at push height: moving down while touching the
        # block would drag it into the table (friction), and it springs away.
        in_position = behind < -BLOCK_HALF and abs(lateral) < OFF_LINE and ee[2] < PUSH_Z + 0.005
        if in_position:
            # Push along the line, steering back onto it and holding the height;
            # the ee moves as far as the block still has to go.
            step = u * min(dist, PUSH_SPEED) - v * lateral
            target = np.array([*(ee[:2] + step), PUSH_Z])
            return _toward(target, ee), CLOSED
        # (Re-)approach: the point behind the block on the block->goal line.
        start = block[:2] - u * PUSH_OFFSET
        if np.linalg.norm(ee[:2] - start) < AT_POINT:
            return _toward(np.array([*start, PUSH_Z]), ee), CLOSED     # descend behind the block
        if ee[2] < HOVER_Z - 0.01:
            # Low and in the wrong place: rise straight up first so the move
            # over does not knock the block off the line.
            return _toward(np.array([*ee[:2], HOVER_Z]), ee), CLOSED
        return _toward(np.array([*start, HOVER_Z]), ee), CLOSED

    # --- pick and place --------------------------------------------------------
    def _pick_place(self, ee, opening, block, goal):
        offset = ee - block
        near = np.linalg.norm(offset[:2]) < GRASP_XY and abs(offset[2]) < GRASP_Z
        lifted = block[2] > BLOCK_HALF + 0.01
        if near and opening > MISSED and (self._closing >= GRASP_STEPS or lifted):
            return self._carry(block, goal), CLOSED
        if near and opening > MISSED:
            # Around the block: close, still centring on it.
            self._closing += 1
            return _toward(block, ee), CLOSED
        self._closing = 0
        hover = np.array([*block[:2], block[2] + APPROACH_Z])
        if np.linalg.norm(offset[:2]) > ALIGNED:
            if ee[2] < hover[2] - 0.01 and np.linalg.norm(offset[:2]) > 2 * GRASP_XY:
                # Low and away from the block: rise first so the open fingers
                # do not sweep other blocks (or this one) across the table.
                return _toward(np.array([*ee[:2], hover[2]]), ee), OPEN
            return _toward(hover, ee), OPEN
        if opening < OPENED:
            return _toward(hover, ee), OPEN     # wait above the block for the fingers to open
        return _toward(block, ee), OPEN         # descend around the block

    def _carry(self, block, goal):
        """Move the held block to the goal: up, across at a safe height, down."""
        carry_z = max(goal[2], CARRY_Z)
        if np.linalg.norm(goal[:2] - block[:2]) > ABOVE_GOAL:
            if block[2] < carry_z - 0.02:
                target = np.array([*block[:2], carry_z])     # lift before moving across
            else:
                target = np.array([*goal[:2], carry_z])
        else:
            target = goal
        # The block moves with the gripper, so command the block's displacement.
        return _toward(target, block)
