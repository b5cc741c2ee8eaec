"""Hostile command corpus: every attack is contained, reported, and harmless.

Each test runs one class of hostile command in a persistent sandbox (once per
working backend: bwrap, unshare) with short limits (2 s wall, 1 s CPU,
256 MiB address space, 32 processes, 4 MiB files, 16 MiB scratch, 4 KiB
output) and then checks the same four things (``assert_contained``):

  * the call returned within its wall limit plus a little slack;
  * the host is unchanged: a secret file (and its directory) that the test
    created in a host temp dir outside the scratch area has the same content,
    mode and mtime, and two canary host processes (``sleep`` and a
    ``python3``) are still alive, as is this test process;
  * the sandbox still works: a normal command succeeds on the same worker
    (not a restarted one) and no process of the attack is left over.

What each case proves:

fork bomb        ``:(){ :|:& };:`` and a version that keeps the shell alive:
                 RLIMIT_NPROC (for a dedicated unprivileged uid) caps the
                 number of processes (sampled from the host during the
                 attack), the report says "processes" (and "wall_time"), and
                 every bomb process is killed when the command ends.
rm -rf /         ``rm -rf / --no-preserve-root`` and ``rm -rf ~ /*`` only
                 reach the private scratch and /tmp: everything else is a
                 read-only mount, the host's files are not in the sandbox at
                 all; afterwards /usr is intact and reset() restores the fixture.
network          a TCP connect to a server this test listens on at 127.0.0.1
                 fails and the server sees no connection; name lookups
                 (``getent hosts``, ``curl``) fail; the only interface is lo.
host secrets     the test's secret file, /root, /etc/shadow and /work are not
                 visible (absent, not merely unreadable).
filling the disk ``dd``/``yes > file`` stop at RLIMIT_FSIZE ("file_size"); many
                 files stop at the size-limited scratch tmpfs ("disk_space");
                 nothing is written to the host disk.
endless output   ``yes`` (stdout or stderr) is truncated at the output cap and
                 killed soon after ("output"), long before the wall limit.
sleep forever    ``sleep 1000`` is killed at the wall limit ("wall_time").
killing parent   ``kill -9 $PPID``, ``kill -9 -1``, ``pkill python``,
                 ``pkill -9 -f worker``, ``kill -STOP 1``, and sabotage with
                 ``prlimit --pid 1`` / ``renice`` / ``strace -p 1``: the worker is
                 PID 1 of the sandbox's pid namespace (the kernel drops signals
                 to it from inside), keeps effective uid 0 and is not dumpable,
                 so none of these reach it (it is not restarted) nor any host
                 process (those are not even visible).
memory hog       a Python allocating 4 GiB fails under RLIMIT_AS ("memory").
CPU spin         ``while :; do :; done`` gets SIGXCPU from RLIMIT_CPU ("cpu_time").

Total runtime is a few seconds per backend.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from omnigym.sandbox import Sandbox, SandboxConfig, available_backends

BACKENDS = available_backends()
pytestmark = pytest.mark.skipif(not BACKENDS, reason="neither bubblewrap nor unshare works here")

WALL = 2.0
SLACK = 1.5  # kill, drain, scan and reply after the wall limit
LIMITS = dict(wall_seconds=WALL, cpu_seconds=1, memory_mb=256, max_processes=32, max_file_mb=4,
              scratch_mb=16, tmp_mb=8, max_output_bytes=4096, reply_slack_seconds=3)
FIXTURE = {"notes.txt": "keep me\n", "dir/data.csv": "a,b\n1,2\n"}


class Host:
    """Things outside the sandbox that must survive every attack."""

    def __init__(self, root):
        self.dir = root / "host-secrets"
        self.dir.mkdir()
        self.secret = self.dir / "secret.txt"
        self.secret.write_text("TOP-SECRET-TOKEN\n")
        self.secret.chmod(0o644)
        self.canaries = [
            subprocess.Popen(["sleep", "300"]),
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]),
        ]
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.setblocking(False)
        self.port = self.server.getsockname()[1]
        self.fingerprint = self._fingerprint()

    def _fingerprint(self):
        st = self.secret.stat()
        return (self.secret.read_text(), st.st_mode, st.st_mtime_ns, sorted(os.listdir(self.dir)))

    def check_unchanged(self):
        assert self._fingerprint() == self.fingerprint, "host secret file or directory changed"
        assert all(p.poll() is None for p in self.canaries), "a host process was killed"
        with pytest.raises(BlockingIOError):
            self.server.accept()  # nobody ever connected

    def close(self):
        for p in self.canaries:
            p.kill()
            p.wait()
        self.server.close()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("hostile"))
    yield h
    h.close()


@pytest.fixture(scope="module", params=BACKENDS)
def sb(request):
    with Sandbox(FIXTURE, SandboxConfig(backend=request.param, **LIMITS)) as box:
        yield box


@pytest.fixture
def box(sb, host):
    sb.reset()
    restarts = sb.restarts
    yield sb
    assert sb.restarts == restarts, "the attack killed the worker"


def attack(sb, command, **kw):
    t = time.monotonic()
    r = sb.run(command, **kw)
    elapsed = time.monotonic() - t
    assert elapsed < kw.get("wall_seconds", WALL) + SLACK, f"{command!r} took {elapsed:.1f}s"
    assert not r.worker_restarted
    return r


def assert_contained(sb, host):
    host.check_unchanged()
    r = sb.run("echo ok; cat /scratch/notes.txt 2>/dev/null || true")
    assert r.exit_code == 0 and r.stdout.startswith("ok\n") and not r.worker_restarted
    assert len(sb.processes()) == 2, sb.processes()  # launcher + worker, nothing else


# ---------------------------------------------------------------- attacks
def test_fork_bomb(box, host):
    r = attack(box, ":(){ :|:& };:")
    assert r.exit_code == 0  # the shell returns at once, the bomb runs in the background...
    assert len(box.processes()) == 2  # ...and was killed when the command ended

    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], len(box.processes()))
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    try:
        r = attack(box, "bomb(){ bomb|bomb& }; bomb; sleep 10")
    finally:
        stop.set()
        t.join()
    assert r.timed_out and "processes" in r.limits and r.limit == "processes"
    assert r.background_killed > 0
    assert 2 < peak[0] <= LIMITS["max_processes"] + 2, peak[0]  # + launcher and worker
    assert_contained(box, host)


@pytest.mark.parametrize("command", ["rm -rf / --no-preserve-root", "rm -rf ~ /*"])
def test_rm_rf_everything(box, host, command):
    r = attack(box, command)
    assert r.exit_code != 0 or r.timed_out  # most of it is read-only
    assert r.timed_out or "Read-only file system" in r.stderr or "Permission denied" in r.stderr
    check = box.run("ls /usr/bin/ls /bin/sh /etc/passwd && echo intact")
    assert check.stdout.endswith("intact\n")
    box.reset()
    assert box.run("cat notes.txt").stdout == "keep me\n"
    assert_contained(box, host)


def test_network_is_unreachable(box, host):
    r = attack(box, f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {host.port}), timeout=1)\"")
    assert r.exit_code != 0
    assert "refused" in r.stderr or "unreachable" in r.stderr
    r = attack(box, "python3 -c 'import socket; print([n for _, n in socket.if_nameindex()])'")
    assert r.stdout.strip() == "['lo']"
    r = attack(box, "getent hosts example.com")
    assert r.exit_code != 0 and r.stdout == ""
    if shutil.which("curl"):
        r = attack(box, "curl -sS -m 1 http://example.com/ && echo REACHED")
        assert r.exit_code != 0 and "REACHED" not in r.stdout
    assert_contained(box, host)


def test_host_files_are_not_visible(box, host):
    r = attack(box, f"cat {host.secret}; ls {host.dir} /root /work /home; cat /etc/shadow; "
                    "find / -path /proc -prune -o -name 'secret*' -print 2>/dev/null; ls /")
    assert "TOP-SECRET" not in r.stdout + r.stderr
    assert r.stderr.count("No such file or directory") >= 5  # absent, not just unreadable
    assert "secret.txt" not in r.stdout
    top = set(r.stdout.split())
    assert {"bin", "etc", "usr", "tmp", "proc", "scratch"} <= top
    assert not top & {"root", "home", "work", "boot", "srv", "opt", "mnt"}
    assert_contained(box, host)


def test_filling_the_disk(box, host):
    max_file = LIMITS["max_file_mb"] * 1024 * 1024
    r = attack(box, "dd if=/dev/zero of=big bs=1M count=1000")
    assert r.limit == "file_size" and r.signal == "SIGXFSZ"
    r = attack(box, "yes > y.txt")
    assert r.limit == "file_size"
    sizes = box.snapshot().files()
    assert len(sizes["big"]) <= max_file and len(sizes["y.txt"]) <= max_file
    r = attack(box, "for i in $(seq 20); do head -c 3M /dev/zero > f$i; done")
    assert r.limit == "disk_space"
    total = sum(len(c) for c in box.snapshot().files().values())
    assert total <= LIMITS["scratch_mb"] * 1024 * 1024
    r = attack(box, "for i in 1 2 3 4; do head -c 3M /dev/zero > /tmp/b$i; done")
    assert r.limit == "disk_space" and "No space left" in r.stderr  # /tmp is limited too
    assert_contained(box, host)


@pytest.mark.parametrize("command", ["yes", "yes >&2", "cat /dev/urandom"])
def test_endless_output(box, host, command):
    t = time.monotonic()
    r = attack(box, command)
    assert time.monotonic() - t < WALL  # killed for its output, not by the wall clock
    assert r.truncated and r.limit == "output" and not r.timed_out
    assert len((r.stdout + r.stderr).encode()) <= 2 * LIMITS["max_output_bytes"] + 16
    assert_contained(box, host)


def test_sleeping_forever(box, host):
    r = attack(box, "sleep 1000")
    assert r.timed_out and r.limit == "wall_time" and r.exit_code == -signal.SIGKILL
    r = attack(box, "exec 1>&- 2>&-; sleep 1000")  # closes its pipes: still killed
    assert r.timed_out
    assert_contained(box, host)


@pytest.mark.parametrize("command", ["kill -9 $PPID; echo survived", "kill -9 -1; echo survived",
                                     "pkill python; echo survived", "pkill -9 -f worker; echo survived",
                                     "kill -STOP 1; kill -9 1; kill -INT 1; kill -CHLD 1; echo survived",
                                     "prlimit --pid 1 --nofile=3:3 --nproc=0:0 --as=1000000:1000000; "
                                     "renice -n 19 -p 1; timeout 1 strace -p 1; echo survived"])
def test_killing_the_parent(box, host, command):
    r = attack(box, command)
    assert r.stdout.endswith("survived\n") or r.signal == "SIGKILL"  # kill -1 may hit the shell
    if command.startswith("prlimit") and shutil.which("prlimit"):
        assert "Operation not permitted" in r.stderr
    assert_contained(box, host)


def test_memory_hog(box, host):
    r = attack(box, "python3 -c 'x = bytearray(4 * 1024**3)'")
    assert r.exit_code == 1 and r.limit == "memory" and "MemoryError" in r.stderr
    assert_contained(box, host)


def test_cpu_spin(box, host):
    # Wall time well above the CPU limit: on a loaded machine the spinner gets
    # a fraction of a core, and it must still be the CPU limit that stops it.
    r = attack(box, "while :; do :; done", wall_seconds=10)
    assert r.limit == "cpu_time" and r.signal == "SIGXCPU" and not r.timed_out
    assert_contained(box, host)
