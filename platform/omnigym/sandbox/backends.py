"""Isolation backends: probing, the sandbox's file-system layout, launch argv.

Both namespace backends build the same view, described once as a list of
mount ops (``layout``): bubblewrap turns the ops into its arguments, the
``unshare`` backend sends them to the worker, which performs them itself
(``nsmount.build_root``) before serving commands.

What each backend isolates (see also ISOLATION below):

bwrap    new mount, pid, net, ipc, uts (and cgroup) namespaces; a tmpfs root
         made read-only with /usr (and /bin, /lib* symlinks) and a handful of
         /etc files bound read-only; /proc (fresh, pid-namespace), minimal
         /dev (null zero full random urandom tty), private size-limited tmpfs
         for /tmp and the scratch dir; nothing else of the host exists (no
         /root, /home, /work, host /var and /tmp, /sys).  No network
         interface but loopback.  The worker is PID 1 of the pid namespace
         (unkillable from inside), not dumpable, and keeps only chown, dac
         override/read-search, fowner, kill (+ setuid/setgid as host root).
         As host root every command runs as a dedicated unprivileged uid
         (the worker's real uid; its effective and saved uids stay 0, so
         posix_spawn(RESETIDS) drops privileges at vfork speed while commands
         still cannot signal, prlimit, renice or ptrace it); as a normal user
         a user namespace is added and commands run as the caller's uid.
         Either way commands hold no capabilities (empty bounding, ambient
         and inheritable sets) and run with no_new_privs.
unshare  the same namespaces and the same file-system view, built by the
         worker with mount(2)/pivot_root(2) (the host root is detached, not
         just hidden by chroot).  As host root commands get an unprivileged
         uid as above; as a normal user ``unshare --user --map-root-user`` is
         used and commands run as uid 0 of that user namespace with every
         capability dropped (bounding set, securebits locked, no_new_privs).
none     nothing: commands run on the host as the calling user, in a private
         temp dir as cwd and with rlimits only.  Refused unless
         ``allow_unsandboxed_host_execution=True``.

Not isolated / not limited, by either namespace backend:
  * no seccomp filter: the whole syscall table is reachable (kernel bugs);
  * no cgroup: memory is bounded per process by RLIMIT_AS and in total by
    RLIMIT_NPROC x RLIMIT_AS plus the tmpfs sizes; CPU by RLIMIT_CPU per
    process and the wall limit; nothing stops a command from using both cores
    for its wall time;
  * nested user namespaces: blocked for bwrap as a normal user
    (--disable-userns); as host root, and for unshare, a command may create
    one where the host allows it (it gains nothing outside the sandbox);
  * the kernel, /usr and a few /etc files are shared read-only; /proc shows
    only the sandbox's processes but the host's /proc/cpuinfo, meminfo etc.;
  * the uid 0 case: as host root commands never run as root; as a normal
    user with ``unshare`` they are uid 0 of their user namespace, without
    capabilities (bounding set empty, SECBIT_NOROOT locked);
  * as a normal user (either backend) commands share the worker's uid, so
    they may prlimit(2)/renice it (signals, ptrace and /proc/1 stay closed):
    the worker notices changed rlimits after each command and the host
    replaces it (``worker_restarted``); as host root prlimit is refused.
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import subprocess
import sys

from .config import SandboxConfig, SandboxUnavailable, UnsandboxedExecutionRefused

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER_DIR_IN_SANDBOX = "/.omnigym_sandbox"
ETC_PASSTHROUGH = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
                   "timezone", "nsswitch.conf", "protocols", "services", "mime.types",
                   "magic", "magic.mime", "os-release", "debian_version", "bash.bashrc",
                   "inputrc", "environment")
WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE",
               "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_SETPCAP")

ISOLATION = {
    "bwrap": "namespaces mount/pid/net/ipc/uts via bubblewrap; read-only root with /usr, "
             "minimal /etc, /proc, /dev; private size-limited /tmp and scratch; unprivileged uid; rlimits",
    "unshare": "namespaces mount/pid/net/ipc/uts via util-linux unshare; same read-only root "
               "built by the worker (pivot_root); unprivileged uid or capability-less userns root; rlimits",
    "none": "NO isolation: host file system, network and processes; rlimits and a temp cwd only",
}

_probe_cache: dict = {}
_uids = random.SystemRandom()  # not the global RNG: seeded envs would collide


def _is_root() -> bool:
    return os.geteuid() == 0


def _probe(argv) -> str | None:
    """None if argv runs, else the reason."""
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if r.returncode == 0 else (r.stderr.decode(errors="replace").strip() or f"exit {r.returncode}")


def probe(backend: str) -> str | None:
    """None when ``backend`` works here, else why not (cached per process)."""
    if backend not in _probe_cache:
        true = shutil.which("true") or "/bin/true"
        if backend == "bwrap":
            exe = shutil.which("bwrap")
            argv = [exe, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                    *([] if _is_root() else ["--unshare-user"]), "--ro-bind", "/", "/",
                    "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", true]
        elif backend == "unshare":
            exe = shutil.which("unshare")
            argv = [exe, "--mount", "--net", "--pid", "--ipc", "--uts", "--fork",
                    *([] if _is_root() else ["--user", "--map-root-user"]), true]
        else:
            raise ValueError(backend)
        _probe_cache[backend] = f"{backend} not found on PATH" if not exe else _probe(argv)
    return _probe_cache[backend]


def available_backends() -> list:
    """The isolating backends that work on this machine, preferred first.
    ("none" is never listed: it does not isolate anything.)"""
    return [b for b in ("bwrap", "unshare") if probe(b) is None]


def resolve_backend(config: SandboxConfig) -> str:
    if config.backend == "none":
        if not config.allow_unsandboxed_host_execution:
            raise UnsandboxedExecutionRefused(
                "SandboxConfig(backend='none') would run commands directly on the host with no "
                "isolation; if you really mean it pass "
                "SandboxConfig(backend='none', allow_unsandboxed_host_execution=True)")
        return "none"
    if config.backend == "auto":
        found = available_backends()
        if found:
            return found[0]
        raise SandboxUnavailable(
            "no sandbox backend works here: bwrap: " + str(probe("bwrap")) + "; unshare: "
            + str(probe("unshare")) + ". Install bubblewrap (apt-get install bubblewrap) or allow "
            "user namespaces; or, accepting that commands run on the host, pass "
            "SandboxConfig(backend='none', allow_unsandboxed_host_execution=True)")
    why = probe(config.backend)
    if why is not None:
        others = [b for b in available_backends() if b != config.backend]
        hint = f"; available: {others} (or backend='auto')" if others else ""
        raise SandboxUnavailable(f"backend {config.backend!r} does not work here: {why}{hint}")
    return config.backend


def sandbox_ids(config: SandboxConfig) -> tuple:
    """(uid, gid) commands run as when we can switch users, else (None, None).

    A random high uid per sandbox keeps RLIMIT_NPROC (counted per real uid)
    from being shared with other sandboxes or host processes."""
    if not _is_root():
        return None, None
    uid = config.uid if config.uid is not None else _uids.randrange(1_000_000, 2_000_000)
    return uid, uid


def worker_python(config: SandboxConfig) -> tuple:
    """(interpreter path, host dirs to bind read-only so it runs inside)."""
    if config.python:
        exe = config.python
    elif os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3", []
    else:
        exe = sys.executable
    real = os.path.realpath(exe)
    if real.startswith("/usr/"):
        return exe, []
    prefix = os.path.realpath(sys.base_prefix) if real.startswith(os.path.realpath(sys.base_prefix)) \
        else os.path.dirname(os.path.dirname(real))
    return real, [prefix]


def write_etc(tmpdir: str, uid, gid) -> str:
    """Synthetic /etc files (no host user list, no resolver) in tmpdir/etc."""
    etc = os.path.join(tmpdir, "etc")
    os.makedirs(etc, exist_ok=True)
    users = ["root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false"]
    groups = ["root:x:0:", "nogroup:x:65534:"]
    me = uid if uid is not None else os.getuid()
    if me not in (0, 65534):
        users.append(f"sandbox:x:{me}:{gid if gid is not None else os.getgid()}:sandbox:/:/bin/bash")
        groups.append(f"sandbox:x:{gid if gid is not None else os.getgid()}:")
    files = {"passwd": "\n".join(users) + "\n", "group": "\n".join(groups) + "\n",
             "hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n", "hostname": "sandbox\n",
             "resolv.conf": "# no network in the sandbox\n"}
    for name, text in files.items():
        with open(os.path.join(etc, name), "w") as f:
            f.write(text)
    return etc


def layout(config: SandboxConfig, etc_dir: str, extra_ro: list) -> list:
    """Mount ops building the sandbox's view of the file system."""
    ops = [["ro-bind", "/usr", "/usr"]]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):
            ops.append(["symlink", os.readlink(host), host])
        elif os.path.isdir(host):
            ops.append(["ro-bind", host, host])
    ops.append(["dir", "/etc", 0o755])
    for name in sorted(os.listdir(etc_dir)):
        ops.append(["ro-bind", os.path.join(etc_dir, name), "/etc/" + name])
    for host in [f"/etc/{n}" for n in ETC_PASSTHROUGH] + sorted(glob.glob("/etc/python3*")):
        if os.path.islink(host):
            ops.append(["symlink", os.readlink(host), host])
        elif os.path.exists(host):
            ops.append(["ro-bind", host, host])
    ops += [["proc", "/proc"], ["dev", "/dev"],
            ["tmpfs", "/tmp", config.tmp_mb * 1024 * 1024, 0o1777],
            ["tmpfs", config.workdir, config.scratch_mb * 1024 * 1024, 0o755],
            ["dir", "/var", 0o755], ["symlink", "../tmp", "/var/tmp"]]
    for host in list(extra_ro) + [os.path.abspath(p) for p in config.ro_binds]:
        if not os.path.exists(host):
            raise FileNotFoundError(f"SandboxConfig.ro_binds: {host!r} does not exist")
        ops.append(["ro-bind", host, host])
    ops.append(["remount-ro", "/"])
    return ops


def bwrap_argv(config: SandboxConfig, ops: list, python: str) -> list:
    argv = [shutil.which("bwrap"), "--die-with-parent", "--as-pid-1", "--unshare-net",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
    if not _is_root():
        # bwrap then hands the caps below over as ambient ones; and commands
        # may not create nested user namespaces (kernel attack surface)
        argv += ["--unshare-user", "--disable-userns"]
    argv += ["--cap-drop", "ALL"]
    for cap in WORKER_CAPS:
        argv += ["--cap-add", cap]
    for op in ops:
        kind = op[0]
        if kind == "ro-bind":
            argv += ["--ro-bind", op[1], op[2]]
        elif kind == "symlink":
            argv += ["--symlink", op[1], op[2]]
        elif kind == "dir":
            argv += ["--perms", f"{op[2]:o}", "--dir", op[1]]
        elif kind == "tmpfs":
            argv += ["--perms", f"{op[3]:o}", "--size", str(op[2]), "--tmpfs", op[1]]
        elif kind in ("proc", "dev"):
            argv += [f"--{kind}", op[1]]
        elif kind == "remount-ro":
            argv += ["--ro-bind", HERE, WORKER_DIR_IN_SANDBOX, "--remount-ro", op[1]]
    argv += ["--chdir", "/", "--", python, "-I", "-S", "-B", WORKER_DIR_IN_SANDBOX + "/worker.py"]
    return argv


def unshare_argv(python: str) -> list:
    argv = [shutil.which("unshare"), "--mount", "--net", "--pid", "--ipc", "--uts", "--fork",
            "--kill-child", "--propagation", "private"]
    if not _is_root():
        argv += ["--user", "--map-root-user"]
    return argv + ["--", python, "-I", "-S", "-B", os.path.join(HERE, "worker.py")]


def none_argv(python: str) -> list:
    return [python, "-I", "-S", "-B", os.path.join(HERE, "worker.py")]
