"""Free-form shell tasks: the verifier and the suite's fixture.

A shell suite is an ordinary task suite (``omnigym.suites``) with explicit
``tasks``; each task's ``data`` holds ``verify`` (what must hold) and
``solution`` (a reference command, what the expert types), and the suite's
``extras["fixture"]`` holds the scratch files and a setup command
(``omnigym.tasks.shell`` checks both at load time).

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

from omnigym.suites import Task, TaskSuite

TRANSFORMS = {
    "upper": lambda text: text.upper(),
    "foo_to_bar": lambda text: text.replace("foo", "bar"),
    "reverse_lines": lambda text: "".join(reversed(text.splitlines(keepends=True))),
}
VERIFY_KEYS = {"stdout", "stdout_lines", "files"}
FILE_CHECKS = {"exists", "is_dir", "content", "same_as", "same_as_fixture", "content_from", "transform",
               "mode", "mode_set", "mode_clear", "tar_members"}
MODE_CHECKS = ("mode", "mode_set", "mode_clear")


def parse_mode(value, where: str) -> int:
    """Permission bits from YAML: 0o644 arrives as a string (YAML 1.1 has no 0o)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise ValueError(f"{where}: mode {value!r} is not an octal number like 0o644") from None


def fixture_files(suite: TaskSuite) -> dict:
    """{path: content or {"content", "mode"}}: what the scratch starts with."""
    return suite.extras["fixture"]["files"]


def setup_command(suite: TaskSuite) -> str:
    """Run once after seeding the fixture (e.g. to build an archive)."""
    return suite.extras["fixture"]["setup"]


def _fixture_bytes(suite: TaskSuite, rel: str) -> bytes | None:
    entry = fixture_files(suite).get(rel)
    if entry is None:
        return None
    content = entry["content"] if isinstance(entry, dict) else entry
    return content.encode() if isinstance(content, str) else content


def verify(task: Task, suite: TaskSuite, stdout: str, snapshot) -> tuple[bool, str]:
    """(success, reason) for the last command's stdout and the final scratch state."""
    v = task.data["verify"]
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
        bits = {k: parse_mode(checks[k], rel) for k in MODE_CHECKS if k in checks}
        if "mode" in bits and (mode & 0o7777) != bits["mode"]:
            return False, f"{rel} has mode {mode & 0o7777:o}, not {bits['mode']:o}"
        if "mode_set" in bits and (mode & bits["mode_set"]) != bits["mode_set"]:
            return False, f"{rel} lacks permission bits {bits['mode_set']:o}"
        if "mode_clear" in bits and mode & bits["mode_clear"]:
            return False, f"{rel} still has permission bits {mode & bits['mode_clear']:o}"
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
