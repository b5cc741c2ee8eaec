"""Exact MuJoCo snapshots.

qpos/qvel alone do not determine the next step: the solver's warm start,
controls, activations and mocap poses matter, and so do quantities gymnasium's
rewards read *before* stepping (``xpos`` after ``mj_step`` still describes
the previous position). ``mj_forward`` after restoring qpos/qvel would
recompute those and change the next reward. A full ``MjData`` copy restored
with ``mj_copyData`` repeats the original trajectory bit for bit. Copies are
picklable (about 0.2-1 MB each).
"""
from __future__ import annotations

import copy

import mujoco


def get_mj_state(model: mujoco.MjModel, data: mujoco.MjData) -> mujoco.MjData:
    return copy.copy(data)  # MjData.__copy__ copies every buffer


def set_mj_state(model: mujoco.MjModel, data: mujoco.MjData, state: mujoco.MjData) -> None:
    mujoco.mj_copyData(data, model, state)
