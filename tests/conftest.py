"""No process a test starts outlives the test session.

Ray's daemons can outlive the command that started them: the nodes of
`ray start`, or agents whose driver was killed. Every process started during
the session inherits a marker in its environment, so the check at the end
finds exactly this session's processes, whatever else runs Ray on the machine.
"""
from __future__ import annotations

import os
import re
import signal
import time
import uuid
from pathlib import Path

import pytest

SESSION_MARKER = "OMNIGYM_TEST_SESSION"
DAEMONS_MARKER = "OMNIGYM_TEST_DAEMONS"
# Ray's processes exit a moment after ray.shutdown() or the end of their driver.
EXIT_GRACE_S = 20.0
# Ray's session folder (/tmp/ray/session_2026-01-31_12-00-00_123456_789) in a command line.
RAY_SESSION = re.compile(r"[^\s=]*/session_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d+_\d+")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:           # gone meanwhile, or not ours to read
        return b""


def _open_files(pid: int) -> str:
    links = []
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            links.append(os.readlink(fd))
    except OSError:
        pass
    return " ".join(links)


def processes_marked(name: str, value: str, sessions: set[str]) -> dict[int, str]:
    """pid -> command line of every live process started with ``name=value``
    in its environment, and of every process of their Ray sessions: Ray renames
    its workers and agents, which blanks their environment in /proc, but they
    keep files open in the session's folder. ``sessions`` collects the folders
    seen, so that their processes are still found once the marked ones are gone."""
    needle = f"{name}={value}".encode()
    commands = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            cmdline = _read(entry / "cmdline").replace(b"\0", b" ").decode(errors="replace").strip()
            if cmdline:       # empty for zombies
                commands[int(entry.name)] = cmdline
    found = {pid: cmd for pid, cmd in commands.items()
             if needle in _read(Path(f"/proc/{pid}/environ")).split(b"\0")}
    for cmd in found.values():
        sessions.update(RAY_SESSION.findall(cmd))
    if sessions:
        for pid, cmd in commands.items():
            if pid not in found and any(s in f"{cmd} {_open_files(pid)}" for s in sessions):
                found[pid] = cmd
    return found


def stop_marked(name: str, value: str, sessions: set[str], grace_s: float) -> dict[int, str]:
    """Give the marked processes ``grace_s`` to exit, kill the rest and wait
    for them to go; returns those that had to be killed."""
    deadline = time.monotonic() + grace_s
    while (left := processes_marked(name, value, sessions)) and time.monotonic() < deadline:
        time.sleep(0.25)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while processes_marked(name, value, sessions) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_session():
    if not Path("/proc").is_dir():       # the check reads /proc (Linux)
        yield
        return
    value = uuid.uuid4().hex
    os.environ[SESSION_MARKER] = value
    yield
    leaked = stop_marked(SESSION_MARKER, value, set(), EXIT_GRACE_S)
    assert not leaked, "processes started by the tests were still running (now killed):\n" + "\n".join(
        f"  {pid} {cmd[:160]}" for pid, cmd in sorted(leaked.items()))


class Daemons:
    """``env`` goes into the environment of commands that start daemons (``ray
    start``); every process started with it is stopped by ``stop()``."""

    def __init__(self):
        self.value = uuid.uuid4().hex
        self.env = {DAEMONS_MARKER: self.value}
        self.sessions: set[str] = set()

    def running(self) -> dict[int, str]:
        return processes_marked(DAEMONS_MARKER, self.value, self.sessions)

    def stop(self) -> None:
        stop_marked(DAEMONS_MARKER, self.value, self.sessions, grace_s=0)


@pytest.fixture
def daemons():
    """Daemons a test starts, all stopped when it ends (``ray stop`` would stop
    every Ray on the machine, and killing by port misses the node's monitors)."""
    started = Daemons()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def ray_session():
    """A private Ray instance for a test module (address="local": never some
    other Ray on the machine), shut down when the module ends."""
    import gc

    import ray
    started = not ray.is_initialized()
    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield
    gc.collect()
    if started:
        ray.shutdown()
