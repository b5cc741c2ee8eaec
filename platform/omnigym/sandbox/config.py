"""Configuration, results and errors of the command sandbox.

Everything here is plain data: the worker process inside the sandbox never
imports this module (it speaks JSON), so these classes can change freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

from .fsdiff import entries_digest

BACKENDS = ("auto", "bwrap", "unshare", "none")

#: Names used in ``CommandResult.limit`` / ``CommandResult.limits``.
LIMIT_NAMES = (
    "wall_time",  # killed after ``wall_seconds``
    "cpu_time",  # RLIMIT_CPU: SIGXCPU / exit 152
    "memory",  # RLIMIT_AS: an allocation failed (detected from stderr)
    "processes",  # RLIMIT_NPROC: fork failed (detected from stderr)
    "file_size",  # RLIMIT_FSIZE: SIGXFSZ / exit 153 / "File too large"
    "disk_space",  # the scratch or /tmp tmpfs is full
    "output",  # stdout/stderr longer than ``max_output_bytes`` (truncated)
)


class SandboxError(RuntimeError):
    """The sandbox could not be started or stopped working."""


class SandboxUnavailable(SandboxError):
    """The requested isolation backend does not work on this machine."""


class UnsandboxedExecutionRefused(SandboxError):
    """Raised instead of silently running commands directly on the host."""


@dataclass
class SandboxConfig:
    """Knobs of one sandbox.  Every limit applies to each command separately.

    backend: "auto" (bwrap, else unshare), "bwrap", "unshare" or "none".
        "none" runs commands directly on the host and is refused unless
        ``allow_unsandboxed_host_execution=True`` is also passed.
    cpu_seconds: RLIMIT_CPU per process (SIGXCPU, then SIGKILL one second later).
    memory_mb: RLIMIT_AS (virtual address space) per process.
    max_processes: RLIMIT_NPROC for the sandbox user (fork bombs stop here).
    max_file_mb: RLIMIT_FSIZE, the largest file a command may write.
    max_open_files: RLIMIT_NOFILE.
    max_output_bytes: stdout and stderr are each kept up to this many bytes.
    output_kill_bytes: once a command has produced this much output in total
        it is killed (``yes`` must not run until the wall limit).
    wall_seconds: wall-clock limit; on expiry every process of the command,
        background ones included, is SIGKILLed.
    scratch_mb / tmp_mb: sizes of the private tmpfs mounted at ``workdir``
        and ``/tmp`` (filling them gives ENOSPC, never touches the host disk).
    workdir: where the scratch file system is mounted; also $HOME and the
        starting directory of every command.
    shell: the shell that runs each command string (``shell -c command``).
    persist_cwd: False (default) starts every command in ``workdir``
        (ShIOEnv: commands are independent); True carries ``cd`` over.
    kill_background: kill processes a command left running when it exits.
    uid: the unprivileged uid commands run as when the host user is root
        (None: a random uid in [1_000_000, 2_000_000), so RLIMIT_NPROC counts
        only this sandbox's processes).
    ro_binds: extra host paths made visible read-only at the same path.
    env: extra environment variables for commands.
    python: interpreter for the in-sandbox worker (None: /usr/bin/python3 if
        present, else this interpreter with its prefix bound read-only).
    reply_slack_seconds: the host waits wall_seconds + this long for the
        worker's answer before declaring it hung and restarting it (the
        worker itself needs up to ~1.5 s after the wall limit to kill, drain
        and scan; keep this above 2).
    """

    backend: str = "auto"
    allow_unsandboxed_host_execution: bool = False
    cpu_seconds: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 64
    max_file_mb: int = 16
    max_open_files: int = 256
    max_output_bytes: int = 64 * 1024
    output_kill_bytes: int = 8 * 1024 * 1024
    wall_seconds: float = 10.0
    scratch_mb: int = 64
    tmp_mb: int = 16
    workdir: str = "/scratch"
    shell: str = "/bin/bash"
    persist_cwd: bool = False
    kill_background: bool = True
    uid: Optional[int] = None
    ro_binds: tuple = ()
    env: dict = field(default_factory=dict)
    python: Optional[str] = None
    startup_timeout_seconds: float = 15.0
    reply_slack_seconds: float = 5.0

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"SandboxConfig.backend={self.backend!r}; choose one of {BACKENDS}")
        for name in ("cpu_seconds", "memory_mb", "max_processes", "max_file_mb",
                     "max_open_files", "max_output_bytes", "wall_seconds",
                     "scratch_mb", "tmp_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.output_kill_bytes < self.max_output_bytes:
            raise ValueError("SandboxConfig.output_kill_bytes must be >= max_output_bytes")
        if not self.workdir.startswith("/") or self.workdir.rstrip("/") in ("", "/tmp", "/usr", "/etc", "/proc", "/dev"):
            raise ValueError(f"SandboxConfig.workdir={self.workdir!r}: use a fresh absolute path such as '/scratch'")

    def limits(self) -> dict:
        """The per-command limits as sent to the worker."""
        return {
            "cpu_seconds": self.cpu_seconds, "memory_mb": self.memory_mb,
            "max_processes": self.max_processes, "max_file_mb": self.max_file_mb,
            "max_open_files": self.max_open_files, "max_output_bytes": self.max_output_bytes,
            "output_kill_bytes": self.output_kill_bytes, "wall_seconds": self.wall_seconds,
        }


@dataclass
class SideEffects:
    """What one command changed in the scratch file system (paths relative to
    ``workdir``; directories end with "/").  ``hashes`` maps every created or
    modified regular file to the sha256 of its new content."""

    created: list = field(default_factory=list)
    deleted: list = field(default_factory=list)
    modified: list = field(default_factory=list)
    mode_changed: list = field(default_factory=list)
    hashes: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.created or self.deleted or self.modified or self.mode_changed)


@dataclass
class CommandResult:
    """Outcome of ``Sandbox.run``.

    exit_code: the shell's exit status; negative -N when killed by signal N.
    signal: the signal name ("SIGKILL", "SIGXCPU", ...) or None.
    limit: the main limit that was hit (see LIMIT_NAMES) or None; ``limits``
        lists all of them (a fork bomb hits "processes" and "wall_time").
    truncated: stdout or stderr was cut at ``max_output_bytes``.
    cwd: the shell's working directory when it exited (None if it was killed).
    state_digest: sha256 over the whole scratch tree after the command (a
        cheap canonical state key).
    worker_restarted: the worker died or hung and was replaced; the scratch
        state was put back to the last reset/restore baseline.
    background_killed: processes the command left behind that were killed
        when it ended (``sleep 9 &``; a fork bomb's offspring).
    """

    command: str
    exit_code: Optional[int]
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    limit: Optional[str] = None
    limits: list = field(default_factory=list)
    truncated: bool = False
    wall_s: float = 0.0
    side_effects: SideEffects = field(default_factory=SideEffects)
    cwd: Optional[str] = None
    signal: Optional[str] = None
    state_digest: str = ""
    worker_restarted: bool = False
    background_killed: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class Snapshot:
    """The scratch file system as data: picklable, comparable, hashable.

    entries: tuple of (path, kind, mode, payload) sorted by path, where kind is
    "file" (payload = bytes), "dir" (payload = None) or "symlink" (payload =
    target str).  ``cwd`` is the carried-over directory (persist_cwd only).
    /tmp is not part of the state: restore() and reset() empty it.
    """

    entries: tuple
    cwd: Optional[str] = None

    @cached_property
    def digest(self) -> str:
        """Equals ``CommandResult.state_digest`` of the same scratch tree."""
        return entries_digest(self.entries)

    def files(self) -> dict:
        """{path: bytes} of the regular files (handy in tests and rewards)."""
        return {p: c for p, k, _m, c in self.entries if k == "file"}
