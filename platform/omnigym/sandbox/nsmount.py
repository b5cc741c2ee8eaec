"""Linux plumbing for the worker: mounts, pivot_root and dropping capabilities.

Stdlib (ctypes) only; imported by ``worker.py`` inside the sandbox.  The
mount part is used by the ``unshare`` backend, where util-linux ``unshare``
only creates the namespaces and the worker builds the read-only root itself
(bubblewrap does the same work for the ``bwrap`` backend).
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 28, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {src} on {target}")


def umount2(target, flags=0) -> None:
    _check(_libc.umount2(os.fsencode(target), flags), f"umount {target}")


def _make_mountpoint(path: str, like: str) -> None:
    if os.path.isdir(like):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "w").close()


def _submounts(path: str) -> list:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                out.append(mp)
    return out


def ro_bind(src: str, dest: str) -> None:
    """Recursive bind of src on dest, every mount below read-only, nosuid, nodev."""
    _make_mountpoint(dest, src)
    mount(src, dest, None, MS_BIND | MS_REC)
    for mp in _submounts(dest):
        try:
            mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        except OSError:
            if mp == dest:
                raise


def build_root(newroot: str, ops: list, hostname: str | None = None) -> None:
    """Assemble a root file system from ``ops`` under newroot and pivot into it.

    Must run in a fresh mount namespace (and pid namespace, for /proc).  The
    host's root is detached afterwards, so nothing not bound is reachable.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    for op in ops:
        kind, args = op[0], op[1:]
        if kind == "ro-bind":
            src, dest = args
            if os.path.lexists(src):
                ro_bind(src, newroot + dest)
        elif kind == "symlink":
            target, dest = args
            os.makedirs(os.path.dirname(newroot + dest), exist_ok=True)
            os.symlink(target, newroot + dest)
        elif kind == "dir":
            os.makedirs(newroot + args[0], exist_ok=True)
            os.chmod(newroot + args[0], args[1])
        elif kind == "tmpfs":
            dest, size, mode = args
            os.makedirs(newroot + dest, exist_ok=True)
            mount("tmpfs", newroot + dest, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode:o},size={int(size)}")
        elif kind == "proc":
            os.makedirs(newroot + args[0], exist_ok=True)
            mount("proc", newroot + args[0], "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            for sub in ("sys", "sysrq-trigger", "irq", "bus"):
                p = f"{newroot}{args[0]}/{sub}"
                if os.path.exists(p):
                    try:
                        ro_bind(p, p)
                    except OSError:
                        pass
        elif kind == "dev":
            _make_dev(newroot + args[0])
        elif kind == "remount-ro":
            pass  # done after pivot_root
        else:
            raise ValueError(f"unknown mount op {kind!r}")
    if hostname:
        name = hostname.encode()
        _libc.sethostname(name, len(name))
    os.chdir(newroot)
    nr = _PIVOT_ROOT.get(os.uname().machine)
    if nr is not None and _libc.syscall(nr, b".", b".") == 0:
        umount2(".", MNT_DETACH)  # the old root, stacked under the new one
    else:  # unknown arch: move + chroot (commands hold no CAP_SYS_CHROOT)
        mount(newroot, "/", None, 8192)  # MS_MOVE
        os.chroot(".")
    os.chdir("/")
    if any(op[0] == "remount-ro" for op in ops):
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _make_dev(dev: str) -> None:
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=0755,size=64k")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            open(f"{dev}/{name}", "w").close()
            mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    for d in ("pts", "shm"):
        os.mkdir(f"{dev}/{d}", 0o755)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_KILL, CAP_SETGID, CAP_SETUID = 0, 1, 2, 3, 5, 6, 7
#: what the worker keeps: manage any file in scratch, signal any command ...
WORKER_KEEP = sum(1 << c for c in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_KILL))
#: ... and, when commands get their own uid, switch to it.
WORKER_KEEP_SETUID = WORKER_KEEP | (1 << CAP_SETGID) | (1 << CAP_SETUID)
# NOROOT(+LOCKED), KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE(+LOCKED)
SECURE_NOROOT_LOCKED = 0x01 | 0x02 | 0x20 | 0x40 | 0x80


def restrict_caps(keep: int, noroot: bool) -> None:
    """Keep only the capabilities in mask ``keep`` and make sure nothing the
    worker executes can hold any: empty bounding set, no ambient or
    inheritable capabilities, and (``noroot``, for commands that share the
    worker's uid 0 in a user namespace) locked SECBIT_NOROOT so that exec as
    uid 0 grants nothing.  The worker's own effective capabilities survive;
    exec() drops them for its children."""
    if noroot:
        _libc.prctl(PR_SET_SECUREBITS, SECURE_NOROOT_LOCKED, 0, 0, 0)
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    for word, d in enumerate(data):
        mask = (keep >> (32 * word)) & 0xFFFFFFFF
        d.effective &= mask
        d.permitted &= mask
        d.inheritable = 0
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def not_dumpable() -> None:
    """Commands sharing our uid can then neither ptrace us nor open /proc/1/fd."""
    _libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE


def no_new_privs() -> None:
    """setuid binaries (su, mount, ...) can no longer raise privileges."""
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
