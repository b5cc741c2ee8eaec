"""VirtualHome JSON graphs: export, import, round trips, the example apartment."""
from __future__ import annotations

import copy
import json
import random

import pytest

from omnigym.environments.household import actions as A
from omnigym.environments.household.catalog import CLASSES, PROPERTIES
from omnigym.environments.household.env import HouseholdEnv
from omnigym.environments.household.generator import generate
from omnigym.environments.household.planner import plan, plan_lines
from omnigym.environments.household.vh_graph import (
    VH_RELATIONS, VH_STATES, from_virtualhome_graph, to_virtualhome_graph,
)
from omnigym.environments.household.world import HELD, INSIDE, LYING, NONE, ON, SITTING, STANDING
from omnigym.sim_assets.household import EXAMPLE_APARTMENT


def _example() -> dict:
    return json.loads(EXAMPLE_APARTMENT.read_text())


def _assert_round_trip(world) -> dict:
    graph = to_virtualhome_graph(world)
    back = from_virtualhome_graph(graph)
    assert back.get_state() == world.get_state()
    assert back.class_names == world.class_names
    assert back.props == world.props
    assert [n.id for n in back.nodes] == [n.id for n in world.nodes]
    assert [n.category for n in back.nodes] == [n.category for n in world.nodes]
    assert back.char_id == world.char_id
    assert to_virtualhome_graph(back) == graph
    return graph


def _edges(graph) -> set[tuple[int, str, int]]:
    return {(e["from_id"], e["relation_type"], e["to_id"]) for e in graph["edges"]}


# ----------------------------------------------------------------- round trips
@pytest.mark.parametrize("seed", range(20))
def test_round_trip_generated(seed):
    world = generate(seed)
    graph = _assert_round_trip(world)
    # JSON text and a file path load the same world.
    assert from_virtualhome_graph(json.dumps(graph)).get_state() == world.get_state()


def test_round_trip_held_sitting_facing():
    world = generate(3, required={"mug", "plate", "sofa", "tv"})
    for goal in ((("HOLDS", "mug", ""),), (("HOLDS", "plate", ""),), (("SITTING", "sofa", ""),)):
        for action in plan(world, goal):
            assert A.execute(world, action) is None
    world.char.facing = world.by_class["tv"][0]
    c = world.char
    assert c.right >= 0 and c.left >= 0 and c.posture == SITTING and c.seat >= 0
    graph = _assert_round_trip(world)
    edges = _edges(graph)
    ids = [n.id for n in world.nodes]
    cid = world.char_id
    assert (cid, "HOLDS_RH", ids[c.right]) in edges and (cid, "HOLDS_LH", ids[c.left]) in edges
    assert (cid, "ON", ids[c.seat]) in edges and (cid, "FACING", ids[c.facing]) in edges
    assert (cid, "INSIDE", ids[c.room]) in edges
    for h in (c.right, c.left):  # held objects are in the character's room, and close
        assert world.rel[h] == HELD
        assert (ids[h], "INSIDE", ids[c.room]) in edges
        assert (cid, "CLOSE", ids[h]) in edges and (ids[h], "CLOSE", cid) in edges
    char_node = next(n for n in graph["nodes"] if n["id"] == cid)
    assert char_node["class_name"] == "character" and char_node["category"] == "Characters"
    assert char_node["states"] == ["SITTING"]
    # Lying, then standing up again.
    world.char.posture = LYING
    assert "LYING" in next(n for n in _assert_round_trip(world)["nodes"] if n["id"] == cid)["states"]
    assert A.execute(world, ("standup", -1, -1)) is None
    graph = _assert_round_trip(world)
    assert not any(r == "ON" and a == cid for a, r, _ in _edges(graph))


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_random_play(seed):
    """After every step of a random walk through admissible actions."""
    world = generate(100 + seed)
    rng = random.Random(seed)
    for _ in range(60):
        A.apply(world, *rng.choice(A.admissible(world)))
        _assert_round_trip(world)


def test_env_save_scene_and_reload(tmp_path):
    env = HouseholdEnv()
    env.reset(seed=5, options={"task": "put_in:mug:microwave"})
    for action in plan_lines(env.world, env.task.goal)[:2]:
        _, _, _, _, info = env.step(action)
    path = tmp_path / "scene.json"
    graph = env.save_scene(path)
    assert json.loads(path.read_text()) == graph
    env2 = HouseholdEnv()
    _, info2 = env2.reset(seed=0, options={"scene": path, "task": "put_in:mug:microwave"})
    assert env2.world.get_state() == env.world.get_state()
    assert info2["state_key"] == info["state_key"]


# ------------------------------------------------------------------ export format
def test_export_uses_virtualhome_vocabulary():
    world = generate(7)
    for action in plan(world, (("HOLDS", "mug", ""),)):
        A.execute(world, action)
    graph = to_virtualhome_graph(world)
    assert set(graph) == {"nodes", "edges"}
    ids = [n["id"] for n in graph["nodes"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for node in graph["nodes"]:
        assert {"id", "class_name", "category", "properties", "states"} <= set(node)
        assert set(node["properties"]) <= set(PROPERTIES)
        assert set(node["states"]) <= set(VH_STATES)
    keys = [(e["from_id"], e["relation_type"], e["to_id"]) for e in graph["edges"]]
    assert keys == sorted(set(keys))
    assert {e["relation_type"] for e in graph["edges"]} <= set(VH_RELATIONS)
    for e in graph["edges"]:
        assert set(e) == {"from_id", "relation_type", "to_id"}
        assert e["from_id"] in ids and e["to_id"] in ids
    edges = set(keys)
    # Both the direct parent and the room, as VirtualHome scenes have.
    for i in range(world.n):
        p = world.parent[i]
        if p >= 0 and not world.is_room[p]:
            node_id = world.nodes[i].id
            assert (node_id, "ON" if world.rel[i] == ON else "INSIDE", world.nodes[p].id) in edges
            assert (node_id, "INSIDE", world.nodes[world.room_of(i)].id) in edges
    # CLOSE is symmetric and matches World.is_close.
    cid = world.char_id
    close = {b for a, r, b in edges if a == cid and r == "CLOSE"}
    assert close == {world.nodes[i].id for i in range(world.n) if world.is_close(i)}
    assert close == {a for a, r, b in edges if b == cid and r == "CLOSE"}
    assert json.loads(json.dumps(graph)) == graph


# ---------------------------------------------------------------- example scene
def test_example_apartment_structure():
    world = from_virtualhome_graph(EXAMPLE_APARTMENT)
    assert sorted(world.class_names[r] for r in world.rooms) == ["bathroom", "bedroom", "kitchen", "livingroom"]
    assert world.n - len(world.rooms) >= 30
    for cls in ("fridge", "microwave", "kitchentable", "mug", "plate", "apple", "sofa", "tv",
                "coffeetable", "book", "remotecontrol", "bed", "nightstand", "closet", "pillow",
                "toilet", "sink", "towel", "toothbrush"):
        assert cls in world.by_class, cls

    def where(cls):
        i = world.by_class[cls][0]
        return world.class_names[world.parent[i]], world.rel[i]

    assert where("mug") == ("kitchentable", ON)
    assert where("apple") == ("fridge", INSIDE)
    assert where("fridge") == ("kitchen", INSIDE)
    assert where("cupcake") == ("plate", ON)  # deepest of plate / kitchencounter / kitchen
    assert where("door") == ("kitchen", INSIDE)  # BETWEEN edges carry no state
    c = world.char
    assert world.class_names[c.room] == "kitchen" and c.posture == STANDING
    assert world.class_names[c.near] == "kitchentable"
    assert world.is_close(world.by_class["mug"][0])
    assert world.has_state(world.by_class["microwave"][0], "CLOSED")
    assert world.has_state(world.by_class["ceilinglamp"][0], "ON")  # a class not in the catalog
    # Path, str path, JSON text and dict all load the same world.
    for source in (str(EXAMPLE_APARTMENT), EXAMPLE_APARTMENT.read_text(), _example()):
        assert from_virtualhome_graph(source).get_state() == world.get_state()
    _assert_round_trip(world)


@pytest.mark.parametrize("as_dict", [False, True])
def test_example_apartment_task(as_dict):
    env = HouseholdEnv()
    scene = _example() if as_dict else EXAMPLE_APARTMENT
    obs, info = env.reset(seed=0, options={"scene": scene, "task": "put_in:mug:microwave"})
    assert "<mug> (18)" in obs and not info["success"]
    actions = plan_lines(env.world, env.task.goal)
    assert actions
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert not info["invalid_action"], info["feedback"]
    assert terminated and info["success"] and reward == 1.0
    mug = env.world.by_class["mug"][0]
    assert env.world.class_names[env.world.parent[mug]] == "microwave"
    graph = env.save_scene()
    assert (18, "INSIDE", 12) in _edges(graph)


def test_unknown_classes_load_and_can_be_walked_to():
    graph = _example()
    graph["nodes"].append({"id": 999, "class_name": "Hoverboard", "category": "Props",
                           "properties": ["GRABBABLE", "MOVABLE", "NOT_A_PROPERTY"],
                           "states": ["CLEAN", "GLOWING"]})
    graph["edges"] += [{"from_id": 999, "relation_type": "on", "to_id": 13},
                       {"from_id": 999, "relation_type": "Inside", "to_id": 10},
                       {"from_id": 999, "relation_type": "ON", "to_id": 13}]  # duplicate
    env = HouseholdEnv()
    obs, info = env.reset(seed=0, options={"scene": graph, "task": "put_in:mug:microwave"})
    assert "<hoverboard> (999)" in obs
    assert "[walk] <hoverboard> (999)" in info["admissible_actions"]
    obs, _, _, _, info = env.step("[walk] <hoverboard> (999)")
    assert not info["invalid_action"], info["feedback"]
    assert "next to the <hoverboard> (999)" in obs
    obs, _, _, _, info = env.step("[grab] <hoverboard> (999)")
    assert not info["invalid_action"], info["feedback"]
    world = env.world
    i = world.by_id[999]
    assert world.is_held(i)
    assert world.has_state(i, "CLEAN")
    # The vector encoding maps the unknown class to the reserved slot without failing.
    venv = HouseholdEnv(mode="vector")
    vobs, _ = venv.reset(seed=0, options={"scene": graph, "task": "put_in:mug:microwave"})
    assert vobs.shape == venv.observation_space.shape


# ---------------------------------------------------------------- import rules
def _mini(**extra) -> dict:
    """A two-room scene: kitchen 10, livingroom 20; table 11, mug 12, plate 13, sofa 21, tv 22."""
    nodes = [
        {"id": 10, "class_name": "kitchen", "category": "Rooms", "properties": [], "states": []},
        {"id": 20, "class_name": "livingroom", "category": "Rooms", "properties": [], "states": []},
        {"id": 11, "class_name": "kitchentable", "category": "Furniture", "properties": ["SURFACES"], "states": []},
        {"id": 12, "class_name": "mug", "category": "Kitchen", "properties": ["GRABBABLE"], "states": ["DIRTY"]},
        {"id": 13, "class_name": "plate", "category": "Kitchen", "properties": ["GRABBABLE", "SURFACES"], "states": []},
        {"id": 21, "class_name": "sofa", "category": "Furniture", "properties": ["SITTABLE", "LIEABLE"], "states": []},
        {"id": 22, "class_name": "tv", "category": "Electronics", "properties": ["HAS_SWITCH"], "states": ["OFF"]},
    ]
    edges = [(11, "INSIDE", 10), (12, "ON", 11), (12, "INSIDE", 10), (13, "ON", 11), (13, "INSIDE", 10),
             (21, "INSIDE", 20), (22, "INSIDE", 20)]
    graph = {"nodes": nodes, "edges": [{"from_id": a, "relation_type": r, "to_id": b} for a, r, b in edges]}
    for key, value in extra.items():
        graph[key] += value
    return graph


def _e(a, r, b):
    return {"from_id": a, "relation_type": r, "to_id": b}


def test_character_import():
    graph = _mini(
        nodes=[{"id": 1, "class_name": "character", "category": "Characters", "properties": [],
                "states": ["SITTING"]},
               {"id": 5, "class_name": "character", "category": "Characters", "properties": [], "states": []}],
        edges=[_e(1, "INSIDE", 20), _e(1, "ON", 21), _e(1, "HOLDS_LH", 12), _e(1, "facing", 22),
               _e(1, "CLOSE", 12), _e(1, "CLOSE", 21), _e(21, "CLOSE", 1), _e(1, "CLOSE", 22),
               _e(5, "INSIDE", 10), _e(5, "HOLDS_RH", 13), _e(5, "CLOSE", 11)])
    world = from_virtualhome_graph(graph)
    c = world.char
    ix = world.by_id
    assert world.char_id == 1 and 5 not in ix  # other characters are ignored
    assert c.room == ix[20] and c.left == ix[12] and c.right == -1
    assert c.posture == SITTING and c.seat == ix[21] and c.facing == ix[22]
    assert c.near == ix[21]  # smallest-id CLOSE target that is not held
    assert world.parent[ix[12]] == -1 and world.rel[ix[12]] == HELD
    assert world.parent[ix[13]] == ix[11] and world.rel[ix[13]] == ON
    assert world.rel[ix[10]] == NONE and world.parent[ix[10]] == -1
    assert world.has_state(ix[12], "DIRTY") and world.has_state(ix[22], "OFF")
    # Standing with a stale ON edge (VirtualHome keeps it after standup): no seat.
    graph["nodes"][-2]["states"] = []
    world = from_virtualhome_graph(graph)
    assert world.char.posture == STANDING and world.char.seat == -1


def test_import_fallbacks():
    graph = _mini(nodes=[{"id": 30, "class_name": "apple", "category": "Food", "states": []},
                         {"id": 31, "class_name": "book", "category": "Props", "properties": [], "states": []},
                         {"id": 32, "class_name": "box", "category": "Props", "properties": [], "states": []},
                         {"id": 33, "class_name": "box", "category": "Props", "properties": [], "states": []}],
                  edges=[_e(32, "ON", 33), _e(33, "INSIDE", 32), _e(33, "INSIDE", 20)])
    world = from_virtualhome_graph(graph)  # no character: one stands in the first room
    ix = world.by_id
    assert world.char.room == ix[10] and world.char.near == -1 and world.char_id == 1
    assert world.props[ix[30]] == CLASSES["apple"].props  # no 'properties' key: catalog defaults
    assert world.props[ix[31]] == 0  # an explicit empty list is kept
    assert world.parent[ix[31]] == ix[10] and world.rel[ix[31]] == INSIDE  # no room at all: first room
    # A contradictory cycle (32 ON 33, 33 INSIDE 32) is cut: both end up in a room.
    assert world.room_of(ix[32]) in world.rooms and world.room_of(ix[33]) in world.rooms
    _assert_round_trip(world)


_MALFORMED = [
    ([], "nodes"),
    ({"edges": []}, "missing 'nodes'"),
    ({"nodes": []}, "missing 'edges'"),
    ({"nodes": {"id": 1}, "edges": []}, "'nodes' must be a list"),
    ({"nodes": [], "edges": None}, "'edges' must be a list"),
    ({"nodes": ["kitchen"], "edges": []}, "node #0 must be a dict"),
    ({"nodes": [{"class_name": "kitchen", "category": "Rooms"}], "edges": []}, "node #0 has no 'id'"),
    ({"nodes": [{"id": "10", "class_name": "kitchen", "category": "Rooms"}], "edges": []}, "must be an integer"),
    ({"nodes": [{"id": 10, "category": "Rooms"}], "edges": []}, "class_name"),
    ({"nodes": [{"id": 10, "class_name": "kitchen", "category": "Rooms"},
                {"id": 10, "class_name": "bedroom", "category": "Rooms"}], "edges": []}, "more than once"),
    ({"nodes": [{"id": 10, "class_name": "kitchen", "category": "Rooms", "states": "OPEN"}], "edges": []},
     "'states' must be a list"),
    ({"nodes": [{"id": 10, "class_name": "kitchen", "category": "Rooms"}],
      "edges": [{"from_id": 10, "to_id": 10}]}, "no 'relation_type'"),
    ({"nodes": [{"id": 10, "class_name": "kitchen", "category": "Rooms"}],
      "edges": [_e(10, "INSIDE", 77)]}, "77, which is not the id of any node"),
    ({"nodes": [{"id": 10, "class_name": "kitchen", "category": "Rooms"}],
      "edges": [_e(10, "NEXT_TO", 10)]}, "unknown relation 'NEXT_TO'"),
    ({"nodes": [{"id": 10, "class_name": "kitchen", "category": "Rooms"}], "edges": ["10 INSIDE 10"]},
     "edge #0 must be a dict"),
    ({"nodes": [{"id": 11, "class_name": "fridge", "category": "Appliances", "properties": [], "states": []}],
      "edges": []}, "no rooms"),
    ('{"nodes": [', "not valid JSON"),
    ("/nonexistent/scene.json", "no such file"),
    (42, "expected a dict"),
]


@pytest.mark.parametrize("graph,message", _MALFORMED)
def test_malformed_graphs_raise_value_error(graph, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        from_virtualhome_graph(graph)


def test_env_reports_bad_scene():
    env = HouseholdEnv()
    with pytest.raises(ValueError, match="no rooms"):
        env.reset(seed=0, options={"scene": {"nodes": [], "edges": []}, "task": "put_in:mug:microwave"})
    bad = copy.deepcopy(_example())
    bad["nodes"] = [n for n in bad["nodes"] if n["class_name"] != "microwave"]
    bad["edges"] = [e for e in bad["edges"] if 12 not in (e["from_id"], e["to_id"])]
    with pytest.raises(ValueError, match="microwave"):
        env.reset(seed=0, options={"scene": bad, "task": "put_in:mug:microwave"})
