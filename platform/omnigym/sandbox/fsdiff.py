"""Scratch file-system bookkeeping: seed, snapshot, scan and diff.

Stdlib only and free of package-relative imports, because the in-sandbox
worker (``worker.py``, run by a bare ``python3 -I -S``) imports this file by
path as well as the host.

An *entry* is ``(path, kind, mode, payload)``: path relative to the scratch
root with "/" separators, kind "file" | "dir" | "symlink", mode the permission
bits, payload bytes (file), None (dir) or the link target (symlink).

An *index* maps path -> ``(kind, mode, size, ctime_ns, mtime_ns, ino, sig)``
where sig is the sha256 of a file's content or a symlink's target.  A rescan
re-hashes only files whose (size, ctime, mtime, inode) changed; ctime cannot
be forged by an unprivileged process, so the cache is sound and a scan of a
small tree costs a few stats.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat

KINDS = ("file", "dir", "symlink")
MAX_LISTED = 1000  # side-effect lists longer than this are cut (flagged)


# ----------------------------------------------------------------- fixtures
def check_relpath(path: str) -> str:
    """Normalise a fixture path; refuse anything that could leave the root."""
    p = path.replace("\\", "/").strip("/")
    parts = [x for x in p.split("/") if x not in ("", ".")]
    if not parts or any(x == ".." for x in parts):
        raise ValueError(f"bad sandbox path {path!r}: use a relative path without '..'")
    return "/".join(parts)


def normalize_fixture(spec) -> list:
    """Turn a fixture spec into sorted entries.

    Accepted: None; a host directory (str / os.PathLike) to copy; or a dict
    ``{path: value}`` where value is str/bytes (file, mode 0o644), None or a
    path ending in "/" (dir, 0o755), or a dict with "content" and/or "mode",
    {"dir": True, "mode": ...} or {"symlink": "target"}.  Parent directories
    are created implicitly (0o755).
    """
    if spec is None:
        return []
    if isinstance(spec, (str, os.PathLike)):
        return entries_from_dir(os.fspath(spec))
    if not isinstance(spec, dict):
        raise TypeError(f"fixture must be None, a directory path or a dict, got {type(spec).__name__}")
    out = {}
    for raw, value in spec.items():
        is_dir = raw.endswith("/") or value is None
        path = check_relpath(raw)
        if isinstance(value, dict):
            unknown = set(value) - {"content", "mode", "dir", "symlink"}
            if unknown:
                raise ValueError(f"fixture entry {raw!r}: unknown keys {sorted(unknown)}")
            if "symlink" in value:
                out[path] = (path, "symlink", 0o777, str(value["symlink"]))
                continue
            is_dir = is_dir or bool(value.get("dir"))
            mode = int(value.get("mode", 0o755 if is_dir else 0o644))
            content = value.get("content", b"")
        else:
            mode, content = (0o755 if is_dir else 0o644), value
        if is_dir:
            out[path] = (path, "dir", mode & 0o7777, None)
        else:
            if isinstance(content, str):
                content = content.encode()
            if not isinstance(content, (bytes, bytearray)):
                raise TypeError(f"fixture entry {raw!r}: content must be str or bytes")
            out[path] = (path, "file", mode & 0o7777, bytes(content))
    for path in list(out):  # implicit parents
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in out:
                out[parent] = (parent, "dir", 0o755, None)
            elif out[parent][1] != "dir":
                raise ValueError(f"fixture: {parent!r} is both a file and a directory")
    return sorted(out.values())


def entries_from_dir(root: str) -> list:
    """Read a host directory (files, dirs, symlinks, modes) into entries."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"fixture directory {root!r} does not exist")
    return read_entries(root)


def read_entries(root: str) -> list:
    out = []
    for rel, full, st in _walk(root):
        m = st.st_mode
        if stat.S_ISDIR(m):
            out.append((rel, "dir", stat.S_IMODE(m), None))
        elif stat.S_ISLNK(m):
            out.append((rel, "symlink", 0o777, os.readlink(full)))
        elif stat.S_ISREG(m):
            out.append((rel, "file", stat.S_IMODE(m), _read(full, m)))
    return sorted(out)


def write_entries(root: str, entries, uid=None, gid=None) -> None:
    """Create entries under root (which must exist and be empty)."""
    dirs = []
    for path, kind, mode, payload in sorted(entries, key=lambda e: (e[1] == "symlink", e[0])):
        path = check_relpath(path)
        full = os.path.join(root, path)
        parent = os.path.dirname(full)
        if not os.path.isdir(parent) or os.path.islink(parent):
            os.makedirs(parent, mode=0o755, exist_ok=True)
        if os.path.islink(parent):
            raise ValueError(f"fixture path {path!r} goes through a symlink")
        if kind == "dir":
            os.makedirs(full, mode=0o700, exist_ok=True)
            dirs.append((full, mode))
        elif kind == "file":
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.chmod(full, mode)
        elif kind == "symlink":
            os.symlink(payload, full)
        else:
            raise ValueError(f"unknown entry kind {kind!r} for {path!r}")
        if uid is not None:
            os.lchown(full, uid, gid)
    for full, mode in sorted(dirs, reverse=True):  # children before parents
        os.chmod(full, mode)
    fix_times(root, [check_relpath(e[0]) for e in entries])


# Fixture files get one fixed timestamp (2026-01-01 00:00 UTC), so commands that
# show times (ls -l, stat, find -newer) behave the same in every episode.
FIXED_TIME_NS = 1_767_225_600 * 10**9


def fix_times(root: str, paths) -> None:
    """Set every listed path (and root) to FIXED_TIME_NS, deepest first, so
    directory times are not disturbed by their children afterwards."""
    for path in sorted(paths, key=lambda p: p.count("/"), reverse=True):
        full = os.path.join(root, path)
        if os.path.lexists(full):
            os.utime(full, ns=(FIXED_TIME_NS, FIXED_TIME_NS), follow_symlinks=False)
    os.utime(root, ns=(FIXED_TIME_NS, FIXED_TIME_NS))


def clear_dir(root: str, mode: int = 0o755) -> None:
    """Delete everything below root (not root itself) whatever the modes,
    then chmod root to ``mode``.  Iterative and fd-relative: a hostile
    10 000-level tree hits neither the recursion limit nor PATH_MAX, and
    symlinks are unlinked, never followed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    os.chmod(root, 0o700)  # an unprivileged owner may have chmod 000'ed it
    top = os.open(root, flags)
    stack = [(top, None, None)]  # (dir fd, parent fd, name in parent)
    while stack:
        fd, parent, name = stack[-1]
        child = None
        with os.scandir(fd) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    try:  # a real directory (lstat); nothing else runs meanwhile
                        os.chmod(e.name, 0o700, dir_fd=fd)
                    except OSError:
                        pass
                    child = (os.open(e.name, flags, dir_fd=fd), fd, e.name)
                    break
                os.unlink(e.name, dir_fd=fd)
        if child is not None:
            stack.append(child)
            continue
        stack.pop()
        os.close(fd)
        if parent is not None:
            os.rmdir(name, dir_fd=parent)
    os.chmod(root, mode)


# ----------------------------------------------------------- scan and diff
def scan(root: str, prev: dict | None = None) -> dict:
    prev = prev or {}
    index = {}
    for rel, full, st in _walk(root):
        m = st.st_mode
        key = (st.st_size, st.st_ctime_ns, st.st_mtime_ns, st.st_ino)
        if stat.S_ISREG(m):
            kind = "file"
            old = prev.get(rel)
            if old and old[0] == "file" and old[2:6] == key:
                sig = old[6]
            else:
                try:
                    sig = sha256_hex(_read(full, m))
                except OSError:
                    sig = "unreadable"
        elif stat.S_ISDIR(m):
            kind, sig = "dir", ""
        elif stat.S_ISLNK(m):
            kind, sig = "symlink", sha256_hex(os.readlink(full).encode("utf-8", "surrogateescape"))
        else:
            kind, sig = "other", ""
        index[rel] = (kind, stat.S_IMODE(m)) + key + (sig,)
    return index


def diff(old: dict, new: dict) -> dict:
    """Side effects between two indexes (directories get a trailing '/')."""
    def name(p, idx):
        return p + "/" if idx[p][0] == "dir" else p

    created, deleted, modified, mode_changed, hashes = [], [], [], [], {}
    for p, n in new.items():
        o = old.get(p)
        if o is None or o[0] != n[0]:
            created.append(name(p, new))
            if o is not None:
                deleted.append(name(p, old))
            if n[0] == "file":
                hashes[p] = n[6]
            continue
        if n[6] != o[6]:
            modified.append(name(p, new))
            if n[0] == "file":
                hashes[p] = n[6]
        if n[1] != o[1]:
            mode_changed.append(name(p, new))
    deleted += [name(p, old) for p in old if p not in new]
    out = {"created": sorted(created), "deleted": sorted(deleted),
           "modified": sorted(modified), "mode_changed": sorted(mode_changed)}
    for k, v in out.items():
        if len(v) > MAX_LISTED:
            out[k] = v[:MAX_LISTED] + [f"... ({len(v) - MAX_LISTED} more)"]
    out["hashes"] = dict(list(hashes.items())[:MAX_LISTED])
    return out


def digest_items(items) -> str:
    """sha256 over (path, kind, mode, sig) tuples sorted by path: the state key."""
    h = hashlib.sha256()
    for path, kind, mode, sig in sorted(items):
        h.update(f"{path}\0{kind}\0{mode:o}\0{sig}\1".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def index_digest(index: dict) -> str:
    return digest_items((p, v[0], v[1], v[6]) for p, v in index.items())


def entries_digest(entries) -> str:
    def sig(kind, payload):
        if kind == "file":
            return sha256_hex(payload)
        if kind == "symlink":
            return sha256_hex(payload.encode("utf-8", "surrogateescape"))
        return ""
    return digest_items((p, k, m, sig(k, c)) for p, k, m, c in entries)


# ------------------------------------------------------------ wire format
def entries_to_wire(entries) -> list:
    return [[p, k, m, base64.b64encode(c).decode() if k == "file" else c] for p, k, m, c in entries]


def entries_from_wire(items) -> list:
    return [(p, k, int(m), base64.b64decode(c) if k == "file" else c) for p, k, m, c in items]


# ---------------------------------------------------------------- helpers
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(full: str, mode: int) -> bytes:
    try:
        with open(full, "rb") as f:
            return f.read()
    except PermissionError:  # unprivileged worker, file chmod 000 by its owner
        os.chmod(full, stat.S_IMODE(mode) | 0o400)
        try:
            with open(full, "rb") as f:
                return f.read()
        finally:
            os.chmod(full, stat.S_IMODE(mode))


def _walk(root: str):
    """Yield (relpath, fullpath, lstat) below root, depth-first, iteratively
    (a hostile 10 000-deep tree must not blow the recursion limit)."""
    stack = [("", root)]
    while stack:
        rel, path = stack.pop()
        try:
            children = _list(path)
        except PermissionError:  # unprivileged worker, dir chmod 000 by its owner
            try:
                mode = stat.S_IMODE(os.lstat(path).st_mode)
                os.chmod(path, mode | 0o700)
                try:
                    children = _list(path)
                finally:
                    os.chmod(path, mode)
            except OSError:
                continue
        except OSError:
            continue
        for name, full, st in children:
            r = f"{rel}/{name}" if rel else name
            yield r, full, st
            if stat.S_ISDIR(st.st_mode):
                stack.append((r, full))


def _list(path: str) -> list:
    out = []
    with os.scandir(path) as it:
        for e in it:
            try:
                out.append((e.name, e.path, e.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    return out
