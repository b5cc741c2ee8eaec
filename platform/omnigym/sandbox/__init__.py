"""Sandboxed command execution for the shell family (and the python tool).

Every command runs isolated (DESIGN.md §7): no network, a private scratch
file system seeded from a fixture, the rest of the host read-only or absent,
and per-command limits on CPU time, memory, processes, file size, output
size and wall time.  A sandbox is a persistent worker process inside
bubblewrap (or util-linux ``unshare``), so a command costs about as much as
a bare ``subprocess.run``.

API
---
``SandboxConfig(backend="auto", cpu_seconds=10, memory_mb=1024,
max_processes=64, max_file_mb=16, max_output_bytes=65536, wall_seconds=10,
scratch_mb=64, tmp_mb=16, workdir="/scratch", shell="/bin/bash",
persist_cwd=False, ...)``
    Knobs; see the class docstring.  ``backend="none"`` (no isolation at all)
    is refused unless ``allow_unsandboxed_host_execution=True`` is passed too.

``Sandbox(fixture=None, config=None)`` — a context manager.
    fixture: None, a host directory to copy, or a dict such as
    ``{"notes.txt": "hi", "bin/run.sh": {"content": "...", "mode": 0o755},
    "empty/": None, "link": {"symlink": "notes.txt"}}``.

    ``.run(command, stdin=None, **limit_overrides) -> CommandResult``
        exit_code (negative = killed by that signal), stdout, stderr,
        timed_out, limit / limits (which limits were hit: wall_time,
        cpu_time, memory, processes, file_size, disk_space, output),
        truncated, wall_s, side_effects (created, deleted, modified,
        mode_changed, hashes), cwd (where the shell ended; each command
        starts in ``workdir`` unless persist_cwd=True), signal,
        state_digest (== Snapshot.digest of the tree), background_killed
        (leftover processes killed when the command ended),
        worker_restarted.
    ``.snapshot() -> Snapshot`` / ``.restore(snapshot)``: the scratch tree as
        hashable, picklable data (``Snapshot.digest`` == ``state_digest``).
    ``.reset()``: back to the fixture (a fresh episode).
    ``.close()``: stop; no process of the sandbox survives.
    ``.backend``: "bwrap", "unshare" or "none"; ``.isolation``: what that
    means in one line; ``.processes()``: host pids of the sandbox;
    ``.restarts``: how often the worker had to be replaced.

``available_backends()`` — isolating backends that work here, best first.
``run_once(command, fixture=None, config=None)`` — one command in a fresh
    sandbox (the stateless, slow path; used as a benchmark reference).

If a hostile command manages to kill or hang the worker, the sandbox starts
a new one (scratch back to the last reset/restore baseline) and says so in
``CommandResult.worker_restarted``; calls never hang past their wall limit
plus a few seconds.  What each backend does and does not isolate is written
down in ``backends.py``.
"""

from .backends import ISOLATION, available_backends
from .config import (LIMIT_NAMES, CommandResult, SandboxConfig, SandboxError, SandboxUnavailable,
                     SideEffects, Snapshot, UnsandboxedExecutionRefused)
from .sandbox import Sandbox, run_once

__all__ = [
    "CommandResult", "ISOLATION", "LIMIT_NAMES", "Sandbox", "SandboxConfig", "SandboxError",
    "SandboxUnavailable", "SideEffects", "Snapshot", "UnsandboxedExecutionRefused",
    "available_backends", "run_once",
]
