"""Observations: the text the agent reads and a fixed-size vector for MLPs.

Both show only what the character can see (its room, minus what is hidden
in closed containers) plus the goal.

The vector is one float32 array with four blocks (``VectorLayout`` gives
their offsets, so a model can split it):

1. ``agent``: room class one-hot, posture one-hot, hands in use;
2. ``objects``: per class of ``catalog.CLASS_VOCAB``, the max over visible
   instances of [visible, close, held, near, OPEN, CLOSED, ON, OFF, CLEAN, DIRTY];
3. ``goal``: per goal slot (``MAX_GOAL`` of them), predicate one-hot, first
   class one-hot, second argument one-hot (class or state), satisfied flag;
4. ``actions``: per admissible-action slot, [verb id + 1, first class id + 1,
   second class id + 1] (0 = empty slot), so a policy can score the
   actions that the discrete index refers to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omnigym.environments.household.actions import VERB_INDEX, format_action
from omnigym.environments.household.catalog import CLASS_INDEX, CLASS_VOCAB, ROOM_CLASSES, STATE, STATES
from omnigym.environments.household.goals import PREDICATE_KINDS
from omnigym.environments.household.world import INSIDE, POSTURE_NAMES, World

MAX_GOAL = 3
OBJECT_FEATURES = ("visible", "close", "held", "near", "OPEN", "CLOSED", "ON", "OFF", "CLEAN", "DIRTY")
_STATE_COLUMNS = [(OBJECT_FEATURES.index(s), STATE[s]) for s in OBJECT_FEATURES[4:]]
_ARG2_VOCAB = CLASS_VOCAB + STATES + ("",)
_ARG2_INDEX = {name: i for i, name in enumerate(_ARG2_VOCAB)}


@dataclass(frozen=True)
class VectorLayout:
    max_actions: int
    n_classes: int = len(CLASS_VOCAB)

    @property
    def agent(self) -> int:
        return len(ROOM_CLASSES) + len(POSTURE_NAMES) + 2

    @property
    def objects(self) -> int:
        return self.n_classes * len(OBJECT_FEATURES)

    @property
    def goal_slot(self) -> int:
        return len(PREDICATE_KINDS) + self.n_classes + len(_ARG2_VOCAB) + 1

    @property
    def goal(self) -> int:
        return MAX_GOAL * self.goal_slot

    @property
    def actions(self) -> int:
        return self.max_actions * 3

    @property
    def size(self) -> int:
        return self.agent + self.objects + self.goal + self.actions

    def offsets(self) -> dict[str, tuple[int, int]]:
        """Start and end of each block."""
        out, start = {}, 0
        for name in ("agent", "objects", "goal", "actions"):
            out[name] = (start, start + getattr(self, name))
            start += getattr(self, name)
        return out


def encode_goal(goal, done: tuple[bool, ...], layout: VectorLayout) -> np.ndarray:
    """The goal block; computed once per step from the (few) predicates."""
    out = np.zeros(layout.goal, np.float32)
    for slot, ((kind, a, b), ok) in enumerate(zip(goal[:MAX_GOAL], done)):
        base = slot * layout.goal_slot
        out[base + PREDICATE_KINDS.index(kind)] = 1
        out[base + len(PREDICATE_KINDS) + CLASS_INDEX.get(a, 0)] = 1
        out[base + len(PREDICATE_KINDS) + layout.n_classes + _ARG2_INDEX.get(b, 0)] = 1
        out[base + layout.goal_slot - 1] = float(ok)
    return out


def encode_vector(world: World, visible: list[int], actions: list[tuple], goal_block: np.ndarray,
                  layout: VectorLayout) -> np.ndarray:
    out = np.zeros(layout.size, np.float32)
    c = world.char
    room_name = world.class_names[c.room]
    if room_name in ROOM_CLASSES:
        out[ROOM_CLASSES.index(room_name)] = 1
    out[len(ROOM_CLASSES) + c.posture] = 1
    out[layout.agent - 2] = float(c.right >= 0)
    out[layout.agent - 1] = float(c.left >= 0)
    base = layout.agent
    width = len(OBJECT_FEATURES)
    names = world.class_names
    for i in visible:
        row = base + CLASS_INDEX.get(names[i], 0) * width
        out[row] = 1
        if world.is_close(i):
            out[row + 1] = 1
        if world.is_held(i):
            out[row + 2] = 1
        if i == c.near:
            out[row + 3] = 1
        st = world.state[i]
        if st:
            for col, bit in _STATE_COLUMNS:
                if st & bit:
                    out[row + col] = 1
    start = layout.agent + layout.objects
    out[start:start + layout.goal] = goal_block
    start += layout.goal
    for slot, (verb, a, b) in enumerate(actions[:layout.max_actions]):
        k = start + 3 * slot
        out[k] = VERB_INDEX[verb] + 1
        out[k + 1] = CLASS_INDEX.get(names[a], 0) + 1 if a >= 0 else 0
        out[k + 2] = CLASS_INDEX.get(names[b], 0) + 1 if b >= 0 else 0
    return out


_STATE_TEXT_CACHE: dict[int, str] = {}


def _state_text(st: int) -> str:
    text = _STATE_TEXT_CACHE.get(st)
    if text is None:
        words = [s.lower().replace("_", " ") for s in STATES if st & STATE[s]]
        text = _STATE_TEXT_CACHE[st] = f" ({', '.join(words)})" if words else ""
    return text


def render_text(world: World, visible: list[int], instruction: str, feedback: str) -> str:
    """What the character perceives, in VirtualHome's object naming."""
    c = world.char
    names = world.class_names
    lines = [f"Task: {instruction}."]
    where = f"You are in the {names[c.room]}, {POSTURE_NAMES[c.posture]}"
    if c.seat >= 0:
        where += f" on the {world.names[c.seat]}"
    if c.near >= 0 and c.near != c.seat:
        where += f", next to the {world.names[c.near]}"
    lines.append(where + ".")
    held = [f"{world.names[h]}{_state_text(world.state[h])}" for h in world.held()]
    lines.append("You hold: " + (", ".join(held) if held else "nothing") + ".")
    seen = []
    for i in visible:
        if world.is_held(i):
            continue
        p = world.parent[i]
        if p >= 0 and not world.is_room[p]:
            spot = f" {'in' if world.rel[i] == INSIDE else 'on'} {world.names[p]}"
        else:
            spot = ""
        seen.append(f"{world.names[i]}{_state_text(world.state[i])}{spot}")
    lines.append("You see: " + ("; ".join(seen) if seen else "nothing") + ".")
    lines.append("Rooms: " + ", ".join(world.names[r] for r in world.rooms) + ".")
    if feedback:
        lines.append(feedback)
    return "\n".join(lines)


def action_strings(world: World, actions: list[tuple]) -> list[str]:
    return [format_action(world, a) for a in actions]

