"""In-sandbox command server (run as ``python3 -I -S worker.py``).

Protocol: the host writes requests on our stdin and reads replies on our
stdout, each a 4-byte big-endian length followed by UTF-8 JSON.  Ops:

  init     {scratch, tmp, uid, gid, shell, env, limits, fixture, setup, ...}
  run      {cmd, stdin, limits?}      -> exit code, output, limits hit, digest
  snapshot {}                         -> {entries, cwd}
  restore  {entries, cwd?}  / reset {} (back to the init fixture)
  exit     {}

Inside a namespace sandbox the worker is PID 1 of its pid namespace: signals
from commands (``kill -9 $PPID``, ``kill -9 -1``, ``pkill python``) cannot
reach it, orphans are re-parented to it (it reaps them), ``kill(-1)`` kills
every other process of the sandbox, and when it exits the kernel kills them
all.  Each command is ``posix_spawn``ed (vfork speed) in its own session, as
an unprivileged uid when the host user is root (see op_init), with rlimits
set by a ``ulimit`` prefix bash parses before the command; its stdout/stderr
are read through pipes with a size cap while the wall clock runs.

Stdlib only; must not import the omnigym package (not visible in the sandbox).
"""

import json
import os
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fsdiff  # noqa: E402
import fssync  # noqa: E402
import nsmount  # noqa: E402

CHUNK = 65536
CWD_MAY_CHANGE = re.compile(r"cd|pushd|popd|source|eval|alias|[$`]|(^|[\s;&|(){}])\.($|[\s;&|])")
MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "memory exhausted",
                  "bad_alloc", "out of memory", "Out of memory")


def _set_rlimits(limits):
    """preexec_fn for shells other than bash (slower path: Python in the child)."""
    mb = 1024 * 1024
    cpu = max(1, int(limits["cpu_seconds"] + 0.999))
    for res, soft, hard in ((resource.RLIMIT_AS, limits["memory_mb"] * mb, None),
                            (resource.RLIMIT_CPU, cpu, cpu + 1),
                            (resource.RLIMIT_FSIZE, limits["max_file_mb"] * mb, None),
                            (resource.RLIMIT_NOFILE, limits["max_open_files"], None),
                            (resource.RLIMIT_NPROC, limits["max_processes"], None),
                            (resource.RLIMIT_CORE, 0, None)):
        resource.setrlimit(res, (int(soft), int(soft if hard is None else hard)))


def _recv(fd):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _send(fd, obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Worker:
    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd
        self.index = {}
        self.cwd = None

    # ------------------------------------------------------------- setup
    def op_init(self, msg):
        setup = msg.get("setup")
        if setup:
            nsmount.build_root(setup["newroot"], setup["ops"], setup.get("hostname"))
        self.ns_mode = os.getpid() == 1  # own pid namespace: kill(-1) is safe
        self.scratch, self.tmp = msg["scratch"], msg["tmp"]
        self.uid, self.gid = msg.get("uid"), msg.get("gid")
        self.shell, self.limits = msg["shell"], msg["limits"]
        self.persist_cwd = msg.get("persist_cwd", False)
        self.kill_background = msg.get("kill_background", True)
        if self.ns_mode and self.uid is not None:
            # Our real ids become the command's while the effective (and
            # saved) ones stay 0: commands then start via posix_spawn with
            # RESETIDS (no fork of this process needed to switch users), yet
            # cannot prlimit, ptrace or read us (those need all ids equal).
            # RLIMIT_NPROC, counted per real uid, includes us: one more below.
            os.setgroups([])
            os.setresgid(self.gid, 0, 0)
            os.setresuid(self.uid, 0, 0)
        if self.ns_mode:
            # We keep just what managing the scratch tree and the commands
            # needs; everything we exec gets no capabilities at all (empty
            # bounding/ambient/inheritable sets, and for commands sharing our
            # uid 0 of a user namespace a locked SECBIT_NOROOT), can never
            # gain any (no_new_privs), and cannot ptrace or read us.
            nsmount.no_new_privs()
            nsmount.not_dumpable()
            shared = self.uid is None
            nsmount.restrict_caps(nsmount.WORKER_KEEP if shared else nsmount.WORKER_KEEP_SETUID,
                                  noroot=shared)
        self.bash = os.path.basename(self.shell).startswith("bash")
        self.cwd_fd = 200 if self.bash else 9
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
                    "HOME": self.scratch, "LANG": "C.UTF-8",
                    "TERM": "dumb", "TMPDIR": self.tmp, "SHELL": self.shell,
                    "USER": "sandbox", "LOGNAME": "sandbox"}
        self.env.update(msg.get("env") or {})
        if self.ns_mode:
            os.chmod(self.tmp, 0o1777)
        if self.uid is not None:
            os.chown(self.scratch, self.uid, self.gid)
        self.cache = {}  # digest -> target_map: snapshots we can restore by digest
        self.baseline = self._remember(fsdiff.entries_from_wire(msg.get("fixture") or []))
        self._restore(self.baseline)
        return {"ok": True, "pid": os.getpid(), "ns_mode": self.ns_mode, "state_digest": self.digest}

    def _remember(self, entries):
        """Cache a snapshot by digest (LRU, ~64 MiB of content, baseline pinned)."""
        target = fssync.target_map(entries)
        key = fsdiff.digest_items((p, k, m, s) for p, (k, m, _, s) in target.items())
        self.cache.pop(key, None)
        self.cache[key] = target
        size = lambda t: sum(len(v[2]) for v in t.values() if v[0] == "file")  # noqa: E731
        while len(self.cache) > 2 and (len(self.cache) > 16 or sum(map(size, self.cache.values())) > 64 << 20):
            oldest = next(k for k in self.cache if k != getattr(self, "baseline", None))
            del self.cache[oldest]
        return key

    def _restore(self, key, cwd=None):
        """Scratch := cached snapshot ``key``, /tmp emptied, leftovers killed.
        Incremental (fssync); a full rewrite if that fails or disagrees."""
        self.kill_all()
        self.index = fsdiff.scan(self.scratch, self.index)
        if fsdiff.index_digest(self.index) != key:
            target = self.cache[key]
            try:
                fssync.sync_tree(self.scratch, target, self.index, self.uid, self.gid)
                self.index = fsdiff.scan(self.scratch, self.index)
            except OSError:
                self.index = {}
            if fsdiff.index_digest(self.index) != key:  # belt and braces
                fsdiff.clear_dir(self.scratch, 0o755)
                fsdiff.write_entries(self.scratch, [(p, k, m, c) for p, (k, m, c, _) in target.items()],
                                     self.uid, self.gid)
                self.index = fsdiff.scan(self.scratch)
        if os.listdir(self.tmp):
            fsdiff.clear_dir(self.tmp, 0o1777 if self.ns_mode else 0o700)
        self.digest = fsdiff.index_digest(self.index)
        self.cwd = cwd if self.persist_cwd else None

    def op_reset(self, msg):
        self._restore(self.baseline)
        return {"ok": True, "state_digest": self.digest}

    def op_restore(self, msg):
        """{digest} alone restores a snapshot sent before; {entries} sends it."""
        if "entries" in msg:
            key = self._remember(fsdiff.entries_from_wire(msg["entries"]))
        else:
            key = msg["digest"]
            if key not in self.cache:
                return {"ok": True, "missing": True}
            self.cache[key] = self.cache.pop(key)  # most recently used
        self._restore(key, msg.get("cwd"))
        return {"ok": True, "state_digest": self.digest, "key": key}

    def op_snapshot(self, msg):
        return {"ok": True, "entries": fsdiff.entries_to_wire(fsdiff.read_entries(self.scratch)),
                "cwd": self.cwd}

    def op_ping(self, msg):
        return {"ok": True, "pid": os.getpid()}

    # ------------------------------------------------------ process control
    def reap(self):
        """Collect exited children (all orphans too, when we are PID 1).
        Returns how many of them were not the command's main process."""
        others = 0
        while True:
            try:
                pid, status = os.waitpid(-1 if self.ns_mode else self.main_pid, os.WNOHANG)
            except ChildProcessError:
                return others
            if pid == 0:
                return others
            if pid == self.main_pid:
                self.main_status = status
                if not self.ns_mode:
                    return others
            else:
                others += 1

    def kill_all(self):
        """SIGKILL every process of the sandbox but us (or the command's process
        group, without a pid namespace) and reap them."""
        if not (self.ns_mode and os.getpid() == 1):
            if getattr(self, "main_pid", None) and self.main_status is None:
                try:
                    os.killpg(self.main_pid, signal.SIGKILL)
                except OSError:
                    pass
            return
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                os.kill(-1, signal.SIGKILL)  # atomic w.r.t. fork: a bomb cannot outrun it
            except ProcessLookupError:
                return
            self.killed += self.reap()
            time.sleep(0.0005)

    def _script(self, cmd, limits):
        """The shell script: limits (bash: ``ulimit``, parsed before the user's
        text so nothing of it runs unlimited), a trap reporting the final
        cwd on a private fd, then the command itself on the same line so
        bash's line numbers in error messages stay as in a bare shell."""
        # An EXIT trap stops bash from exec-ing a simple command in place (one
        # fork more per command), so it is only set when the text could change
        # the shell's directory: cd/pushd/popd, or anything that could produce
        # them (expansions, eval, source, aliases).  Otherwise cwd = start dir.
        trap = f"trap 'printf \"%s\\0\" \"$PWD\" >&{self.cwd_fd}' EXIT; " if CWD_MAY_CHANGE.search(cmd) else ""
        if not self.bash:
            return trap + cmd
        cpu = max(1, int(limits["cpu_seconds"] + 0.999))
        nproc = int(limits["max_processes"]) + (self.uid is not None and self.ns_mode)
        return (f"ulimit -t {cpu + 1} -v {int(limits['memory_mb']) * 1024} "
                f"-u {nproc} -f {int(limits['max_file_mb']) * 1024} "
                f"-n {int(limits['max_open_files'])} -c 0 && ulimit -S -t {cpu} || exit 126; "
                + trap + cmd)

    def _spawn(self, cmd, limits, fds, start_dir):
        """Start ``shell -c script`` in its own session; returns its pid.

        bash: posix_spawn (vfork speed).  The command's uid is our *real*
        uid (see op_init), so POSIX_SPAWN_RESETIDS is the whole privilege
        drop: effective ids := real ids, and exec() then leaves it no
        capabilities (empty bounding/ambient/inheritable sets).  Other shells
        take the slower subprocess path with a preexec_fn for the rlimits.
        """
        argv = [self.shell, "-c", self._script(cmd, limits)]
        env = dict(self.env, PWD=start_dir)
        if not self.bash:
            def preexec():
                os.dup2(fds[3], self.cwd_fd)  # inheritable; all our own fds are CLOEXEC
                _set_rlimits(limits)
            kw = {} if self.uid is None else dict(user=self.uid, group=self.gid, extra_groups=[])
            proc = subprocess.Popen(argv, stdin=fds[0], stdout=fds[1], stderr=fds[2], cwd=start_dir,
                                    env=env, start_new_session=True, preexec_fn=preexec,
                                    close_fds=False, **kw)
            proc.returncode = 0  # we reap it ourselves; keep subprocess from trying
            return proc.pid
        os.chdir(start_dir)  # inherited; posix_spawn has no chdir action
        dup2 = os.POSIX_SPAWN_DUP2
        return os.posix_spawn(
            self.shell, argv, env, setsid=True, resetids=self.uid is not None,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT), setsigmask=(),
            file_actions=[(dup2, fds[0], 0), (dup2, fds[1], 1), (dup2, fds[2], 2),
                          (dup2, fds[3], self.cwd_fd)])

    # --------------------------------------------------------------- run
    def op_run(self, msg):
        limits = dict(self.limits, **(msg.get("limits") or {}))
        cmd = msg["cmd"]
        start_dir = self.cwd if (self.persist_cwd and self.cwd) else self.scratch
        if not os.path.isdir(start_dir):
            start_dir = self.scratch
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        cwd_r, cwd_w = os.pipe()
        stdin_data = msg.get("stdin")
        if stdin_data is not None:
            in_r, in_w = os.pipe()
            stdin_data = memoryview(stdin_data.encode())
        else:
            in_r, in_w = os.open(os.devnull, os.O_RDONLY), None
        self.main_status, self.killed = None, 0
        full_before = [self._full(p) for p in (self.scratch, self.tmp)]
        t0 = time.monotonic()
        try:
            pid = self._spawn(cmd, limits, (in_r, out_w, err_w, cwd_w), start_dir)
        except (OSError, subprocess.SubprocessError) as exc:
            for fd in (in_r, out_w, err_w, cwd_w, out_r, err_r, cwd_r, in_w):
                if fd is not None:
                    os.close(fd)
            return {"ok": True, "exit_code": 127, "signal": None, "stdout": "",
                    "stderr": f"sandbox: cannot start {self.shell}: {exc}\n", "timed_out": False,
                    "limits": [], "truncated": False, "wall_s": 0.0, "cwd": None,
                    "side_effects": fsdiff.diff(self.index, self.index), "state_digest": self.digest}
        self.main_pid = pid
        for fd in (in_r, out_w, err_w, cwd_w):
            os.close(fd)

        bufs = {out_r: bytearray(), err_r: bytearray(), cwd_r: bytearray()}
        cap, kill_at = limits["max_output_bytes"], limits["output_kill_bytes"]
        total, truncated, timed_out, hit = 0, False, False, []
        poller = select.poll()
        for fd in bufs:
            poller.register(fd, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        poller.register(self.rfd, 0)  # POLLHUP only: the host went away mid-command
        if in_w is not None:
            os.set_blocking(in_w, False)
            poller.register(in_w, select.POLLOUT)
        open_fds = set(bufs)
        deadline = t0 + limits["wall_seconds"]
        grace_end = None  # set once the main process is gone

        self.reap()
        while open_fds or self.main_status is None:
            now = time.monotonic()
            if self.main_status is not None:
                if grace_end is None:
                    if self.kill_background:
                        self.kill_all()
                    grace_end = now + 0.2
                if now >= grace_end:
                    break  # someone outside our reach still holds a pipe
            if now >= deadline and not timed_out:
                timed_out = True
                self.kill_all()
                if self.main_status is None:
                    self.reap()
                deadline = now + 1.0  # finish draining
                continue
            if timed_out and now >= deadline:
                break
            wait = min(deadline, grace_end or deadline) - now
            for fd, ev in poller.poll(max(0, int(wait * 1000) + 1)):
                if fd == self.rfd:
                    if ev & (select.POLLHUP | select.POLLERR):
                        self.kill_all()
                        os._exit(0)  # nobody to answer; as PID 1 this ends the sandbox
                    continue
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                    self.reap()
                elif fd == in_w:
                    try:
                        n = os.write(in_w, stdin_data[:CHUNK])
                        stdin_data = stdin_data[n:]
                    except OSError:
                        stdin_data = b""
                    if not stdin_data:
                        poller.unregister(in_w)
                        os.close(in_w)
                        in_w = None
                else:
                    data = os.read(fd, CHUNK)
                    if not data:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                        continue
                    buf = bufs[fd]
                    if fd == cwd_r:
                        if len(buf) < 65536:
                            buf += data
                        continue
                    total += len(data)
                    room = cap - len(buf)
                    if room > 0:
                        buf += data[:room]
                    if len(data) > room:
                        truncated = True
                    if total > kill_at and "output" not in hit:
                        hit.append("output")
                        self.kill_all()
            if self.main_status is None:
                self.reap()
        wall = time.monotonic() - t0
        if self.main_status is None:  # still alive after all (none backend only)
            self.kill_all()
            try:
                _, self.main_status = os.waitpid(pid, 0)
            except ChildProcessError:
                self.main_status = 9
        for fd in list(bufs) + ([in_w] if in_w is not None else []):
            os.close(fd)
        if self.ns_mode and self.kill_background:
            self.kill_all()

        status = self.main_status
        code = os.waitstatus_to_exitcode(status)
        sig = -code if code < 0 else None
        stdout = bufs[out_r].decode("utf-8", "replace")
        stderr = bufs[err_r].decode("utf-8", "replace")
        cwd_parts = [p for p in bytes(bufs[cwd_r]).split(b"\0") if p]
        if not CWD_MAY_CHANGE.search(cmd):
            cwd = start_dir if sig is None else None
        else:
            cwd = os.fsdecode(cwd_parts[-1]) if cwd_parts else None
        if self.persist_cwd and cwd and os.path.isdir(cwd):
            self.cwd = cwd

        limits_hit = self._limits_hit(code, sig, stderr, timed_out, truncated, full_before) + hit
        new_index = fsdiff.scan(self.scratch, self.index)
        effects = fsdiff.diff(self.index, new_index)
        self.index = new_index
        self.digest = fsdiff.index_digest(new_index)
        return {
            "ok": True, "exit_code": code, "signal": signal.Signals(sig).name if sig else None,
            "stdout": stdout, "stderr": stderr, "timed_out": timed_out,
            "limits": list(dict.fromkeys(limits_hit)), "truncated": truncated,
            "wall_s": wall, "side_effects": effects, "cwd": cwd, "state_digest": self.digest,
            "background_killed": self.killed,
        }

    def _limits_hit(self, code, sig, stderr, timed_out, truncated, full_before):
        hit = []
        if timed_out:
            hit.append("wall_time")
        if sig == signal.SIGXCPU or code == 128 + signal.SIGXCPU:
            hit.append("cpu_time")
        if sig == signal.SIGXFSZ or code == 128 + signal.SIGXFSZ or "File too large" in stderr:
            hit.append("file_size")
        if code != 0 and any(m in stderr for m in MEMORY_MARKERS):
            hit.append("memory")
        if "fork" in stderr and "Resource temporarily unavailable" in stderr:
            hit.append("processes")
        filled = [self._full(p) and not was for p, was in zip((self.scratch, self.tmp), full_before)]
        if "No space left on device" in stderr or any(filled):
            hit.append("disk_space")
        if truncated:
            hit.append("output")
        return hit

    @staticmethod
    def _full(path):
        try:
            st = os.statvfs(path)
        except OSError:
            return False
        return st.f_blocks > 0 and st.f_bavail <= 1

    # -------------------------------------------------------------- loop
    def serve(self):
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.main_pid, self.main_status, self.killed = None, None, 0
        self.initial_rlimits = self._rlimits()
        while True:
            try:
                msg = _recv(self.rfd)
            except (OSError, ValueError):
                msg = None
            if msg is None or msg.get("op") == "exit":
                self.kill_all()
                if msg is not None:
                    _send(self.wfd, {"ok": True})
                return
            if msg.get("op") != "init" and self._tampered():
                # Set before this request (a background process): nothing ran.
                _send(self.wfd, {"ok": False, "restart": True, "error": self._tampered()})
                return
            handler = getattr(self, "op_" + str(msg.get("op")), None)
            try:
                reply = handler(msg) if handler else {"ok": False, "error": f"unknown op {msg.get('op')!r}"}
            except Exception as exc:  # noqa: BLE001 - the host decides what to do
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            why = self._tampered()
            if why:  # this command did it: report its result, then make way for a fresh worker
                reply["worker_tampered"] = why
                _send(self.wfd, reply)
                return
            _send(self.wfd, reply)

    RLIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_NOFILE",
               "RLIMIT_NPROC", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_MEMLOCK")

    def _rlimits(self):
        return [resource.getrlimit(getattr(resource, n)) for n in self.RLIMITS if hasattr(resource, n)]

    def _tampered(self):
        """Where commands share our uid (a user namespace as a normal user),
        prlimit(2) on PID 1 is allowed to them and we cannot undo a lowered
        hard limit: notice it, so that the host replaces us."""
        if self._rlimits() != self.initial_rlimits:
            return "a command changed the worker's resource limits (prlimit); worker replaced"
        return None


def main():
    # No Python-level handler but SIGCHLD's: as PID 1 of the sandbox the
    # kernel then drops every signal a command sends us (kill -INT 1 would
    # otherwise raise KeyboardInterrupt where commands share our uid).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Keep the protocol on private descriptors; fds 0/1 become /dev/null so
    # nothing we start can scribble on the channel by accident.
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    Worker(rfd, wfd).serve()


if __name__ == "__main__":
    main()
