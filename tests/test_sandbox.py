"""The command sandbox: running, fixtures, side effects, snapshots, backends.

Hostile commands (fork bombs, rm -rf /, network, ...) are in
test_sandbox_hostile.py; this file checks the everyday contract.
"""

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest

from omnigym.sandbox import (CommandResult, Sandbox, SandboxConfig, SandboxUnavailable, Snapshot,
                             UnsandboxedExecutionRefused, available_backends, run_once)
from omnigym.sandbox.sandbox import sandbox_processes

BACKENDS = available_backends()
needs_sandbox = pytest.mark.skipif(not BACKENDS, reason="neither bubblewrap nor unshare works here")
FAST = dict(wall_seconds=5, reply_slack_seconds=3)

FIXTURE = {
    "notes.txt": "alpha\nbeta\ngamma\n",
    "bin/run.sh": {"content": "#!/bin/sh\necho run\n", "mode": 0o755},
    "secret/key": {"content": b"\x00\x01key", "mode": 0o600},
    "empty/": None,
    "link": {"symlink": "notes.txt"},
}


@pytest.fixture
def sb():
    with Sandbox(FIXTURE, SandboxConfig(**FAST)) as box:
        yield box


def _gone(pids, timeout=3.0):
    """Wait until none of pids is a live process (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in pids:
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                        alive.append(p)
            except OSError:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


# ------------------------------------------------------------------ basics
@needs_sandbox
def test_run_outputs_and_exit_codes(sb):
    r = sb.run("echo out; echo err >&2; exit 3")
    assert isinstance(r, CommandResult)
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert not r.timed_out and r.limit is None and not r.truncated and r.signal is None
    assert r.wall_s < 5
    assert sb.run("true").ok
    r = sb.run("no-such-command-xyz")
    assert r.exit_code == 127 and "not found" in r.stderr
    r = sb.run("kill -TERM $$")
    assert r.exit_code == -signal.SIGTERM and r.signal == "SIGTERM"


@needs_sandbox
def test_stdin(sb):
    assert sb.run("tr a-z A-Z", stdin="hello\n").stdout == "HELLO\n"
    big = "x" * 300_000  # larger than a pipe buffer
    assert sb.run("wc -c", stdin=big).stdout.strip() == "300000"
    assert sb.run("cat").stdout == ""  # no stdin: EOF at once, never blocks


@needs_sandbox
def test_fixture_seeding_with_permissions(sb):
    r = sb.run("stat -c '%a %F %n' notes.txt bin/run.sh secret/key empty link; head -1 link; ./bin/run.sh; pwd")
    lines = r.stdout.splitlines()
    assert lines[:5] == ["644 regular file notes.txt", "755 regular file bin/run.sh",
                         "600 regular file secret/key", "755 directory empty",
                         "777 symbolic link link"]
    assert lines[5:] == ["alpha", "run", sb.workdir]
    assert sb.run("od -An -tx1 secret/key").stdout.split() == ["00", "01", "6b", "65", "79"]


@needs_sandbox
def test_fixture_from_host_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("from host\n")
    (tmp_path / "x.sh").write_text("echo x\n")
    (tmp_path / "x.sh").chmod(0o700)
    with Sandbox(str(tmp_path), SandboxConfig(**FAST)) as box:
        r = box.run("cat d/f.txt; stat -c %a x.sh")
        assert r.stdout == "from host\n700\n"
        box.run("rm -r d; echo new > n")
    assert (tmp_path / "d" / "f.txt").read_text() == "from host\n"  # a copy: host untouched
    assert not (tmp_path / "n").exists()


def test_bad_fixture_paths_are_refused():
    with pytest.raises(ValueError, match="without '..'"):
        Sandbox({"../escape": "x"}, SandboxConfig(**FAST))
    with pytest.raises(ValueError, match="backend"):
        SandboxConfig(backend="docker")


# ---------------------------------------------------------- side effects
@needs_sandbox
def test_side_effect_digest(sb):
    r = sb.run("echo new > made.txt; mkdir -p d/e; rm notes.txt; echo more >> bin/run.sh; "
               "chmod 640 secret/key; chmod 700 empty")
    fx = r.side_effects
    assert fx.created == ["d/", "d/e/", "made.txt"]
    assert fx.deleted == ["notes.txt"]
    assert fx.modified == ["bin/run.sh"]
    assert fx.mode_changed == ["empty/", "secret/key"]
    assert set(fx.hashes) == {"made.txt", "bin/run.sh"}
    assert len(fx.hashes["made.txt"]) == 64
    # nothing changed -> empty digest, same state
    r2 = sb.run("cat made.txt; touch -d '2001-01-01' made.txt")
    assert not r2.side_effects, r2.side_effects  # same content, same mode: not modified
    assert r2.state_digest == r.state_digest
    r3 = sb.run("echo other > made.txt")
    assert r3.side_effects.modified == ["made.txt"] and r3.state_digest != r.state_digest


@needs_sandbox
def test_cwd_reported_and_reset_per_command(sb):
    r = sb.run("mkdir -p sub/dir && cd sub/dir && pwd")
    assert r.cwd == f"{sb.workdir}/sub/dir" and r.stdout.strip() == r.cwd
    assert sb.run("pwd").stdout.strip() == sb.workdir  # ShIOEnv: commands are independent
    assert sb.run("ls").cwd == sb.workdir


@needs_sandbox
def test_persist_cwd_option():
    with Sandbox(None, SandboxConfig(persist_cwd=True, **FAST)) as box:
        box.run("mkdir a && cd a")
        r = box.run("pwd")
        assert r.stdout.strip() == f"{box.workdir}/a" and r.cwd == f"{box.workdir}/a"
        snap = box.snapshot()
        box.run("cd /")
        box.restore(snap)
        assert box.run("pwd").stdout.strip() == f"{box.workdir}/a"


# ------------------------------------------------------ snapshot / reset
@needs_sandbox
def test_snapshot_restore_round_trip(sb):
    sb.run("echo 1 > one; chmod 751 one; mkdir -p deep/er; ln -s one deep/l")
    snap = sb.snapshot()
    assert isinstance(snap, Snapshot)
    assert pickle.loads(pickle.dumps(snap)) == snap
    files = snap.files()
    assert files["one"] == b"1\n" and files["secret/key"] == b"\x00\x01key"
    modes = {p: m for p, k, m, _ in snap.entries}
    assert modes["one"] == 0o751
    digest = sb.run("true").state_digest
    assert snap.digest == digest

    after = sb.run("rm -rf one deep; echo junk > junk; chmod 000 secret/key; echo /tmp > /tmp/t")
    assert after.state_digest != digest
    assert sb.restore(snap) == digest
    r = sb.run("cat one; stat -c %a one; readlink deep/l; ls junk; ls /tmp")
    assert r.stdout.splitlines()[:3] == ["1", "751", "one"]
    assert "No such file" in r.stderr and r.state_digest == digest
    # restoring into another sandbox works too (get_state/set_state across envs)
    with Sandbox(None, SandboxConfig(**FAST)) as other:
        assert other.restore(snap) == digest
        assert other.run("cat one").stdout == "1\n"


@needs_sandbox
def test_restore_is_exact_after_tricky_changes():
    """restore() only rewrites what differs; it must still be exact when a
    command hard-links, swaps a directory for a symlink to /, makes fifos
    or chmods everything (the scratch root included) to 000."""
    fixture = {"a": "x", "b": {"content": "x", "mode": 0o600}, "c/d": "y", "e/": None}
    with Sandbox(fixture, SandboxConfig(**FAST)) as box:
        snap = box.snapshot()
        for attack in ["rm b; ln a b; chmod 640 a",
                       "ln a c/hard; echo z >> c/hard",
                       "rm -r c; ln -s / c; mkfifo e/pipe",
                       "chmod 000 a c/d c e; chmod 000 /scratch",
                       "rm -rf ./*; echo new > a; mkdir b"]:
            box.run(attack)
            assert box.restore(snap) == snap.digest, attack
            assert box.snapshot() == snap, attack
            r = box.run("cat a b c/d; stat -c '%a %h %n' a b c/d")
            assert r.stdout == "xxy644 1 a\n600 1 b\n644 1 c/d\n", (attack, r.stdout, r.stderr)
        # a restore by digest (the worker cached the snapshot) and after a restart
        other = box.run("echo other > a").state_digest
        snap2 = box.snapshot()
        assert box.restore(snap) == snap.digest and box.restore(snap2) == other
        for p in [p for p in box.processes() if p != box.launcher_pid]:
            os.kill(p, signal.SIGKILL)
        assert box.restore(snap) == snap.digest
        assert box.run("cat a").stdout == "x"


@needs_sandbox
def test_reset_returns_to_fixture(sb):
    fresh = sb.run("true").state_digest
    sb.run("rm -rf * ; echo x > y; sleep 30 & true")
    assert sb.reset() == fresh
    r = sb.run("ls; cat notes.txt | head -1")
    assert r.stdout == "bin\nempty\nlink\nnotes.txt\nsecret\nalpha\n"
    assert r.state_digest == fresh and not r.side_effects


# ----------------------------------------------------------------- limits
@needs_sandbox
def test_output_truncation(sb):
    r = sb.run("head -c 100000 /dev/zero | tr '\\0' a; echo done >&2", max_output_bytes=1000)
    assert r.truncated and r.limit == "output" and r.exit_code == 0
    assert r.stdout == "a" * 1000 and r.stderr == "done\n"
    assert not sb.run("echo short").truncated


@needs_sandbox
def test_wall_limit_per_call(sb):
    t = time.monotonic()
    r = sb.run("sleep 30", wall_seconds=0.5)
    assert r.timed_out and r.limit == "wall_time" and r.exit_code == -signal.SIGKILL
    assert time.monotonic() - t < 3
    with pytest.raises(TypeError, match="unknown limit"):
        sb.run("true", wal_seconds=1)


@needs_sandbox
def test_other_shell_and_missing_shell():
    with Sandbox(None, SandboxConfig(shell="/bin/sh", max_file_mb=1, **FAST)) as box:
        r = box.run("cd /tmp && echo $0; head -c 2000000 /dev/zero > /scratch/f")
        assert r.stdout == "/bin/sh\n" and r.cwd == "/tmp" and r.limit == "file_size"
    with Sandbox(None, SandboxConfig(shell="/bin/no-such-shell", **FAST)) as box:
        r = box.run("echo hi")
        assert r.exit_code == 127 and "cannot start" in r.stderr


# ------------------------------------------------------- refusal, backends
def test_unsandboxed_execution_needs_the_loud_option(tmp_path):
    with pytest.raises(UnsandboxedExecutionRefused, match="allow_unsandboxed_host_execution=True"):
        Sandbox(None, SandboxConfig(backend="none"))
    cfg = SandboxConfig(backend="none", allow_unsandboxed_host_execution=True, **FAST)
    with Sandbox({"f": "x"}, cfg) as box:
        assert box.backend == "none"
        r = box.run("cat f; echo y > g")
        assert r.stdout == "x" and r.side_effects.created == ["g"]


def test_unknown_or_broken_backend_fails_with_a_fix(monkeypatch):
    from omnigym.sandbox import backends
    monkeypatch.setattr(backends, "_probe_cache", {"bwrap": "bwrap not found on PATH",
                                                   "unshare": "unshare: no user namespaces"})
    with pytest.raises(SandboxUnavailable, match="allow_unsandboxed_host_execution"):
        Sandbox(None, SandboxConfig())
    with pytest.raises(SandboxUnavailable, match="bwrap not found"):
        Sandbox(None, SandboxConfig(backend="bwrap"))


@needs_sandbox
def test_auto_prefers_bwrap(sb):
    assert sb.backend == BACKENDS[0]
    assert "bwrap" not in BACKENDS or sb.backend == "bwrap"


@pytest.mark.parametrize("backend", ["bwrap", "unshare"])
def test_backend_isolation_basics(backend, tmp_path):
    if backend not in BACKENDS:
        pytest.skip(f"{backend} does not work on this machine")
    secret = tmp_path / "host-secret.txt"
    secret.write_text("TOP-SECRET")
    with Sandbox({"a": "1"}, SandboxConfig(backend=backend, **FAST)) as box:
        assert box.backend == backend
        r = box.run(f"cat {secret}; ls /root /work /home; echo x > /usr/x; echo y > /etc/passwd; "
                    "python3 -c 'import socket; print(socket.if_nameindex())'; "
                    "grep CapEff /proc/self/status; ls /")
        out = r.stdout
        assert "TOP-SECRET" not in out + r.stderr
        assert "No such file" in r.stderr and "Read-only file system" in r.stderr
        assert "[(1, 'lo')]" in out  # no network interface but loopback
        assert "CapEff:\t0000000000000000" in out
        assert set(out.split("\n", 2)[2].split()) >= {"bin", "etc", "proc", "tmp", "usr"}
        assert not {"root", "home", "work"} & set(out.split())
        assert box.run("cat a").stdout == "1"
    assert secret.read_text() == "TOP-SECRET"


@needs_sandbox
def test_run_once(tmp_path):
    r = run_once("cat f; echo z > g", {"f": "y"}, SandboxConfig(**FAST))
    assert r.stdout == "y" and r.side_effects.created == ["g"]


# --------------------------------------------------------------- lifecycle
@needs_sandbox
def test_no_leftover_processes_after_close():
    box = Sandbox(None, SandboxConfig(**FAST))
    box.run("sleep 100 & setsid sleep 100 > /dev/null 2>&1 &")  # would-be leftovers
    launcher = box.launcher_pid
    pids = box.processes()
    assert launcher in pids and len(pids) >= 2
    ns = {os.readlink(f"/proc/{p}/ns/pid") for p in pids} - {os.readlink("/proc/self/ns/pid")}
    box.close()
    assert box.closed and box.processes() == []
    assert _gone(pids) == []
    assert sandbox_processes(launcher) == []
    for p in os.listdir("/proc"):  # nothing left in the sandbox's pid namespace
        if p.isdigit():
            try:
                inside = os.readlink(f"/proc/{p}/ns/pid") in ns
            except OSError:  # vanished, or not ours to inspect (host init)
                continue
            assert not inside or _gone([int(p)]) == []
    with pytest.raises(Exception, match="closed"):
        box.run("true")


@needs_sandbox
def test_background_processes_are_killed_after_each_command(sb):
    r = sb.run("sleep 100 & (setsid sleep 100 &) ; echo started")
    assert r.stdout == "started\n" and r.background_killed >= 2
    assert len(sb.processes()) == 2  # launcher + worker


@needs_sandbox
def test_worker_killed_from_outside_is_restarted(sb):
    sb.run("echo changed > notes.txt")
    worker = [p for p in sb.processes() if p != sb.launcher_pid]
    for p in worker:
        os.kill(p, signal.SIGKILL)
    _gone(worker)
    r = sb.run("cat notes.txt")
    assert r.worker_restarted and sb.restarts == 1
    if r.exit_code == -signal.SIGKILL:
        # On a loaded machine the launcher may not have exited yet: the command
        # met the dead worker, is reported as such, and the next one runs.
        assert "restarted" in r.stderr
        r = sb.run("cat notes.txt")
    assert r.stdout == FIXTURE["notes.txt"]  # back to the baseline
    assert not sb.run("true").worker_restarted


@needs_sandbox
def test_hung_worker_never_hangs_the_caller():
    with Sandbox(None, SandboxConfig(wall_seconds=1, reply_slack_seconds=2)) as box:
        worker = [p for p in box.processes() if p != box.launcher_pid]
        for p in worker:
            os.kill(p, signal.SIGSTOP)
        t = time.monotonic()
        r = box.run("echo hi")
        assert time.monotonic() - t < 1 + 2 + 2  # wall + slack + restart
        assert r.worker_restarted and r.timed_out and r.limit == "wall_time"
        assert box.run("echo hi").stdout == "hi\n"


@pytest.mark.parametrize("backend", ["bwrap", "unshare"])
def test_killing_the_host_process_takes_the_sandbox_down(backend):
    """SIGKILL of the Python process owning a sandbox, mid-command, leaves
    nothing behind (bwrap: --die-with-parent; unshare: the worker sees its
    request pipe hang up)."""
    if backend not in BACKENDS:
        pytest.skip(f"{backend} does not work on this machine")
    code = ("import sys; from omnigym.sandbox import Sandbox, SandboxConfig; "
            "sb = Sandbox(None, SandboxConfig(backend=sys.argv[1], wall_seconds=60)); "
            "print(sb._tmpdir, *sb.processes(), flush=True); sb.run('sleep 1000 & sleep 1000')")
    owner = subprocess.Popen([sys.executable, "-c", code, backend], stdout=subprocess.PIPE, text=True)
    try:
        tmpdir, *pids = owner.stdout.readline().split()
        pids = [int(x) for x in pids]
        assert len(pids) >= 2
        time.sleep(0.3)  # the command is running now
    finally:
        owner.kill()
        owner.wait()
    assert _gone(pids, timeout=5) == []
    shutil.rmtree(tmpdir, ignore_errors=True)  # its owner had no chance to
