"""Tools task suites: every ``*.yaml`` in this folder is one suite.

``load_tools_suite(name_or_path)`` loads a suite and checks every task's goal
(its kind, its arguments, and for multi-hop tasks that the relation path
composes), so a typo fails at load time with the file and template named.
"""
from __future__ import annotations

from omnigym.suites import Task, TaskSuite, load_family_suite

DEFAULT_SUITE = "tools"


def validate_task(task: Task) -> None:
    from omnigym.environments.tools import tasks as T
    if len(task.goal) != 1:
        raise ValueError("a tools task has exactly one goal, e.g. [[ARITHMETIC, mul, add]]")
    kind, *args = task.goal[0]
    if kind not in T.GENERATORS:
        raise ValueError(f"unknown goal kind {kind!r}; use one of {sorted(T.GENERATORS)}")
    if kind == "ARITHMETIC":
        inner, outer = args
        if inner not in T.OPS or outer not in (*T.OPS, "pow", "sqrt"):
            raise ValueError(f"arithmetic needs inner in {sorted(T.OPS)} and outer also pow/sqrt")
    elif kind == "DATA":
        agg, column = args
        if agg not in T.AGGREGATES or column not in ("price", "quantity", "revenue"):
            raise ValueError(f"data needs agg in {sorted(T.AGGREGATES)} and column price/quantity/revenue")
    elif kind == "MEMORY":
        subject, count = args
        if subject not in T.SUBJECTS or not count.isdigit() or not 1 <= int(count) <= 8:
            raise ValueError(f"memory needs subject in {sorted(T.SUBJECTS)} and count 1..8")
    else:
        from omnigym.environments.tools.questions import valid_paths
        path = tuple(".".join(args).split("."))
        if path not in set(valid_paths(4)):
            raise ValueError(f"relation path {'.'.join(path)!r} does not compose (see questions.valid_paths)")


def load_tools_suite(name_or_path: str | None = None) -> TaskSuite:
    """A tools suite by name (a YAML file in this folder) or by path."""
    return load_family_suite("tools", name_or_path)
