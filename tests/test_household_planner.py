"""The exact planner: it solves every task, its pruning never costs optimality,
it leaves the world as it found it, and impossible goals fail fast."""
from __future__ import annotations

import random
import time
from collections import deque

import pytest

import omnigym
from omnigym import info_keys as K
from omnigym.environments.household import actions as A
from omnigym.environments.household import generator, planner
from omnigym.environments.household.catalog import ITEMS
from omnigym.environments.household.env import HouseholdEnv
from omnigym.environments.household.goals import goal_classes, satisfied
from omnigym.tasks.household import load_household_suite

SUITE = load_household_suite()
SEEDS_PER_PANEL = 40


def _run_plan(env: HouseholdEnv, plan: list[str]) -> dict:
    info = None
    for t, action in enumerate(plan):
        _, reward, terminated, _, info = env.step(action)
        assert info[K.INVALID_ACTION] is False, f"step {t} {action!r}: {info['feedback']}"
        assert terminated is (t == len(plan) - 1), f"terminated early/late at step {t}"
    return info


@pytest.mark.parametrize("panel", sorted(SUITE.panels))
def test_planner_solves_panel_seeds(panel):
    p = SUITE.panel(panel)
    env = HouseholdEnv(split=p.split)
    lengths = []
    for seed in p.seeds[:SEEDS_PER_PANEL]:
        _, info = env.reset(seed=seed)
        assert info[K.TASK_ID] in SUITE.splits[p.split]
        key = info[K.STATE_KEY]
        plan = planner.plan_lines(env.world, env.task.goal)
        assert env.state_key() == key  # planning did not move the world
        assert plan, f"seed {seed}: empty plan for an unsolved task"
        info = _run_plan(env, plan)
        assert info[K.SUCCESS] is True, f"{panel} seed {seed} ({info[K.TASK_ID]}) not solved"
        lengths.append(len(plan))
    assert max(lengths) < SUITE.max_steps  # every panel episode fits in the time limit


def test_planner_solves_every_task():
    env = HouseholdEnv(split="all")
    for k, task_id in enumerate(SUITE.splits["all"]):
        _, info = env.reset(seed=1000 + k, options={"task": task_id})
        assert info[K.TASK_ID] == task_id and info[K.SUCCESS] is False
        plan = planner.plan_lines(env.world, env.task.goal)
        info = _run_plan(env, plan)
        assert info[K.SUCCESS] is True, task_id
        assert len(plan) < SUITE.max_steps, f"{task_id}: plan of {len(plan)} steps"


def test_planner_expert_solves_through_make():
    for mode in ("text", "discrete"):
        env = omnigym.make("household/Household-v0", mode=mode)
        policy = env.unwrapped.make_expert()
        for seed in range(5):
            obs, info = env.reset(seed=seed)
            policy.reset(env)
            for _ in range(env.spec.max_episode_steps):
                obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
                assert not info[K.INVALID_ACTION]
                if terminated or truncated:
                    break
            assert info[K.SUCCESS], (mode, seed)


# ------------------------------------------------------------------ optimality
def _world(seed: int, goal) -> object:
    required = goal_classes(goal) - {""}
    world = generator.generate(seed, required=required, n_objects=30)
    generator.unsatisfy(world, goal, seed)
    assert not any(satisfied(world, goal))
    return world


def _independent_bfs_length(world, goal, limit: int = 400_000) -> int:
    """Plain BFS over every admissible action, goal tested when a state is popped."""
    start = world.get_state()
    seen = {start}
    queue = deque([(start, 0)])
    try:
        while queue:
            state, depth = queue.popleft()
            world.set_state(state)
            if all(satisfied(world, goal)):
                return depth
            for move in A.admissible(world):
                world.set_state(state)
                A.apply(world, *move)
                nxt = world.get_state()
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, depth + 1))
            assert len(seen) < limit, "independent BFS too large for a test"
        raise AssertionError("unreachable")
    finally:
        world.set_state(start)


def _check_plan(world, goal, plan):
    start = world.get_state()
    try:
        for t, move in enumerate(plan):
            assert A.check(world, *move) is None, f"step {t} {move} invalid: {A.check(world, *move)}"
            assert not all(satisfied(world, goal)), "goal already held before the plan ended"
            A.apply(world, *move)
        assert all(satisfied(world, goal))
    finally:
        world.set_state(start)


ONE_PREDICATE = [
    (1, (("HOLDS", "mug", ""),)),
    (2, (("STATE", "tv", "ON"),)),
    (3, (("INSIDE", "apple", "fridge"),)),
    (4, (("SITTING", "sofa", ""),)),
    (5, (("IN_ROOM", "book", "kitchen"),)),
    (6, (("ON", "plate", "kitchentable"),)),
    (7, (("STATE", "mug", "CLEAN"),)),
    (8, (("STATE", "microwave", "OPEN"),)),
    (9, (("LYING", "bed", ""),)),
    (10, (("INSIDE", "cupcake", "microwave"),)),
]
TWO_PREDICATES = [
    (11, (("HOLDS", "mug", ""), ("STATE", "tv", "ON"))),
    (12, (("INSIDE", "cheese", "fridge"), ("STATE", "fridge", "CLOSED"))),
    (13, (("STATE", "computer", "ON"), ("SITTING", "chair", ""))),
]


@pytest.mark.parametrize("seed, goal", ONE_PREDICATE + TWO_PREDICATES,
                         ids=[f"{s}-{'+'.join(p[0] for p in g)}" for s, g in ONE_PREDICATE + TWO_PREDICATES])
def test_pruned_plans_are_optimal(seed, goal):
    world = _world(seed, goal)
    before = world.get_state()
    pruned = planner.plan(world, goal, prune=True)
    assert world.get_state() == before
    full = planner.plan(world, goal, prune=False, max_states=400_000)
    assert world.get_state() == before
    _check_plan(world, goal, pruned)
    _check_plan(world, goal, full)
    assert len(pruned) == len(full), f"pruning lost optimality: {pruned} vs {full}"
    assert len(pruned) >= 1


@pytest.mark.parametrize("seed, goal", [ONE_PREDICATE[0], ONE_PREDICATE[1], ONE_PREDICATE[3]])
def test_unpruned_planner_agrees_with_an_independent_bfs(seed, goal):
    world = _world(seed, goal)
    full = planner.plan(world, goal, prune=False)
    assert len(full) == _independent_bfs_length(world, goal)


def test_plans_from_mid_episode_states_are_optimal():
    # from states the agent wandered into (holding things, sitting, doors open)
    rng = random.Random(0)
    env = HouseholdEnv(templates=["hold", "switch_on", "clean"])
    compared = 0
    for seed in range(6):
        _, info = env.reset(seed=seed)
        for _ in range(rng.randrange(3, 9)):
            _, _, terminated, _, info = env.step(rng.choice(info[K.ADMISSIBLE_ACTIONS]))
            if terminated:
                break
        if terminated:
            continue
        goal = env.task.goal
        pruned = planner.plan(env.world, goal, prune=True)
        full = planner.plan(env.world, goal, prune=False, max_states=400_000)
        assert len(pruned) == len(full), (env.task.id, pruned, full)
        compared += 1
    assert compared >= 3


def test_pruned_plans_are_optimal_on_suite_goals_from_wandering_states():
    # Suite goals in small apartments, from states reached by a few random moves
    # (things in hand, seated, doors open): pruning never lengthens a plan.
    rng = random.Random(11)
    tasks = [SUITE.tasks[t] for t in sorted(SUITE.tasks)]
    compared = 0
    for k in range(40):
        task = rng.choice(tasks)
        world = generator.generate(k, required=goal_classes(task.goal) - {""}, n_objects=30)
        generator.unsatisfy(world, task.goal, k)
        for _ in range(rng.randrange(0, 8)):
            A.apply(world, *rng.choice(A.admissible(world)))
        if all(satisfied(world, task.goal)):
            continue
        pruned = planner.plan(world, task.goal, prune=True)
        try:
            full = planner.plan(world, task.goal, prune=False, max_states=3_000)
        except planner.NoPlanError:
            continue  # too deep for an exhaustive search within the test's budget
        _check_plan(world, task.goal, pruned)
        assert len(pruned) == len(full), (task.id, k, pruned, full)
        compared += 1
    assert compared >= 20


# -------------------------------------------------------------- side effects
def test_plan_leaves_the_world_unchanged():
    env = HouseholdEnv()
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        world_before = env.world.get_state()
        children_before = [set(c) for c in env.world.children]
        plan = planner.plan(env.world, env.task.goal)
        assert env.world.get_state() == world_before
        assert [set(c) for c in env.world.children] == children_before  # derived index restored too
        text_plan = planner.plan_lines(env.world, env.task.goal)
        assert env.world.get_state() == world_before
        assert text_plan == [A.format_action(env.world, m) for m in plan]
        obs_after, info_after = env.set_state(env.get_state())
        assert obs_after == obs and info_after[K.STATE_KEY] == info[K.STATE_KEY]


def test_already_satisfied_goal_gives_empty_plan():
    world = _world(1, (("HOLDS", "mug", ""),))
    before = world.get_state()
    assert planner.plan(world, (("IN_ROOM", "mug", world.class_names[world.room_of(world.by_class["mug"][0])]),)) == []
    fridge = world.by_class["fridge"][0] if "fridge" in world.by_class else None
    if fridge is not None:
        state = "OPEN" if world.has_state(fridge, "OPEN") else "CLOSED"
        assert planner.plan(world, (("STATE", "fridge", state),)) == []
    assert world.get_state() == before


# ---------------------------------------------------------- impossible goals
def _absent_item(world) -> str:
    absent = [c.name for c in ITEMS if c.name not in world.by_class]
    assert absent
    return absent[0]


@pytest.mark.parametrize("make_goal", [
    lambda w: (("INSIDE", _absent_item(w), "fridge"),),       # class missing from the scene
    lambda w: (("HOLDS", _absent_item(w), ""),),
    lambda w: (("STATE", "fridge", "ON"),),                     # no switch
    lambda w: (("HOLDS", "sofa", ""),),                         # not grabbable
    lambda w: (("STATE", "fridge", "DIRTY"),),                  # nothing makes things dirty
    lambda w: (("INSIDE", "mug", "kitchentable"),),             # not a container
    lambda w: (("SITTING", "fridge", ""),),                     # not sittable
], ids=["missing-class", "hold-missing", "no-switch", "grab-furniture", "dirty", "not-container", "sit-fridge"])
def test_impossible_goals_raise_no_plan_error(make_goal):
    world = generator.generate(3, required={"mug", "fridge", "sofa", "kitchentable"}, n_objects=30)
    goal = make_goal(world)
    before = world.get_state()
    t = time.perf_counter()
    with pytest.raises(planner.NoPlanError):
        planner.plan(world, goal)
    assert time.perf_counter() - t < 10, "impossible goal took too long to refute"
    assert world.get_state() == before


def test_search_limit_raises_no_plan_error_quickly():
    world = _world(12, TWO_PREDICATES[1][1])
    before = world.get_state()
    t = time.perf_counter()
    with pytest.raises(planner.NoPlanError, match="exceeded"):
        planner.plan(world, TWO_PREDICATES[1][1], prune=False, max_states=50)
    assert time.perf_counter() - t < 2
    assert world.get_state() == before


def test_no_plan_error_is_not_an_infinite_search_on_full_suite_env():
    env = HouseholdEnv()
    env.reset(seed=0, options={"task": {"goal": [["STATE", "fridge", "ON"]]}})
    with pytest.raises(planner.NoPlanError):
        planner.plan_lines(env.world, env.task.goal)
