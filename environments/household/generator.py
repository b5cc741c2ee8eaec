"""Procedural apartments: a seed gives rooms, furniture, objects and states.

Every apartment has a kitchen, a living room, a bedroom and a bathroom, plus
up to two of a dining room and an office; 30-80 objects (furniture and small
things, not counting rooms); small objects stand ON surfaces or INSIDE
containers; openable things start mostly closed, switchable things off, and
dishes and clothes are sometimes dirty. ``required`` classes are guaranteed
to exist, so any task of a suite can be posed in any apartment.
"""
from __future__ import annotations

import numpy as np

from omnigym.environments.household.catalog import (
    CLASSES, FURNITURE, ITEMS, PROP, STATE,
)
from omnigym.environments.household.world import INSIDE, NONE, ON, Character, Node, World

CORE_ROOMS = ("kitchen", "livingroom", "bedroom", "bathroom")
EXTRA_ROOMS = ("diningroom", "office")
# Furniture every room of a type always gets (the rest is drawn at random).
ALWAYS = {
    "kitchen": ("fridge", "microwave", "stove", "sink", "kitchentable", "kitchencabinet"),
    "livingroom": ("sofa", "tv", "coffeetable"),
    "bedroom": ("bed", "nightstand", "closet"),
    "bathroom": ("toilet", "sink", "bathroomcounter", "bathroomcabinet"),
    "diningroom": ("diningtable", "cupboard"),
    "office": ("desk", "computer"),
}
_ITEM_BY_NAME = {c.name: c for c in ITEMS}
_CORE_FURNITURE = {f for room in CORE_ROOMS for f in ALWAYS[room]}
MIN_OBJECTS, MAX_OBJECTS = 30, 80


def furniture_rooms(cls: str) -> tuple[str, ...]:
    return CLASSES[cls].rooms


def generate(seed: int, required: set[str] = frozenset(), n_objects: int | None = None) -> World:
    """Build an apartment from ``seed``. ``required``: classes that must exist."""
    rng = np.random.default_rng(seed)
    unknown = [c for c in required if c not in CLASSES]
    if unknown:
        raise ValueError(f"unknown object classes {sorted(unknown)}")
    required = set(required)
    for cls in list(required):  # an item needs a piece of furniture to stand on
        spec = _ITEM_BY_NAME.get(cls)
        if spec and not any(p in _CORE_FURNITURE for p in spec.places):
            required.add(spec.places[0])
    rooms = list(CORE_ROOMS)
    extra = [r for r in EXTRA_ROOMS if rng.random() < 0.5]
    # A required class that only lives in an extra room brings that room.
    for cls in sorted(required):
        homes = CLASSES[cls].rooms
        if homes and not set(homes) & set(rooms + extra):
            extra.append(homes[0])
    rooms += [r for r in EXTRA_ROOMS if r in extra]

    nodes: list[Node] = []
    parent: list[int] = []
    rel: list[int] = []
    state: list[int] = []

    def add(cls: str, where: int, relation: int, st: int = 0) -> int:
        spec = CLASSES[cls]
        nodes.append(Node(id=len(nodes) + 2, class_name=cls, category=spec.category, props=spec.props))
        parent.append(where)
        rel.append(relation)
        state.append(st)
        return len(nodes) - 1

    room_index = {r: add(r, -1, NONE) for r in rooms}
    furniture_of: dict[str, list[int]] = {}
    for room in rooms:
        chosen = set(ALWAYS[room])
        for spec in FURNITURE:
            if room in spec.rooms and spec.name not in chosen and rng.random() < 0.5:
                chosen.add(spec.name)
        for spec in FURNITURE:  # catalog order keeps generation deterministic
            if spec.name in chosen:
                i = add(spec.name, room_index[room], INSIDE, _initial_state(spec.name, rng))
                furniture_of.setdefault(spec.name, []).append(i)
    for cls in sorted(required):
        if cls in furniture_of or cls in _ITEM_BY_NAME or CLASSES[cls].category == "Rooms":
            continue
        home = next(r for r in CLASSES[cls].rooms if r in room_index)
        furniture_of[cls] = [add(cls, room_index[home], INSIDE, _initial_state(cls, rng))]

    placeable = [c for c in ITEMS if any(p in furniture_of for p in c.places)]
    n_furniture = len(nodes) - len(rooms)
    if n_objects is None:
        n_objects = int(rng.integers(max(MIN_OBJECTS, n_furniture + 8), MAX_OBJECTS - 10 + 1))
    n_items = max(0, min(n_objects, MAX_OBJECTS) - n_furniture)
    picks = [c.name for c in ITEMS if c.name in required]
    while len(picks) < n_items:
        picks.append(placeable[int(rng.integers(len(placeable)))].name)
    for cls in picks:
        spec = _ITEM_BY_NAME[cls]
        hosts = [f for p in spec.places for f in furniture_of.get(p, ())]
        host = hosts[int(rng.integers(len(hosts)))]
        host_props = nodes[host].props
        if host_props & PROP["CONTAINERS"] and (not host_props & PROP["SURFACES"] or rng.random() < 0.5):
            relation = INSIDE
        else:
            relation = ON
        add(cls, host, relation, _initial_state(cls, rng))

    start_room = room_index[rooms[int(rng.integers(len(rooms)))]]
    return World(nodes, parent, rel, state, Character(room=start_room), char_id=1)


def _initial_state(cls: str, rng: np.random.Generator) -> int:
    spec = CLASSES[cls]
    props = spec.props
    st = 0
    if props & PROP["CAN_OPEN"]:
        st |= STATE["OPEN"] if rng.random() < 0.25 else STATE["CLOSED"]
    if props & PROP["HAS_SWITCH"]:
        # Never ON and OPEN at once (the rules forbid switching an open appliance on).
        on = rng.random() < 0.2 and not st & STATE["OPEN"]
        st |= STATE["ON"] if on else STATE["OFF"]
    if spec.dirty_chance > 0:
        st |= STATE["DIRTY"] if rng.random() < spec.dirty_chance else STATE["CLEAN"]
    return st


def unsatisfy(world: World, goal, seed: int) -> None:
    """Change the scene so that no goal predicate holds at the start.

    State goals flip every instance to the opposite state; placement goals
    move offending objects to another allowed place (another room for
    IN_ROOM). Posture and holding goals start false by construction.
    """
    rng = np.random.default_rng(seed)
    for kind, a, b in goal:
        objs = world.by_class.get(a, ())
        if kind == "STATE":
            opposite = {"OPEN": "CLOSED", "CLOSED": "OPEN", "ON": "OFF", "OFF": "ON",
                        "CLEAN": "DIRTY", "DIRTY": "CLEAN"}[b]
            for i in objs:
                world.set_state_flag(i, opposite)
                if opposite == "ON" and world.state[i] & STATE["OPEN"]:
                    world.set_state_flag(i, "CLOSED")  # an open appliance cannot run
            continue
        for i in objs:
            if kind in ("INSIDE", "ON"):
                p = world.parent[i]
                if p < 0 or world.class_names[p] != b or world.rel[i] != (INSIDE if kind == "INSIDE" else ON):
                    continue
                _relocate(world, i, rng, avoid_class=b)
            elif kind == "IN_ROOM" and world.class_names[world.room_of(i)] == b:
                _relocate(world, i, rng, avoid_room=b)


def _relocate(world: World, obj: int, rng: np.random.Generator, avoid_class: str = "",
              avoid_room: str = "") -> None:
    spec = _ITEM_BY_NAME.get(world.class_names[obj])
    places = spec.places if spec else ()
    hosts = [h for p in places if p != avoid_class for h in world.by_class.get(p, ())
             if world.class_names[world.room_of(h)] != avoid_room]
    if hosts:
        host = hosts[int(rng.integers(len(hosts)))]
        props = world.props[host]
        relation = INSIDE if props & PROP["CONTAINERS"] and not props & PROP["SURFACES"] else ON
    else:  # nowhere suitable: the floor of a room that is allowed
        rooms = [r for r in world.rooms if world.class_names[r] != avoid_room]
        host, relation = rooms[int(rng.integers(len(rooms)))], INSIDE
    world.move(obj, host, relation)
