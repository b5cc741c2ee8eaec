"""Household task suites: every ``*.yaml`` in this folder is one suite.

``validate_task`` checks each task against the household catalog, so a typo
in a YAML file fails at load time with the file and template named
(``omnigym.suites.load_family_suite("household", name_or_path)`` applies it).
"""
from __future__ import annotations

from omnigym.suites import Task, TaskSuite, load_family_suite

DEFAULT_SUITE = "household"


def validate_task(task: Task) -> None:
    from omnigym.environments.household.catalog import CLASSES, ROOM_CLASSES, STATES
    from omnigym.environments.household.goals import PREDICATE_KINDS
    from omnigym.environments.household.encoding import MAX_GOAL
    if not task.goal:
        raise ValueError("the goal is empty")
    if len(task.goal) > MAX_GOAL:
        raise ValueError(f"at most {MAX_GOAL} predicates per goal")
    for pred in task.goal:
        if len(pred) != 3:
            raise ValueError(f"predicate {pred} must be [KIND, a, b]")
        kind, a, b = pred
        if kind not in PREDICATE_KINDS:
            raise ValueError(f"unknown predicate {kind!r}; use one of {PREDICATE_KINDS}")
        if a not in CLASSES or CLASSES[a].category == "Rooms":
            raise ValueError(f"unknown object class {a!r}")
        if kind in ("INSIDE", "ON") and b not in CLASSES:
            raise ValueError(f"unknown object class {b!r}")
        if kind == "IN_ROOM" and b not in ROOM_CLASSES:
            raise ValueError(f"unknown room {b!r}; rooms: {ROOM_CLASSES}")
        if kind == "STATE" and b not in STATES:
            raise ValueError(f"unknown state {b!r}; states: {STATES}")


def load_household_suite(name_or_path: str | None = None) -> TaskSuite:
    """A household suite by name (a YAML file in this folder) or by path."""
    return load_family_suite("household", name_or_path)
