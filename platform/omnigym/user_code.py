"""A user's own code (modules that register envs, tasks or agents), imported
the way Python users expect.

``import_user_module(spec)`` takes either a module name importable from the
current directory (which goes on ``sys.path`` first, as with ``python -m``)
or a path to a ``.py`` file. A file is imported under its stem, or under its
dotted name when its folder is a package (``pkg/envs.py`` with
``pkg/__init__.py`` is ``pkg.envs``, as pytest does), with the folder above
on ``sys.path`` so that it can import its neighbours.

Other processes do not share this one's current directory: Ray workers, or a
later ``omnigym eval`` run from somewhere else. ``portable_spec(spec)`` names
a module found in the current directory by its absolute file path, which
imports the same module from anywhere.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType


def import_user_module(spec: str) -> ModuleType:
    """Import a module name (from the current directory or ``sys.path``) or a ``.py`` file."""
    directory, name = _locate(spec)
    if directory is not None and directory not in sys.path:
        sys.path.insert(0, directory)
    module = importlib.import_module(name)
    if _is_path(spec) and not _same_file(getattr(module, "__file__", None), spec):
        raise ValueError(f"{spec} would be imported as {name!r}, but a module of that name is already "
                         f"imported from {module.__file__}; rename the file")
    return module


def portable_spec(spec: str) -> str:
    """A spec that imports the same module from any directory: files and
    modules found in the current directory become absolute file paths;
    installed modules keep their name."""
    if _is_path(spec):
        _locate(spec)  # fail now, with the user's own spelling, if it is not there
        return str(Path(spec).expanduser().resolve())
    found = _find_module(spec)
    # Only what the current directory provides needs a path; the rest imports by name anywhere.
    from_cwd = importlib.machinery.PathFinder.find_spec(spec.split(".")[0], [os.getcwd()]) is not None
    return str(Path(found.origin).resolve()) if from_cwd and found.has_location else spec


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def _same_file(a, b) -> bool:
    return a is not None and Path(a).resolve() == Path(b).expanduser().resolve()


def _locate(spec: str) -> tuple[str | None, str]:
    """(folder to put on ``sys.path`` or None, module name) for ``spec``."""
    spec = str(spec).strip()
    if _is_path(spec):
        path = Path(spec).expanduser().resolve()
        if not path.is_file() or path.suffix != ".py":
            raise ValueError(f"user module {spec!r}: no such .py file ({path})")
        parts = [] if path.stem == "__init__" else [path.stem]
        folder = path.parent
        while (folder / "__init__.py").is_file():  # inside a package: import it by its dotted name
            parts.insert(0, folder.name)
            folder = folder.parent
        return str(folder), ".".join(parts)
    _find_module(spec)
    return None, spec


def _find_module(name: str):
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"user module {name!r}: give a module name (my_envs, pkg.envs) or a path to a .py file")
    cwd = os.getcwd()
    if cwd not in sys.path:  # as `python -m` does
        sys.path.insert(0, cwd)
    try:
        found = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a parent package is missing
        found = None
    if found is None:
        raise ValueError(f"user module {name!r} not found: no {name.replace('.', '/')}.py in {cwd} "
                         f"nor on sys.path; give a module name or a path to a .py file")
    return found
