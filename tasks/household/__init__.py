"""Household task suites: every ``*.yaml`` in this folder is one suite.

``load_household_suite(name_or_path)`` loads a suite and checks each task
against the household catalog, so a typo in a YAML file fails at load time
with the file and template named.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from omnigym.suites import Task, TaskSuite, load_suite

SUITE_DIR = Path(__file__).parent
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


def suite_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITE_DIR.glob("*.yaml"))}


@lru_cache(maxsize=32)
def _load(path: str) -> TaskSuite:
    return load_suite(path, validate=validate_task)


def load_household_suite(name_or_path: str | None = None) -> TaskSuite:
    """A suite by name (a YAML file in this folder) or by path."""
    name_or_path = name_or_path or DEFAULT_SUITE
    paths = suite_paths()
    if name_or_path in paths:
        return _load(str(paths[name_or_path]))
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return _load(str(path.resolve()))
    raise ValueError(f"unknown household suite {name_or_path!r}; available: {sorted(paths)} "
                     f"or a path to a .yaml file")


load_suite_by_name = load_household_suite
