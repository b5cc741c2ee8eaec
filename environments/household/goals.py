"""Goals as predicate sets over object classes, as in VirtualHome's task goals.

A predicate is a tuple ``(kind, a, b)``:

- ``("INSIDE", cls, container_cls)`` / ``("ON", cls, surface_cls)``: some
  ``cls`` is directly inside / on some ``container_cls``;
- ``("STATE", cls, state)``: some ``cls`` has ``state`` (OPEN, CLOSED, ON,
  OFF, CLEAN, DIRTY);
- ``("HOLDS", cls, "")``: the character holds some ``cls``;
- ``("SITTING", cls, "")`` / ``("LYING", cls, "")``: the character sits/lies on some ``cls``;
- ``("IN_ROOM", cls, room_cls)``: some ``cls`` is in a room of class ``room_cls``
  (carried objects count as being where the character is).

Class-level ("some mug") semantics match VirtualHome's count-based goals and
let one instruction hold in every generated apartment.
"""
from __future__ import annotations

from omnigym.environments.household.catalog import STATE
from omnigym.environments.household.world import INSIDE, LYING, ON, SITTING, World

PREDICATE_KINDS = ("INSIDE", "ON", "STATE", "HOLDS", "SITTING", "LYING", "IN_ROOM")
Predicate = tuple  # (kind: str, a: str, b: str)


def holds(world: World, pred: Predicate) -> bool:
    kind, a, b = pred
    objs = world.by_class.get(a, ())
    if kind in ("INSIDE", "ON"):
        rel = INSIDE if kind == "INSIDE" else ON
        return any(world.rel[i] == rel and world.parent[i] >= 0
                   and world.class_names[world.parent[i]] == b for i in objs)
    if kind == "STATE":
        bit = STATE[b]
        return any(world.state[i] & bit for i in objs)
    if kind == "HOLDS":
        return any(world.is_held(i) for i in objs)
    if kind in ("SITTING", "LYING"):
        posture = SITTING if kind == "SITTING" else LYING
        seat = world.char.seat
        return world.char.posture == posture and seat >= 0 and world.class_names[seat] == a
    if kind == "IN_ROOM":
        return any(world.class_names[world.room_of(i)] == b for i in objs)
    raise ValueError(f"unknown predicate kind {kind!r}; expected one of {PREDICATE_KINDS}")


def satisfied(world: World, goal: tuple[Predicate, ...]) -> tuple[bool, ...]:
    return tuple(holds(world, p) for p in goal)


def goal_classes(goal: tuple[Predicate, ...]) -> set[str]:
    """Object classes a goal mentions (the planner's relevant objects)."""
    out: set[str] = set()
    for kind, a, b in goal:
        out.add(a)
        if kind in ("INSIDE", "ON", "IN_ROOM"):
            out.add(b)
    return out


_STATE_WORDS = {"OPEN": "open", "CLOSED": "closed", "ON": "switched on", "OFF": "switched off",
                "CLEAN": "clean", "DIRTY": "dirty"}


def describe(pred: Predicate) -> str:
    """A plain-English rendering (used when a task gives no instruction)."""
    kind, a, b = pred
    return {
        "INSIDE": f"the {a} is in the {b}",
        "ON": f"the {a} is on the {b}",
        "STATE": f"the {a} is {_STATE_WORDS.get(b, b.lower())}",
        "HOLDS": f"you hold the {a}",
        "SITTING": f"you sit on the {a}",
        "LYING": f"you lie on the {a}",
        "IN_ROOM": f"the {a} is in the {b}",
    }[kind]
