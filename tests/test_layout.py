"""The folder layout of DESIGN.md §1: one import package `omnigym` mapped from
top-level folders, `platform/` kept a plain folder so that the standard
library's `platform` module is never shadowed, and a light `import omnigym`."""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run `python -c code` the way a user would from `cwd` (the cwd lands on sys.path[0])."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_platform_folder_is_not_a_package():
    assert (REPO / "platform").is_dir()
    assert not (REPO / "platform" / "__init__.py").exists(), \
        "platform/__init__.py would shadow the standard library's platform module"
    assert (REPO / "platform" / "omnigym" / "__init__.py").is_file()


def test_import_platform_from_repo_root_gives_stdlib_module():
    out = _run("import platform, json; print(json.dumps([platform.__file__, platform.system(), platform.python_version()]))")
    assert out.returncode == 0, out.stderr
    path, system, version = json.loads(out.stdout.strip().splitlines()[-1])
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert path is not None, "platform resolved to a namespace package (no __file__)"
    assert Path(path).resolve().parent == stdlib, f"platform came from {path}, not the standard library {stdlib}"
    assert not Path(path).resolve().is_relative_to(REPO)
    assert system and version.startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_libraries_that_use_platform_import_from_repo_root():
    # numpy (and so gymnasium, torch, ray) call platform.* at import time: they
    # break when a repo-level `platform` package shadows the standard module.
    out = _run("import numpy, gymnasium, omnigym; print(numpy.__version__)")
    assert out.returncode == 0, out.stderr


def test_mapped_subpackages_resolve_to_top_level_folders():
    code = (
        "import json, importlib\n"
        "names = ['omnigym', 'omnigym.environments', 'omnigym.policies', 'omnigym.tasks', 'omnigym.sim_assets',\n"
        "         'omnigym.environments.household', 'omnigym.tasks.household']\n"
        "print(json.dumps({n: list(importlib.import_module(n).__path__)[0] for n in names}))\n"
    )
    # From the repo root and from elsewhere (no reliance on the cwd being on sys.path).
    for cwd in (REPO, Path("/")):
        out = _run(code, cwd=cwd)
        assert out.returncode == 0, out.stderr
        dirs = {k: Path(v).resolve() for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
        assert dirs["omnigym"] == REPO / "platform" / "omnigym"
        assert dirs["omnigym.environments"] == REPO / "environments"
        assert dirs["omnigym.policies"] == REPO / "policies"
        assert dirs["omnigym.tasks"] == REPO / "tasks"
        assert dirs["omnigym.sim_assets"] == REPO / "sim_assets"
        assert dirs["omnigym.environments.household"] == REPO / "environments" / "household"
        assert dirs["omnigym.tasks.household"] == REPO / "tasks" / "household"


def test_no_stray_top_level_packages_named_after_the_folders():
    # Only `omnigym.*` names exist: `import environments` must not work from elsewhere.
    out = _run("import importlib.util, json; print(json.dumps([importlib.util.find_spec(n) is None "
               "for n in ('environments', 'policies', 'tasks', 'sim_assets')]))", cwd=Path("/"))
    assert out.returncode == 0, out.stderr
    assert all(json.loads(out.stdout.strip().splitlines()[-1]))


HEAVY = ("torch", "ray", "transformers", "diffusers", "mujoco", "pybullet")


@pytest.mark.parametrize("statement", [
    "import omnigym",
    # listing ids imports the family registrations; that must stay light too
    "import omnigym; omnigym.list_envs()",
])
def test_import_omnigym_is_light(statement):
    code = (f"import sys, json\n{statement}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {list(HEAVY)!r})))\n")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"`{statement}` imported heavy modules: {loaded[:10]}"


MAPPED = ("platform/omnigym", "environments", "policies", "tasks", "sim_assets")


def _source_folders():
    for top in MAPPED:
        for folder in sorted([REPO / top, *(REPO / top).rglob("*")]):
            if folder.is_dir() and "__pycache__" not in folder.parts and any(folder.glob("*.py")):
                yield folder


def test_every_source_folder_is_a_regular_package():
    missing = [str(f.relative_to(REPO)) for f in _source_folders() if not (f / "__init__.py").exists()]
    assert missing == [], f"folders with modules but no __init__.py (left out of wheels): {missing}"


def test_wheel_ships_every_module(tmp_path):
    import shutil
    import zipfile
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "reports",
                                  ".pytest_cache", "tests")
    shutil.copytree(REPO, src, ignore=skip)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel, = (tmp_path / "wheel").glob("omnigym-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder in _source_folders():
        rel = folder.relative_to(REPO)
        parts = rel.parts[1:] if rel.parts[0] == "platform" else ("omnigym", *rel.parts)
        expected |= {"/".join((*parts, f.name)) for f in folder.glob("*.py")}
    expected |= {"omnigym/tasks/household/household.yaml"}
    missing = sorted(expected - names)
    assert not missing, f"{len(missing)} modules missing from the wheel, e.g. {missing[:5]}"
