"""Shell task suites (free-form tasks: one whole command per turn).

Every ``*.yaml`` in this folder is one suite: a ``fixture`` (the scratch
files and a setup command) and explicit ``tasks``, each with an
``instruction``, a ``verify`` spec (see ``omnigym.environments.shell.tasks``)
and a reference ``solution`` command. The hooks below check them at load
time, so a typo fails with the file and task named.
"""
from __future__ import annotations

from omnigym.suites import Task, TaskSuite, load_family_suite

DEFAULT_SUITE = "freeform"


def validate_task(task: Task) -> None:
    from omnigym.environments.shell.tasks import FILE_CHECKS, MODE_CHECKS, TRANSFORMS, VERIFY_KEYS, parse_mode
    verify, solution = task.data.get("verify"), task.data.get("solution")
    if not isinstance(verify, dict) or not verify:
        raise ValueError("needs a 'verify' mapping, e.g. {stdout: \"42\"} or {files: {out.txt: {exists: true}}}")
    unknown = set(verify) - VERIFY_KEYS
    if unknown:
        raise ValueError(f"unknown verify keys {sorted(unknown)}; use {sorted(VERIFY_KEYS)}")
    if not isinstance(solution, str) or not solution.strip():
        raise ValueError("needs a reference 'solution' command (the expert types it)")
    files = verify.get("files") or {}
    if not isinstance(files, dict):
        raise ValueError("verify 'files' must map paths to checks")
    for rel, checks in files.items():
        if not isinstance(checks, dict):
            raise ValueError(f"file {rel}: checks must be a mapping, e.g. {{exists: false}}")
        unknown = set(checks) - FILE_CHECKS
        if unknown:
            raise ValueError(f"file {rel}: unknown checks {sorted(unknown)}")
        if "content_from" in checks and checks.get("transform") not in TRANSFORMS:
            raise ValueError(f"file {rel}: content_from needs a transform in {sorted(TRANSFORMS)}, "
                             f"got {checks.get('transform')!r}")
        for key in MODE_CHECKS:
            if key in checks:
                parse_mode(checks[key], f"file {rel}")


def parse_extras(extras: dict, path) -> dict:
    """The suite's ``fixture`` as ``{"files": {path: entry}, "setup": command}``
    with permission modes as integers."""
    from omnigym.environments.shell.tasks import parse_mode
    unknown = set(extras) - {"fixture"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)}; a shell suite adds only 'fixture'")
    fixture = extras.get("fixture") or {}
    if not isinstance(fixture, dict) or set(fixture) - {"files", "setup"}:
        raise ValueError(f"{path}: 'fixture' must be a mapping with 'files' and 'setup'")
    files = {}
    for rel, entry in (fixture.get("files") or {}).items():
        if isinstance(entry, dict) and "mode" in entry:
            entry = {**entry, "mode": parse_mode(entry["mode"], f"{path}: fixture {rel}")}
        files[rel] = entry
    return {"fixture": {"files": files, "setup": str(fixture.get("setup") or "")}}


def load_shell_suite(name_or_path: str | None = None) -> TaskSuite:
    """A shell suite by name (a YAML file in this folder) or by path."""
    return load_family_suite("shell", name_or_path)
