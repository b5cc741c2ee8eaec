"""Restore a scratch tree to a snapshot by touching only what differs.

Tree search (ShIOEnv's construct env, AEPO branching) restores the same
baseline before nearly every command, and a command usually changes one or
two files; rewriting the whole tree each time would cost more than the
command.  ``sync_tree`` compares the target entries with the current index
(``fsdiff.scan``) and deletes, writes and chmods just the differences.

Stdlib only (imported by the in-sandbox worker).  Must run while no command
is running (the worker kills them first and rescans), so the index is exact.
"""

from __future__ import annotations

import os

from fsdiff import check_relpath, clear_dir, fix_times


def target_map(entries) -> dict:
    """{path: (kind, mode, payload, sig)}: entries with their content hashes,
    computed once per cached snapshot."""
    from fsdiff import sha256_hex
    out = {}
    for p, kind, mode, payload in entries:
        if kind == "file":
            sig = sha256_hex(payload)
        elif kind == "symlink":
            sig = sha256_hex(payload.encode("utf-8", "surrogateescape"))
        else:
            sig = ""
        out[check_relpath(p)] = (kind, mode, payload, sig)
    return out


def sync_tree(root: str, target: dict, index: dict, uid=None, gid=None) -> int:
    """Make ``root`` equal to ``target`` (from target_map); returns the number
    of paths written, removed or chmodded."""
    changes = 0
    kept = {}
    # 1. remove what must go: absent from the target, of another kind, or
    #    not representable (fifos, sockets); children before parents.
    for p in sorted(index, key=lambda x: x.count("/"), reverse=True):
        cur, want = index[p], target.get(p)
        if want is not None and want[0] == cur[0] and cur[0] != "other":
            kept[p] = cur
            continue
        full = os.path.join(root, p)
        if not os.path.lexists(full):
            continue  # went with a removed parent
        if cur[0] == "dir":
            clear_dir(full, 0o700)
            os.rmdir(full)
        else:
            os.unlink(full)
        changes += 1
    # 2. create or rewrite, parents first; a rewritten file gets a new inode,
    #    so a hard link made by a command never carries the change elsewhere.
    dir_modes = []
    for p in sorted(target, key=lambda x: (target[x][0] == "symlink", x)):
        kind, mode, payload, sig = target[p]
        full = os.path.join(root, p)
        cur = kept.get(p)
        if kind == "dir":
            if cur is None:
                os.mkdir(full, 0o700)
                _own(full, uid, gid)
                changes += 1
            if cur is None or cur[1] != mode:
                dir_modes.append((full, mode))
        elif kind == "file":
            shared = cur is not None and os.lstat(full).st_nlink > 1
            if cur is None or cur[6] != sig or shared:
                if cur is not None:
                    os.unlink(full)
                fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                os.chmod(full, mode)
                _own(full, uid, gid)
                changes += 1
            elif cur[1] != mode:
                os.chmod(full, mode)
                changes += 1
        elif kind == "symlink":
            if cur is None or cur[6] != sig:
                if cur is not None:
                    os.unlink(full)
                os.symlink(payload, full)
                _own(full, uid, gid, follow=False)
                changes += 1
    for full, mode in sorted(dir_modes, reverse=True):  # deepest first
        os.chmod(full, mode)
        changes += 1
    os.chmod(root, 0o755)
    if changes:
        fix_times(root, list(target))
    return changes


def _own(path, uid, gid, follow=True):
    if uid is not None:
        os.chown(path, uid, gid, follow_symlinks=follow)
