"""Free-form shell task suites: YAML fixture + tasks + verifiers.

A verifier checks the last command's stdout (``stdout``: exact after
stripping; ``stdout_lines``: the stripped non-empty lines) and/or the final
scratch file system (``files``: per path ``exists``, ``is_dir``,
``content``, ``same_as``/``same_as_fixture``, ``content_from`` +
``transform``, ``mode`` (exact permission bits), ``mode_set``/``mode_clear``
(bits that must be set/clear), ``tar_members`` (an archive holding these
members)).
"""
from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

TRANSFORMS = {
    "upper": lambda text: text.upper(),
    "foo_to_bar": lambda text: text.replace("foo", "bar"),
    "reverse_lines": lambda text: "".join(reversed(text.splitlines(keepends=True))),
}
FILE_CHECKS = {"exists", "is_dir", "content", "same_as", "same_as_fixture", "content_from", "transform",
               "mode", "mode_set", "mode_clear", "tar_members"}


@dataclass(frozen=True)
class ShellTask:
    id: str
    instruction: str
    verify: dict
    solution: str


@dataclass
class ShellSuite:
    name: str
    version: int
    doc: str
    max_steps: int
    fixture: dict            # {path: content or {"content", "mode"}}
    setup: str               # command run once after seeding the fixture
    tasks: dict[str, ShellTask]


def _suite_dir() -> Path:
    from omnigym import tasks as tasks_pkg
    return Path(tasks_pkg.__file__).parent / "shell"


@lru_cache(maxsize=8)
def load_shell_suite(name_or_path: str = "freeform") -> ShellSuite:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = _suite_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        raise ValueError(f"unknown shell suite {name_or_path!r}: no {path}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    fixture = spec.get("fixture") or {}
    tasks = {}
    for task_id, t in (spec.get("tasks") or {}).items():
        if not isinstance(t, dict) or "instruction" not in t or "verify" not in t:
            raise ValueError(f"{path}: task {task_id!r} needs instruction and verify")
        for rel, checks in (t["verify"].get("files") or {}).items():
            for key in ("mode", "mode_set", "mode_clear"):
                if key in checks:
                    checks[key] = _mode(checks[key], f"{path}: task {task_id!r}, {rel}")
            unknown = set(checks) - FILE_CHECKS
            if unknown:
                raise ValueError(f"{path}: task {task_id!r}, file {rel}: unknown checks {sorted(unknown)}")
            if "transform" in checks and checks["transform"] not in TRANSFORMS:
                raise ValueError(f"{path}: task {task_id!r}: unknown transform {checks['transform']!r}")
        tasks[task_id] = ShellTask(task_id, t["instruction"], dict(t["verify"]), str(t.get("solution", "")))
    if not tasks:
        raise ValueError(f"{path}: a shell suite needs tasks")
    files = {}
    for rel, entry in (fixture.get("files") or {}).items():
        if isinstance(entry, dict) and "mode" in entry:
            entry = {**entry, "mode": _mode(entry["mode"], f"{path}: fixture {rel}")}
        files[rel] = entry
    return ShellSuite(spec.get("name", path.stem), int(spec.get("version", 0)), spec.get("doc", ""),
                      int(spec.get("max_steps", 8)), files,
                      str(fixture.get("setup") or ""), tasks)


def _mode(value, where: str) -> int:
    """Permission bits from YAML: 0o644 arrives as a string (YAML 1.1 has no 0o)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise ValueError(f"{where}: mode {value!r} is not an octal number like 0o644") from None


def _fixture_bytes(suite: ShellSuite, rel: str) -> bytes | None:
    entry = suite.fixture.get(rel)
    if entry is None:
        return None
    content = entry["content"] if isinstance(entry, dict) else entry
    return content.encode() if isinstance(content, str) else content


def verify(task: ShellTask, suite: ShellSuite, stdout: str, snapshot) -> tuple[bool, str]:
    """(success, reason) for the last command's stdout and the final scratch state."""
    v = task.verify
    if "stdout" in v and stdout.strip() != str(v["stdout"]).strip():
        return False, "the printed answer is not right"
    if "stdout_lines" in v:
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if lines != [str(x) for x in v["stdout_lines"]]:
            return False, "the printed lines are not right"
    entries = {path: (kind, mode, payload) for path, kind, mode, payload in snapshot.entries}
    for rel, checks in (v.get("files") or {}).items():
        kind, mode, payload = entries.get(rel, (None, None, None))
        if checks.get("exists", True) is False:
            if kind is not None:
                return False, f"{rel} should not exist"
            continue
        if kind is None:
            return False, f"{rel} does not exist"
        if checks.get("is_dir") and kind != "dir":
            return False, f"{rel} is not a directory"
        if "mode" in checks and (mode & 0o7777) != checks["mode"]:
            return False, f"{rel} has mode {mode & 0o7777:o}, not {checks['mode']:o}"
        if "mode_set" in checks and (mode & checks["mode_set"]) != checks["mode_set"]:
            return False, f"{rel} lacks permission bits {checks['mode_set']:o}"
        if "mode_clear" in checks and mode & checks["mode_clear"]:
            return False, f"{rel} still has permission bits {mode & checks['mode_clear']:o}"
        expected = None
        if "content" in checks:
            expected = checks["content"].encode()
        elif "same_as" in checks:
            expected = entries.get(checks["same_as"], (None, None, None))[2]
        elif checks.get("same_as_fixture"):
            expected = _fixture_bytes(suite, rel)
        elif "content_from" in checks:
            source = _fixture_bytes(suite, checks["content_from"]) or b""
            expected = TRANSFORMS[checks["transform"]](source.decode()).encode()
        if expected is not None and payload != expected:
            return False, f"{rel} does not have the expected content"
        if "tar_members" in checks:
            try:
                with tarfile.open(fileobj=io.BytesIO(payload or b"")) as tar:
                    names = {n.rstrip("/") for n in tar.getnames()}
            except (tarfile.TarError, EOFError, OSError):
                return False, f"{rel} is not a readable tar archive"
            missing = [m for m in checks["tar_members"] if m not in names]
            if missing:
                return False, f"{rel} lacks {', '.join(missing)}"
    return True, "done"
