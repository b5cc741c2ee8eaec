"""An exact planner: breadth-first search for a shortest valid action sequence.

The search runs over the real simulator (``actions.admissible``/``apply``
on snapshots), so a plan can never use a move the environment would reject.
To stay fast it only considers actions whose objects are *relevant*: the
instances of the goal's classes, the containers and surfaces that hold them
(to reach or open them), and whatever the character already carries; walking
to any room is always allowed. Shortest plans never need other objects (a
hand is freed fastest by ``drop``, which needs no destination), and the tests
check that pruned and unpruned searches give plans of the same length.
"""
from __future__ import annotations

from collections import deque

from omnigym.environments.household import actions as A
from omnigym.environments.household.goals import goal_classes, satisfied
from omnigym.environments.household.world import World


class NoPlanError(RuntimeError):
    """Raised when no plan exists within the search limits."""


def relevant_objects(world: World, goal) -> set[int]:
    keep: set[int] = set(world.held())
    if world.char.seat >= 0:
        keep.add(world.char.seat)
    for cls in goal_classes(goal):
        for i in world.by_class.get(cls, ()):
            while i >= 0 and not world.is_room[i]:
                keep.add(i)
                i = world.parent[i]
    return keep


def plan(world: World, goal, prune: bool = True, max_states: int = 200_000) -> list[tuple]:
    """Shortest list of actions that makes every goal predicate true.

    The world is left in the state it was given. Raises ``NoPlanError`` when
    the goal is unreachable or the search exceeds ``max_states``.
    """
    start = world.get_state()
    if all(satisfied(world, goal)):
        return []
    relevant = relevant_objects(world, goal) if prune else None
    parents: dict[tuple, tuple | None] = {start: None}
    frontier = deque([start])
    try:
        while frontier:
            state = frontier.popleft()
            world.set_state(state)
            moves = A.admissible(world)
            if relevant is not None:
                moves = [m for m in moves if (m[1] < 0 or world.is_room[m[1]] or m[1] in relevant)
                         and (m[2] < 0 or m[2] in relevant)]
            for move in moves:
                world.set_state(state)
                A.apply(world, *move)
                nxt = world.get_state()
                if nxt in parents:
                    continue
                parents[nxt] = (state, move)
                if all(satisfied(world, goal)):
                    return _unwind(parents, nxt)
                if len(parents) > max_states:
                    raise NoPlanError(f"search exceeded {max_states} states")
                frontier.append(nxt)
        raise NoPlanError("the goal cannot be reached from this state")
    finally:
        world.set_state(start)


def _unwind(parents: dict, state: tuple) -> list[tuple]:
    path = []
    while parents[state] is not None:
        state, move = parents[state]
        path.append(move)
    return path[::-1]


def plan_lines(world: World, goal) -> list[str]:
    """``plan`` as canonical action lines (what the text mode accepts and
    ``info["admissible_actions"]`` lists)."""
    return [A.format_action(world, move) for move in plan(world, goal)]
