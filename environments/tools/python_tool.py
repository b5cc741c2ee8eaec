"""The ``python`` tool: model-written Python run inside the project's sandbox.

Each ``PythonTool`` owns one persistent ``omnigym.sandbox.Sandbox`` (started
once; a call then costs about as much as starting python3).  What a program
can and cannot do is the sandbox's doing (see omnigym/sandbox/backends.py):
no network (only loopback, in its own namespace), no host file system beyond
a read-only /usr and a few /etc files, a private size-limited scratch
directory seeded with ``files`` (the working directory, where files written
by one call persist to the next until ``reset``/``restore``), and per-call
limits on wall time, CPU time, memory, processes, file size and output.

The program text goes to ``python3 -`` on stdin, never into a shell-quoted
command line, so no quoting bug can turn code into shell commands.  There is
deliberately no unsandboxed fallback: if neither bubblewrap nor unshare works,
the constructor raises ``SandboxUnavailable``.
"""

from __future__ import annotations

import os

from omnigym.sandbox import Sandbox, SandboxConfig, SandboxUnavailable, Snapshot

MAX_OUTPUT_CHARS = 4000
# Interpreters visible inside the sandbox: it binds the host's /usr read-only.
_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
# -B: no .pyc files in the scratch dir (they would show up as state changes);
# -E: ignore PYTHON* variables; -X utf8: UTF-8 I/O whatever the locale.
_RUN = "exec {python} -B -E -X utf8 -"

_LIMIT_MESSAGES = {
    "wall_time": "timed out after {t:g} s: the program was killed",
    "cpu_time": "CPU time limit ({t:g} s) exceeded: the program was killed",
    "memory": "memory limit ({m} MB) exceeded",
    "processes": "process limit exceeded",
    "file_size": "file size limit exceeded",
    "disk_space": "the working directory is full",
}


def _sandbox_python() -> str:
    for path in _PYTHONS:
        if os.path.realpath(path).startswith("/usr/") and os.access(path, os.X_OK):
            return path
    raise SandboxUnavailable(f"no python3 under /usr to run inside the sandbox (looked for {', '.join(_PYTHONS)})")


class PythonTool:
    """Run Python programs in one persistent sandbox.

    files: {relative path: content} written to the working directory.
    timeout_s: wall-clock and CPU limit per call.
    """

    def __init__(self, files: dict | None = None, timeout_s: float = 5.0, *, memory_mb: int = 1024,
                 max_output_chars: int = MAX_OUTPUT_CHARS, config: SandboxConfig | None = None):
        self.timeout_s = float(timeout_s)
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars
        self.python = _sandbox_python()
        self.config = config or SandboxConfig(
            backend="auto",  # bwrap or unshare; never "none" (that would run on the host)
            wall_seconds=self.timeout_s, cpu_seconds=self.timeout_s, memory_mb=memory_mb,
            max_processes=32, max_file_mb=16, scratch_mb=64, tmp_mb=16,
            max_output_bytes=max(4 * max_output_chars, 16384), reply_slack_seconds=3.0)
        if self.config.backend == "none":
            raise SandboxUnavailable("PythonTool refuses SandboxConfig(backend='none'): model code "
                                     "must never run unsandboxed")
        self._files = dict(files or {})
        self._sandbox = Sandbox(self._files, self.config)  # raises SandboxUnavailable if no backend

    # ------------------------------------------------------------- running
    def run(self, code: str) -> str:
        """Run ``code``; returns stdout, then stderr, then "exit code N" when
        non-zero (or why it was killed), cut to ``max_output_chars``."""
        if not isinstance(code, str):
            return f"code must be a string, got {type(code).__name__}"
        # lone surrogates (from JSON "\ud800" escapes) cannot be encoded for stdin
        code = code.encode("utf-8", "replace").decode("utf-8")
        r = self._sandbox.run(_RUN.format(python=self.python), stdin=code)
        stdout, stderr = r.stdout.rstrip("\n"), r.stderr.rstrip("\n")
        # Cut stdout's tail and stderr's head: a traceback's last lines say what went wrong.
        err_room = min(len(stderr), self.max_output_chars // 3)
        if len(stderr) > err_room:
            stderr = "[... stderr truncated]\n" + stderr[-err_room:]
        out_room = self.max_output_chars - len(stderr)
        if len(stdout) > out_room:
            stdout = stdout[:out_room] + "\n[... output truncated]"
        parts = [p for p in (stdout, stderr, self._status(r)) if p]
        return "\n".join(parts) if parts else "(no output)"

    def _status(self, r) -> str:
        if r.worker_restarted:
            return "the sandbox had to be restarted; files are back to the last reset/restore"
        if r.limit in _LIMIT_MESSAGES:
            return _LIMIT_MESSAGES[r.limit].format(t=self.timeout_s, m=self.memory_mb)
        if r.timed_out:
            return _LIMIT_MESSAGES["wall_time"].format(t=self.timeout_s)
        if r.limit == "output" and r.signal == "SIGKILL":  # a non-fatal "output" limit is just the cut
            return "too much output: the program was killed"
        if r.exit_code:
            return f"exit code {r.exit_code}" + (f" ({r.signal})" if r.signal else "")
        return ""

    # ------------------------------------------------------------- state
    def reset(self, files: dict | None = None) -> None:
        """Back to the initial files; with ``files``, those become the initial files."""
        if files is None:
            self._sandbox.reset()
            return
        # the sandbox's fixture is fixed at construction: start a new one (~0.1 s)
        new = Sandbox(dict(files), self.config)
        old, self._sandbox, self._files = self._sandbox, new, dict(files)
        old.close()

    def snapshot(self) -> Snapshot:
        """The working directory as data (picklable, hashable) for branching."""
        return self._sandbox.snapshot()

    def restore(self, snapshot: Snapshot) -> None:
        self._sandbox.restore(snapshot)

    def files(self) -> dict:
        """{path: bytes} of the working directory's regular files."""
        return self.snapshot().files()

    def close(self) -> None:
        self._sandbox.close()

    @property
    def backend(self) -> str:
        return self._sandbox.backend

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
