"""Host side of the sandbox: one persistent isolated worker per ``Sandbox``.

Starting bubblewrap and Python costs tens of milliseconds, a command inside
an already running worker about as much as a bare ``subprocess.run``; so a
Sandbox starts its worker once and sends it one small JSON request per
command.  If the worker dies or stops answering, the next call (or the
current one, reported with ``worker_restarted=True``) gets a fresh worker
seeded with the last reset/restore baseline — the caller never hangs.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import weakref

from . import backends
from .config import (CommandResult, SandboxConfig, SandboxError, SandboxUnavailable, SideEffects,
                     Snapshot)
from .fsdiff import entries_to_wire, entries_from_wire, normalize_fixture


class _WorkerGone(Exception):
    def __init__(self, why: str, hung: bool = False):
        super().__init__(why)
        self.hung = hung


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher's process group (it leads its own session) and wait."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for f in (proc.stdin, proc.stdout):
        try:
            f.close()
        except OSError:
            pass


class Sandbox:
    """A persistent isolated shell.  See the package docstring for the API."""

    def __init__(self, fixture=None, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.backend = backends.resolve_backend(self.config)
        self._fixture = normalize_fixture(fixture)
        self._baseline, self._baseline_cwd = self._fixture, None
        self._lock = threading.RLock()
        self._proc = None
        self._tmpdir = None
        self.restarts = 0
        self.uid, self.gid = backends.sandbox_ids(self.config) if self.backend != "none" else (None, None)
        self.worker_info: dict = {}
        self._finalizer = None
        self._start()

    # ---------------------------------------------------------- lifecycle
    def _start(self) -> None:
        cfg = self.config
        self._tmpdir = tempfile.mkdtemp(prefix="omnigym-sandbox-")
        os.chmod(self._tmpdir, 0o755)
        python, extra_ro = backends.worker_python(cfg)
        setup = None
        if self.backend == "none":
            scratch, tmp = os.path.join(self._tmpdir, "scratch"), os.path.join(self._tmpdir, "tmp")
            os.makedirs(scratch)
            os.makedirs(tmp)
            argv = backends.none_argv(python)
        else:
            etc = backends.write_etc(self._tmpdir, self.uid, self.gid)
            ops = backends.layout(cfg, etc, extra_ro)
            scratch, tmp = cfg.workdir, "/tmp"
            if self.backend == "bwrap":
                argv = backends.bwrap_argv(cfg, ops, python)
            else:
                newroot = os.path.join(self._tmpdir, "root")
                os.makedirs(newroot)
                setup = {"newroot": newroot, "ops": ops, "hostname": "sandbox"}
                argv = backends.unshare_argv(python)
        self._log_path = os.path.join(self._tmpdir, "worker.log")
        with open(self._log_path, "wb") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=log, start_new_session=True, close_fds=True,
                                          cwd="/", env={"PATH": "/usr/bin:/bin"})
        self._finalizer = weakref.finalize(self, Sandbox._finalize, self._proc, self._tmpdir, os.getpid())
        init = {"op": "init", "scratch": scratch, "tmp": tmp, "uid": self.uid, "gid": self.gid,
                "shell": cfg.shell, "env": dict(cfg.env), "limits": cfg.limits(),
                "fixture": entries_to_wire(self._fixture), "setup": setup,
                "persist_cwd": cfg.persist_cwd, "kill_background": cfg.kill_background}
        try:
            self._worker_has = set()  # snapshot digests the worker can restore by digest
            self.worker_info = self._request(init, cfg.startup_timeout_seconds)
            if self._baseline is not self._fixture:
                self._request({"op": "restore", "entries": entries_to_wire(self._baseline),
                               "cwd": self._baseline_cwd}, cfg.startup_timeout_seconds)
        except (_WorkerGone, SandboxError) as exc:
            log = self._read_log()
            self._stop()
            raise SandboxUnavailable(f"{self.backend} sandbox failed to start: {exc}\n{log}".strip()) from None
        self.workdir = scratch

    def _read_log(self) -> str:
        try:
            with open(self._log_path, "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def _finalize(proc, tmpdir, owner_pid) -> None:
        if os.getpid() != owner_pid:  # a forked child exiting: not its sandbox
            return
        _kill_tree(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)

    def _stop(self, polite: bool = True) -> None:
        proc, self._proc = self._proc, None
        if polite and proc is not None and proc.poll() is None:
            try:
                self._send_frame(proc, {"op": "exit"}, time.monotonic() + 1.0)
                self._recv_frame(proc, time.monotonic() + 2.0)
                proc.wait(timeout=2.0)
            except (_WorkerGone, subprocess.TimeoutExpired, OSError):
                pass
        if self._finalizer is not None:
            self._finalizer()  # kill whatever is left, remove the temp dir
            self._finalizer = None

    def _restart(self) -> None:
        self._stop(polite=False)  # it is dead or hung: no goodbye
        self.restarts += 1
        self._start()

    def close(self) -> None:
        """Stop the worker; every process of the sandbox is gone afterwards."""
        with self._lock:
            self._stop()

    @property
    def closed(self) -> bool:
        return self._proc is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ protocol
    def _send_frame(self, proc, obj, deadline) -> None:
        data = json.dumps(obj).encode()
        view = memoryview(struct.pack(">I", len(data)) + data)
        fd = proc.stdin.fileno()
        os.set_blocking(fd, False)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _WorkerGone("worker does not read its requests", hung=True)
            select.select([], [fd], [], left)
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as exc:
                raise _WorkerGone(f"worker is gone ({exc})") from None

    def _recv_frame(self, proc, deadline) -> dict:
        fd = proc.stdout.fileno()

        def read(n):
            buf = bytearray()
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _WorkerGone("worker did not answer in time", hung=True)
                if not select.select([fd], [], [], left)[0]:
                    continue
                chunk = os.read(fd, n - len(buf))
                if not chunk:
                    raise _WorkerGone(f"worker exited (status {proc.poll()})")
                buf += chunk
            return bytes(buf)

        return json.loads(read(struct.unpack(">I", read(4))[0]))

    def _request(self, msg: dict, timeout: float) -> dict:
        if self._proc is None:
            raise SandboxError("the sandbox is closed")
        deadline = time.monotonic() + timeout
        self._send_frame(self._proc, msg, deadline)
        reply = self._recv_frame(self._proc, deadline)
        if not reply.get("ok"):
            err = SandboxError(f"worker error in {msg.get('op')!r}: {reply.get('error')}")
            err.restart = bool(reply.get("restart"))
            raise err
        return reply

    def _call(self, msg: dict, timeout: float | None = None) -> tuple:
        """Send msg; restart a dead worker first. Returns (reply, restarted)."""
        if self._proc is None:
            raise SandboxError("the sandbox is closed; create a new Sandbox")
        restarted = False
        if self._proc.poll() is not None:
            self._restart()
            restarted = True
        timeout = timeout or self.config.startup_timeout_seconds
        try:
            reply = self._request(msg, timeout)
        except _WorkerGone:
            self._restart()
            raise
        except SandboxError as exc:
            if not getattr(exc, "restart", False):
                raise
            self._restart()  # the worker found itself tampered with before this request
            return self._request(msg, timeout), True
        if reply.get("worker_tampered"):
            self._restart()  # after the reply that reports the culprit's result
        return reply, restarted

    # ----------------------------------------------------------------- API
    def run(self, command: str, stdin: str | None = None, **limits) -> CommandResult:
        """Run ``shell -c command`` in the sandbox.  ``limits`` may override
        per-command knobs (wall_seconds=..., max_output_bytes=..., ...)."""
        if not isinstance(command, str):
            raise TypeError("command must be a str")
        bad = set(limits) - set(self.config.limits())
        if bad:
            raise TypeError(f"unknown limit(s) {sorted(bad)}; known: {sorted(self.config.limits())}")
        wall = float(limits.get("wall_seconds", self.config.wall_seconds))
        msg = {"op": "run", "cmd": command, "stdin": stdin, "limits": limits}
        timeout = wall + self.config.reply_slack_seconds
        with self._lock:
            if self._proc is None:
                raise SandboxError("the sandbox is closed; create a new Sandbox")
            try:
                reply, restarted = self._call(msg, timeout)
            except _WorkerGone as exc:
                return CommandResult(
                    command=command, exit_code=-signal.SIGKILL, signal="SIGKILL",
                    stderr=f"sandbox: worker {'hung' if exc.hung else 'died'} during the command "
                           f"({exc}); it was restarted and the scratch state reset to the last "
                           "reset/restore baseline",
                    timed_out=exc.hung, limit="wall_time" if exc.hung else None,
                    limits=["wall_time"] if exc.hung else [], worker_restarted=True)
            except SandboxError as exc:  # the worker broke while running it: replace it
                self._restart()
                return CommandResult(command=command, exit_code=-signal.SIGKILL, signal="SIGKILL",
                                     stderr=f"sandbox: {exc}; the worker was restarted and the scratch "
                                            "state reset to the last reset/restore baseline",
                                     worker_restarted=True)
        restarted = restarted or bool(reply.get("worker_tampered"))
        lim = reply["limits"]
        return CommandResult(
            command=command, exit_code=reply["exit_code"], stdout=reply["stdout"],
            stderr=reply["stderr"], timed_out=reply["timed_out"], limit=_primary(lim), limits=lim,
            truncated=reply["truncated"], wall_s=reply["wall_s"],
            side_effects=SideEffects(**reply["side_effects"]), cwd=reply["cwd"],
            signal=reply["signal"], state_digest=reply["state_digest"], worker_restarted=restarted,
            background_killed=reply.get("background_killed", 0))

    def snapshot(self) -> Snapshot:
        """The scratch tree (files, dirs, symlinks, modes) as a Snapshot."""
        with self._lock:
            reply = self._call_quiet({"op": "snapshot"})
        return Snapshot(tuple(entries_from_wire(reply["entries"])), reply.get("cwd"))

    def restore(self, snapshot: Snapshot) -> str:
        """Make the scratch tree equal to ``snapshot`` (kills running leftovers,
        empties /tmp).  Returns the state digest.  Cheap when repeated: the
        worker keeps recent snapshots (sent once, then named by digest) and
        rewrites only the paths that differ (fssync)."""
        if not isinstance(snapshot, Snapshot):
            raise TypeError(f"restore() takes a Snapshot from .snapshot(), got {type(snapshot).__name__}")
        with self._lock:
            self._baseline, self._baseline_cwd = list(snapshot.entries), snapshot.cwd
            digest = snapshot.digest
            reply = None
            if digest in self._worker_has:  # tree search restores the same few states
                reply = self._call_quiet({"op": "restore", "digest": digest, "cwd": snapshot.cwd})
            if reply is None or reply.get("missing"):
                reply = self._call_quiet({"op": "restore", "entries": entries_to_wire(snapshot.entries),
                                          "cwd": snapshot.cwd})
                self._worker_has.add(reply["key"])
        return reply["state_digest"]

    def reset(self) -> str:
        """Back to the fixture (fresh episode).  Returns the state digest."""
        with self._lock:
            self._baseline, self._baseline_cwd = self._fixture, None
            return self._call_quiet({"op": "reset"})["state_digest"]

    def _call_quiet(self, msg):
        try:
            return self._call(msg)[0]
        except _WorkerGone:  # restarted onto the baseline; try once more
            return self._call(msg)[0]

    # ---------------------------------------------------------- inspection
    @property
    def launcher_pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def processes(self) -> list:
        """Host pids of every process belonging to this sandbox (launcher,
        worker, commands): the launcher's descendants plus, for namespace
        backends, every process in the worker's pid namespace."""
        if self._proc is None:
            return []
        return sandbox_processes(self._proc.pid)

    @property
    def isolation(self) -> str:
        return backends.ISOLATION[self.backend]

    def __repr__(self):
        state = "closed" if self.closed else f"launcher pid {self._proc.pid}"
        return f"Sandbox(backend={self.backend!r}, {state})"


def _primary(limits: list):
    """The limit to headline: the one that ended the command, not its echo."""
    for name in ("processes", "memory", "cpu_time", "file_size", "disk_space", "wall_time", "output"):
        if name in limits:
            return name
    return None


def _proc_table() -> dict:
    """{pid: (ppid, pid namespace)} of live processes (zombies are dead: they
    hold no resources and vanish as soon as their new parent reaps them)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] in ("Z", "X"):
                continue
            table[int(name)] = (int(fields[1]), os.readlink(f"/proc/{name}/ns/pid"))
        except (OSError, IndexError, ValueError):
            continue
    return table


def sandbox_processes(launcher_pid: int) -> list:
    table = _proc_table()
    mine = os.readlink("/proc/self/ns/pid")
    found, frontier = set(), {launcher_pid} & set(table)
    while frontier:
        found |= frontier
        frontier = {p for p, (pp, _) in table.items() if pp in frontier} - found
    namespaces = {table[p][1] for p in found} - {mine}
    found |= {p for p, (_, ns) in table.items() if ns in namespaces}
    return sorted(found)


def run_once(command: str, fixture=None, config: SandboxConfig | None = None,
             stdin: str | None = None) -> CommandResult:
    """Run one command in a fresh sandbox (new bwrap + worker) and tear it
    down: the slow, stateless reference path used by the benchmark."""
    with Sandbox(fixture, config) as sb:
        return sb.run(command, stdin=stdin)
