"""Tools task suites: every ``*.yaml`` in this folder is one suite.

``load_tools_suite(name_or_path)`` loads a suite and checks every task's goal
(its kind, its arguments, and for multi-hop tasks that the relation path
composes), so a typo fails at load time with the file and template named.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from omnigym.suites import Task, TaskSuite, load_suite

SUITE_DIR = Path(__file__).parent
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


def suite_paths() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def load_tools_suite(name_or_path: str | None = None) -> TaskSuite:
    name_or_path = name_or_path or DEFAULT_SUITE
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SUITE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ValueError(f"no tools suite {name_or_path!r}; available: {suite_paths()}")
    return load_suite(path, validate=validate_task)


load_suite_by_name = load_tools_suite
