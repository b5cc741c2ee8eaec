"""The household world: a compact symbolic scene graph with one character.

Every object is a node index 0..n-1. Static facts (class, category,
properties, VirtualHome id) never change; the dynamic state is four small
integer arrays and the character tuple, so snapshots are plain tuples and a
canonical hash is cheap:

- ``parent[i]``: the node object i is ON or INSIDE (a room for furniture and
  for things on the floor); ``-1`` for rooms and for held objects;
- ``rel[i]``: ``INSIDE`` or ``ON`` (``HELD`` while in a hand, ``NONE`` for rooms);
- ``state[i]``: bit set of object states (OPEN/CLOSED, ON/OFF, CLEAN/DIRTY, ...);
- the character: (room, near, right hand, left hand, posture, seat, facing).

Edges are indexed by node (``children``), so no action scans the whole graph.
Relations CLOSE and FACING are derived from the character tuple (see
``is_close``); ``vh_graph`` writes them out as VirtualHome edges.
"""
from __future__ import annotations

from dataclasses import dataclass

from omnigym.environments.household.catalog import PROP, STATE, STATE_OPPOSITE

INSIDE, ON, HELD, NONE = 0, 1, 2, 3
RELATION_NAMES = ("INSIDE", "ON", "HELD", "NONE")
STANDING, SITTING, LYING = 0, 1, 2
POSTURE_NAMES = ("standing", "sitting", "lying")
_CLOSED, _OPEN, _SWITCH_ON, _SWITCH_OFF = STATE["CLOSED"], STATE["OPEN"], STATE["ON"], STATE["OFF"]
_DIRTY, _CLEAN = STATE["DIRTY"], STATE["CLEAN"]


@dataclass(frozen=True)
class Node:
    """Static description of one object (what never changes in an episode)."""

    id: int                 # VirtualHome node id
    class_name: str
    category: str
    props: int              # property bits (catalog.PROP)

    @property
    def is_room(self) -> bool:
        return self.category == "Rooms"


@dataclass
class Character:
    room: int
    near: int = -1          # the object the character walked to (-1: none)
    right: int = -1         # held in the right hand
    left: int = -1          # held in the left hand
    posture: int = STANDING
    seat: int = -1          # what it sits or lies on
    facing: int = -1

    def as_tuple(self) -> tuple:
        return (self.room, self.near, self.right, self.left, self.posture, self.seat, self.facing)


class World:
    """Scene graph + character, with VirtualHome-style queries."""

    def __init__(self, nodes: list[Node], parent: list[int], rel: list[int],
                 state: list[int], character: Character, char_id: int = 1):
        self.nodes = nodes
        self.n = len(nodes)
        self.char_id = char_id
        self.props = [node.props for node in nodes]
        self.class_names = [node.class_name for node in nodes]
        self.is_room = [node.is_room for node in nodes]
        self.rooms = [i for i in range(self.n) if self.is_room[i]]
        self.by_id = {node.id: i for i, node in enumerate(nodes)}
        self.by_class: dict[str, list[int]] = {}
        for i, name in enumerate(self.class_names):
            self.by_class.setdefault(name, []).append(i)
        # VirtualHome-style name for text: "<mug> (12)".
        self.names = [f"<{node.class_name}> ({node.id})" for node in nodes]
        self.parent = list(parent)
        self.rel = list(rel)
        self.state = list(state)
        self.char = character
        self._rebuild_children()

    # ----------------------------------------------------------------- state
    def _rebuild_children(self) -> None:
        self.children: list[set[int]] = [set() for _ in range(self.n)]
        for i, p in enumerate(self.parent):
            if p >= 0:
                self.children[p].add(i)

    def get_state(self) -> tuple:
        """A hashable snapshot of everything that can change."""
        return (tuple(self.parent), tuple(self.rel), tuple(self.state), self.char.as_tuple())

    def set_state(self, snapshot: tuple) -> None:
        parent, rel, state, char = snapshot
        if len(parent) != self.n or len(rel) != self.n or len(state) != self.n or len(char) != 7:
            raise ValueError("snapshot does not belong to this scene (node count differs)")
        self.parent, self.rel, self.state = list(parent), list(rel), list(state)
        self.char = Character(*char)
        self._rebuild_children()

    def move(self, obj: int, new_parent: int, relation: int) -> None:
        old = self.parent[obj]
        if old >= 0:
            self.children[old].discard(obj)
        self.parent[obj], self.rel[obj] = new_parent, relation
        if new_parent >= 0:
            self.children[new_parent].add(obj)

    # --------------------------------------------------------------- queries
    def has(self, i: int, prop: str) -> bool:
        return bool(self.props[i] & PROP[prop])

    def has_state(self, i: int, name: str) -> bool:
        return bool(self.state[i] & STATE[name])

    def set_state_flag(self, i: int, name: str) -> None:
        """Turn a state on and its opposite off (OPEN clears CLOSED, ...)."""
        self.state[i] = (self.state[i] & ~STATE[STATE_OPPOSITE[name]]) | STATE[name]

    def held(self) -> list[int]:
        return [h for h in (self.char.right, self.char.left) if h >= 0]

    def is_held(self, i: int) -> bool:
        return i >= 0 and (i == self.char.right or i == self.char.left)

    def holder(self, i: int) -> int:
        """The top-most held object that carries i (i itself if held), else -1."""
        while i >= 0:
            if self.is_held(i):
                return i
            i = self.parent[i]
        return -1

    def room_of(self, i: int) -> int:
        """The room a node is in: follow ON/INSIDE; held things are where the character is."""
        while not self.is_room[i]:
            p = self.parent[i]
            if p < 0:
                return self.char.room
            i = p
        return i

    def inside_closed(self, i: int) -> bool:
        """True when i is hidden inside a closed container (at any depth)."""
        while True:
            p = self.parent[i]
            if p < 0 or self.is_room[p]:
                return False
            if self.rel[i] == INSIDE and self.state[p] & _CLOSED:
                return True
            i = p

    def visible(self) -> list[int]:
        """Objects the character sees: its room's contents not hidden in a closed
        container, plus what it carries. Sorted by node index (canonical order)."""
        seen: list[int] = []
        stack = list(self.children[self.char.room]) + self.held()
        while stack:
            i = stack.pop()
            seen.append(i)
            if self.state[i] & _CLOSED:
                stack.extend(c for c in self.children[i] if self.rel[c] != INSIDE)
            else:
                stack.extend(self.children[i])
        seen.sort()
        return seen

    def is_visible(self, i: int) -> bool:
        if self.is_room[i]:
            return False
        return (self.holder(i) >= 0 or self.room_of(i) == self.char.room) and not self.inside_closed(i)

    def is_close(self, i: int) -> bool:
        """VirtualHome's CLOSE, derived: the thing walked to, what is directly
        on or in it, what it stands on or in, what the character carries
        (and what is on or in that), and the seat."""
        c = self.char
        if i < 0 or self.is_room[i]:
            return False
        if i == c.near or i == c.seat or self.holder(i) >= 0:
            return True
        near = c.near
        if near >= 0:
            if self.parent[i] == near:
                return True
            p = self.parent[near]
            if p == i:
                return True
        return False

    def close_objects(self, visible: list[int] | None = None) -> list[int]:
        visible = self.visible() if visible is None else visible
        return [i for i in visible if self.is_close(i)]

    def free_hand(self) -> str | None:
        if self.char.right < 0:
            return "right"
        if self.char.left < 0:
            return "left"
        return None

    def seated_count(self, seat: int) -> int:
        """Only one character exists, so a seat holds at most that one."""
        return 1 if self.char.seat == seat else 0

    def canonical(self) -> bytes:
        """Bytes that identify the world + character state (for ``state_key``)."""
        import array
        a = array.array("i", self.parent)
        a.extend(self.rel)
        a.extend(self.state)
        a.extend(self.char.as_tuple())
        return a.tobytes()
