"""VirtualHome JSON scene graphs: export a ``World`` and import one back.

The format is VirtualHome's own (``EnvironmentGraph`` dictionaries)::

    {"nodes": [{"id", "class_name", "category", "properties": [...], "states": [...]}, ...],
     "edges": [{"from_id", "relation_type", "to_id"}, ...]}

**Export** (``to_virtualhome_graph``) writes, deterministically (nodes sorted
by id, edges sorted by ``(from_id, relation_type, to_id)``):

- one node per object plus a character node (``class_name`` ``"character"``,
  category ``"Characters"``, state ``SITTING``/``LYING`` by posture);
- ``obj INSIDE|ON parent`` (furniture and things on the floor: ``INSIDE room``)
  and, as VirtualHome scenes do, ``obj INSIDE room`` for every object whose
  direct parent is not its room (held objects: the character's room);
- ``character INSIDE room``, ``HOLDS_RH``/``HOLDS_LH``, ``CLOSE`` in both
  directions to everything ``World.is_close`` reports, ``FACING`` and, when
  sitting or lying, ``character ON seat``.

The character node also carries ``"near": <id>`` (the object it walked to)
when there is one. VirtualHome ignores unknown node keys; omnigym uses it to
restore ``Character.near`` exactly, because the CLOSE set alone can be
ambiguous (walking to a mug that is alone on a table and walking to the
table give the same CLOSE edges).

**Import** (``from_virtualhome_graph``) accepts a dict, a JSON string or a
path. Nodes are kept in id order and ids are kept as ``Node.id``, so
``from_virtualhome_graph(to_virtualhome_graph(w))`` reproduces a generated
world exactly (same ``get_state()``). The direct parent of an object is its
most specific ON/INSIDE target: a non-room target beats a room, and among
non-room targets the deepest one wins (``cupcake ON plate ON table`` plus
``cupcake ON table`` gives the plate); ties go to the smallest id, INSIDE
before ON for one target. Relation names are case-insensitive, duplicate
edges are ignored, BETWEEN/SITTING-between-objects and object-to-object
CLOSE/FACING edges carry no state here and are skipped. Class names are
lower-cased (the text parser matches lower-case names). Malformed input
raises ``ValueError`` saying what is wrong.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omnigym.environments.household.catalog import CLASSES, PROP, PROPERTIES, STATE, STATES
from omnigym.environments.household.world import (
    HELD, INSIDE, LYING, NONE, ON, SITTING, STANDING, Character, Node, World,
)

# VirtualHome's relation and state vocabularies (``Relation`` / ``State`` enums).
VH_RELATIONS = ("ON", "INSIDE", "BETWEEN", "CLOSE", "FACING", "HOLDS_RH", "HOLDS_LH", "SITTING")
VH_STATES = ("CLOSED", "OPEN", "ON", "OFF", "SITTING", "DIRTY", "CLEAN", "LYING",
             "PLUGGED_IN", "PLUGGED_OUT")
VH_PROPERTIES = PROPERTIES
CHARACTER_CLASS = "character"
CHARACTER_CATEGORY = "Characters"
ROOM_CATEGORY = "Rooms"

_REL_NAME = {INSIDE: "INSIDE", ON: "ON"}
_PROPERTY_NAMES = [(name, PROP[name]) for name in PROPERTIES]
_STATE_NAMES = [(name, STATE[name]) for name in STATES]
_RELATIONS = frozenset(VH_RELATIONS)


# ---------------------------------------------------------------- export
def to_virtualhome_graph(world: World) -> dict:
    """The world and its character as a VirtualHome JSON graph (a new dict)."""
    nodes_out: list[dict] = []
    ids = [node.id for node in world.nodes]
    char_id = world.char_id
    if char_id in world.by_id:
        raise ValueError(f"the character id {char_id} is also the id of object "
                         f"{world.names[world.by_id[char_id]]}; ids must be unique")
    for i, node in enumerate(world.nodes):
        props, st = world.props[i], world.state[i]
        nodes_out.append({
            "id": node.id,
            "class_name": node.class_name,
            "category": node.category,
            "properties": [name for name, bit in _PROPERTY_NAMES if props & bit],
            "states": [name for name, bit in _STATE_NAMES if st & bit],
        })
    c = world.char
    char_node: dict[str, Any] = {
        "id": char_id,
        "class_name": CHARACTER_CLASS,
        "category": CHARACTER_CATEGORY,
        "properties": ["PERSON"],
        "states": {SITTING: ["SITTING"], LYING: ["LYING"]}.get(c.posture, []),
    }
    if 0 <= c.near < world.n:
        char_node["near"] = ids[c.near]
    nodes_out.append(char_node)
    nodes_out.sort(key=lambda n: n["id"])

    edges: set[tuple[int, str, int]] = set()
    for i in range(world.n):
        if world.is_room[i]:
            continue
        p = world.parent[i]
        if p >= 0:
            edges.add((ids[i], _REL_NAME.get(world.rel[i], "INSIDE"), ids[p]))
        room = world.room_of(i)
        if room != p:
            edges.add((ids[i], "INSIDE", ids[room]))
        if world.is_close(i):
            edges.add((char_id, "CLOSE", ids[i]))
            edges.add((ids[i], "CLOSE", char_id))
    edges.add((char_id, "INSIDE", ids[c.room]))
    if c.right >= 0:
        edges.add((char_id, "HOLDS_RH", ids[c.right]))
    if c.left >= 0:
        edges.add((char_id, "HOLDS_LH", ids[c.left]))
    if c.facing >= 0:
        edges.add((char_id, "FACING", ids[c.facing]))
    if c.posture != STANDING and c.seat >= 0:
        edges.add((char_id, "ON", ids[c.seat]))
    return {
        "nodes": nodes_out,
        "edges": [{"from_id": a, "relation_type": r, "to_id": b} for a, r, b in sorted(edges)],
    }


# ---------------------------------------------------------------- import
def load_graph_dict(graph: dict | str | bytes | os.PathLike) -> dict:
    """The graph as a dict: a dict as is, a JSON string/bytes, or a path to a .json file."""
    if isinstance(graph, dict):
        return graph
    if isinstance(graph, (bytes, bytearray)):
        graph = graph.decode("utf-8", "replace")
    if isinstance(graph, str) and graph.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(graph)
        except json.JSONDecodeError as exc:
            raise ValueError(f"VirtualHome graph: the string is not valid JSON ({exc})") from None
    if isinstance(graph, (str, os.PathLike)):
        path = Path(graph)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"VirtualHome graph: no such file {str(path)!r} "
                             f"(pass a graph dict, a JSON string or a path to a .json file)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"VirtualHome graph: cannot read {str(path)!r}: {exc}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"VirtualHome graph: {str(path)!r} is not valid JSON ({exc})") from None
    raise ValueError(f"VirtualHome graph: expected a dict with 'nodes' and 'edges', a JSON "
                     f"string or a path to a .json file, got {type(graph).__name__}")


def _int_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"VirtualHome graph: {what} must be an integer, got {value!r}")
    return value


def _name_list(node: dict, key: str, where: str) -> list[str] | None:
    if key not in node or node[key] is None:
        return None
    values = node[key]
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"VirtualHome graph: {where} '{key}' must be a list of names, "
                         f"got {type(values).__name__}")
    out = []
    for v in values:
        if not isinstance(v, str):
            raise ValueError(f"VirtualHome graph: {where} '{key}' holds {v!r}, not a name")
        out.append(v.strip().upper())
    return out


def _parse_nodes(raw_nodes: Any) -> list[dict]:
    if not isinstance(raw_nodes, list):
        raise ValueError(f"VirtualHome graph: 'nodes' must be a list, got {type(raw_nodes).__name__}")
    parsed: list[dict] = []
    seen: set[int] = set()
    for k, node in enumerate(raw_nodes):
        if not isinstance(node, dict):
            raise ValueError(f"VirtualHome graph: node #{k} must be a dict, got {type(node).__name__}")
        if "id" not in node:
            raise ValueError(f"VirtualHome graph: node #{k} has no 'id'")
        nid = _int_id(node["id"], f"node #{k} 'id'")
        if nid in seen:
            raise ValueError(f"VirtualHome graph: node id {nid} appears more than once")
        seen.add(nid)
        where = f"node {nid}"
        cls = node.get("class_name")
        if not isinstance(cls, str) or not cls.strip():
            raise ValueError(f"VirtualHome graph: {where} needs a non-empty string 'class_name', "
                             f"got {cls!r}")
        cls = cls.strip().lower()
        spec = CLASSES.get(cls)
        category = node.get("category")
        if category is None:
            category = spec.category if spec else "Unknown"
        elif not isinstance(category, str):
            raise ValueError(f"VirtualHome graph: {where} 'category' must be a string, got {category!r}")
        props = _name_list(node, "properties", where)
        states = _name_list(node, "states", where)
        if props is None:
            prop_bits = spec.props if spec else 0
        else:
            prop_bits = 0
            for name in props:
                prop_bits |= PROP.get(name, 0)
        state_bits = 0
        for name in states or ():
            state_bits |= STATE.get(name, 0)
        parsed.append({"id": nid, "class_name": cls, "category": category, "props": prop_bits,
                       "state": state_bits, "states": set(states or ()), "near": node.get("near")})
    return parsed


def _parse_edges(raw_edges: Any, known: set[int]) -> set[tuple[int, str, int]]:
    if not isinstance(raw_edges, list):
        raise ValueError(f"VirtualHome graph: 'edges' must be a list, got {type(raw_edges).__name__}")
    edges: set[tuple[int, str, int]] = set()
    for k, edge in enumerate(raw_edges):
        if not isinstance(edge, dict):
            raise ValueError(f"VirtualHome graph: edge #{k} must be a dict, got {type(edge).__name__}")
        for key in ("from_id", "relation_type", "to_id"):
            if key not in edge:
                raise ValueError(f"VirtualHome graph: edge #{k} has no '{key}' (edges need "
                                 f"from_id, relation_type, to_id)")
        a = _int_id(edge["from_id"], f"edge #{k} 'from_id'")
        b = _int_id(edge["to_id"], f"edge #{k} 'to_id'")
        rel = edge["relation_type"]
        if not isinstance(rel, str):
            raise ValueError(f"VirtualHome graph: edge #{k} 'relation_type' must be a string, got {rel!r}")
        rel = rel.strip().upper()
        if rel not in _RELATIONS:
            raise ValueError(f"VirtualHome graph: edge #{k} has unknown relation {edge['relation_type']!r}; "
                             f"VirtualHome relations are {', '.join(VH_RELATIONS)}")
        for end, nid in (("from_id", a), ("to_id", b)):
            if nid not in known:
                raise ValueError(f"VirtualHome graph: edge #{k} ({a} {rel} {b}) has {end} {nid}, "
                                 f"which is not the id of any node")
        if a != b:
            edges.add((a, rel, b))
    return edges


def from_virtualhome_graph(graph: dict | str | os.PathLike) -> World:
    """Build a ``World`` from a VirtualHome graph (dict, JSON string or path to .json)."""
    data = load_graph_dict(graph)
    if not isinstance(data, dict):
        raise ValueError(f"VirtualHome graph: expected a JSON object with 'nodes' and 'edges', "
                         f"got {type(data).__name__}")
    for key in ("nodes", "edges"):
        if key not in data:
            raise ValueError(f"VirtualHome graph: missing '{key}' (a graph is "
                             f"{{'nodes': [...], 'edges': [...]}})")
    parsed = _parse_nodes(data["nodes"])
    edges = _parse_edges(data["edges"], {p["id"] for p in parsed})

    chars = sorted(p["id"] for p in parsed if p["class_name"] == CHARACTER_CLASS)
    char_ids = set(chars)
    objs = sorted((p for p in parsed if p["id"] not in char_ids), key=lambda p: p["id"])
    index = {p["id"]: i for i, p in enumerate(objs)}
    n = len(objs)
    is_room = [p["category"] == ROOM_CATEGORY for p in objs]
    rooms = [i for i in range(n) if is_room[i]]
    if not rooms:
        raise ValueError("VirtualHome graph: no rooms (nodes with category 'Rooms'); "
                         "a scene needs at least one room")
    first_room = rooms[0]
    char_id = chars[0] if chars else (1 if 1 not in index else max(index) + 1)
    char_node = next((p for p in parsed if p["id"] == char_id), None)

    # Relations between objects, and the main character's relations.
    supports: list[list[tuple[int, int]]] = [[] for _ in range(n)]   # (target, INSIDE/ON)
    from_char: dict[str, set[int]] = {}
    close_to_char: set[int] = set()
    for a, rel, b in edges:
        ia, ib = index.get(a), index.get(b)
        if a == char_id and ib is not None:
            from_char.setdefault(rel, set()).add(ib)
        elif b == char_id and ia is not None and rel == "CLOSE":
            close_to_char.add(ia)
        elif ia is not None and ib is not None and rel in ("INSIDE", "ON") and not is_room[ia]:
            supports[ia].append((ib, INSIDE if rel == "INSIDE" else ON))

    # Character: room and hands first (held objects have no parent).
    def first(rel: str, ok=lambda i: True) -> int:
        return min((i for i in from_char.get(rel, ()) if ok(i)), default=-1)

    room = first("INSIDE", lambda i: is_room[i])
    right = first("HOLDS_RH", lambda i: not is_room[i])
    left = first("HOLDS_LH", lambda i: not is_room[i] and i != right)
    held = {h for h in (right, left) if h >= 0}

    parent, rel_of = _resolve_parents(n, is_room, supports, held, first_room)
    if room < 0:  # inside something that is not a room: that thing's room
        inner = first("INSIDE")
        room = _room_of(inner, parent, is_room) if inner >= 0 else -1
        if room < 0:
            room = first_room

    nodes = [Node(id=p["id"], class_name=p["class_name"], category=p["category"], props=p["props"])
             for p in objs]
    state = [p["state"] for p in objs]
    char_states = char_node["states"] if char_node else set()
    posture = LYING if "LYING" in char_states else SITTING if "SITTING" in char_states else STANDING
    world = World(nodes, parent, rel_of, state, Character(room=room, right=right, left=left),
                  char_id=char_id)

    def free(i: int) -> bool:  # a non-room object that nobody carries
        return not is_room[i] and world.holder(i) < 0

    seat = -1
    if posture != STANDING:
        seat = first("ON", free)
    elif from_char.get("SITTING"):  # VirtualHome's char SITTING x relation
        seat = first("SITTING", free)
        posture = SITTING if seat >= 0 else STANDING
    world.char.posture, world.char.seat = posture, seat
    world.char.facing = first("FACING", lambda i: not is_room[i])
    world.char.near = _pick_near(world, from_char.get("CLOSE", set()) | close_to_char,
                                 char_node["near"] if char_node else None, index)
    return world


def _resolve_parents(n: int, is_room: list[bool], supports: list[list[tuple[int, int]]],
                     held: set[int], first_room: int) -> tuple[list[int], list[int]]:
    """Direct parent of each object: its most specific ON/INSIDE target."""
    # depth[x]: length of the longest chain of non-room supports below x (cycles cut).
    depth = [-1] * n
    for start in range(n):
        if depth[start] >= 0 or is_room[start]:
            continue
        on_path = {start}
        stack = [(start, iter(supports[start]))]
        while stack:
            node, it = stack[-1]
            advanced = False
            for target, _ in it:
                if is_room[target] or depth[target] >= 0 or target in on_path:
                    continue
                on_path.add(target)
                stack.append((target, iter(supports[target])))
                advanced = True
                break
            if advanced:
                continue
            stack.pop()
            on_path.discard(node)
            depth[node] = 1 + max((depth[t] for t, _ in supports[node]
                                   if not is_room[t] and depth[t] >= 0), default=-1)

    parent = [-1] * n
    rel = [NONE] * n
    room_choice = [first_room] * n
    room_rel = [INSIDE] * n
    for i in range(n):
        if is_room[i]:
            continue
        if i in held:
            parent[i], rel[i] = -1, HELD
            continue
        best = None
        best_room = None
        for target, r in supports[i]:
            if is_room[target]:
                key = (target, r)
                if best_room is None or key < best_room:
                    best_room = key
            else:
                key = (-depth[target], target, r)
                if best is None or key < best:
                    best = key
        if best_room is not None:
            room_choice[i], room_rel[i] = best_room
        if best is not None:
            parent[i], rel[i] = best[1], best[2]
        else:
            parent[i], rel[i] = room_choice[i], room_rel[i]
    # Contradictory input (a ON b, b ON a) could leave a cycle: send one member to its room.
    mark = [0] * n  # 0 new, 1 on the current path, 2 done
    for start in range(n):
        path = []
        i = start
        while i >= 0 and not is_room[i] and mark[i] == 0:
            mark[i] = 1
            path.append(i)
            i = parent[i]
        if i >= 0 and mark[i] == 1:  # came back onto the current path: a cycle through i
            parent[i], rel[i] = room_choice[i], room_rel[i]
        for j in path:
            mark[j] = 2
    return parent, rel


def _room_of(i: int, parent: list[int], is_room: list[bool]) -> int:
    while i >= 0 and not is_room[i]:
        i = parent[i]
    return i


def _pick_near(world: World, close: set[int], hint: Any, index: dict[int, int]) -> int:
    """The object the character walked to, from the CLOSE edges.

    The exporter's ``"near"`` hint wins when it names a CLOSE object; otherwise
    the smallest-id non-room CLOSE target that is not carried (-1 if none).
    """
    close = {i for i in close if not world.is_room[i]}
    if isinstance(hint, int) and not isinstance(hint, bool) and index.get(hint) in close:
        return index[hint]
    return min((i for i in close if world.holder(i) < 0), default=-1)
