"""Quiet by default: no setuptools boxes on install, no routine Ray lines on
train and eval (``-v`` shows them), no Ray process left behind."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "omnigym.cli"]
# Lines Ray and RLlib print on every run; none asks anything of the user.
RAY_NOISE = ("Token authentication", "Started a local Ray instance", "on the new API stack",
             "RLModuleConfig", "gputil")

# pip runs these hooks of the build backend for `pip install -e .` and shows
# every UserWarning they raise as a boxed warning.
EDITABLE_HOOKS = """
import json, sys, warnings
import setuptools.build_meta as backend
out = sys.argv[1]   # read first: the backend rewrites sys.argv
with warnings.catch_warnings(record=True) as caught:
    backend.get_requires_for_build_editable()
    backend.prepare_metadata_for_build_editable(out)
    backend.build_editable(out)
print(json.dumps([str(w.message).splitlines()[0] for w in caught if issubclass(w.category, UserWarning)]))
"""


def test_an_editable_install_raises_no_setuptools_warning(tmp_path):
    proc = subprocess.run([sys.executable, "-c", EDITABLE_HOOKS, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_quiet_drops_only_the_routine_lines_and_verbose_shows_them():
    from omnigym.quiet import NOISE, configure
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    loggers = [logging.getLogger(name) for name in NOISE]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        def log_all():
            seen.clear()
            for logger, fragments in zip(loggers, NOISE.values()):
                logger.warning(f"... {fragments[0]} ...")
                logger.warning("something the user must see")
            return list(seen)
        configure(verbose=False)
        assert log_all() == ["something the user must see"] * len(NOISE)
        configure(verbose=True)
        assert len(log_all()) == 2 * len(NOISE)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


MAKE_HALFCHEETAH = "import omnigym; omnigym.make('HalfCheetah-v5').close(); print('made')"


def test_mujoco_compile_warning_is_dropped_unless_verbose():
    quiet = subprocess.run([sys.executable, "-c", MAKE_HALFCHEETAH], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k != "OMNIGYM_VERBOSE"})
    assert quiet.returncode == 0 and "made" in quiet.stdout, quiet.stderr[-2000:]
    assert "settotalmass" not in quiet.stderr
    verbose = subprocess.run([sys.executable, "-c", MAKE_HALFCHEETAH], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "OMNIGYM_VERBOSE": "1"})
    assert verbose.returncode == 0 and "settotalmass" in verbose.stderr


def _wait_until_none_run(daemons, timeout=20.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (running := daemons.running()) and time.monotonic() < deadline:
        time.sleep(0.25)
    return running


def test_train_and_eval_print_no_routine_ray_lines_and_leave_no_ray_process(tmp_path, daemons):
    from test_train import FAST
    out = tmp_path / "run"
    # Ray's token-auth default is left as a user gets it: no RAY_AUTH_MODE here.
    env = {**os.environ, **daemons.env}
    train = subprocess.run([*CLI, "train", f"out_dir={out}", *FAST, "env=cartpole", "iterations=1"],
                           cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    assert [line for line in train.stderr.splitlines() if any(n in line for n in RAY_NOISE)] == []
    assert _wait_until_none_run(daemons) == {}
    evaluate = [*CLI, "eval", "CartPole-v1", "--policy", str(out), "--panel", "0..1", "--out", str(tmp_path / "eval")]
    quiet = subprocess.run(evaluate, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0 and "RLModuleConfig" not in quiet.stderr, quiet.stderr[-3000:]
    verbose = subprocess.run([*CLI, "-v", *evaluate[len(CLI):]], cwd=ROOT, capture_output=True, text=True,
                             timeout=300, env=env)
    assert verbose.returncode == 0 and "RLModuleConfig" in verbose.stderr, verbose.stderr[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_start_node_is_stopped_with_all_its_processes(daemons):
    ray = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray, "start", "--head", f"--port={_free_port()}", f"--ray-client-server-port={_free_port()}",
                    "--num-cpus=0", "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True, timeout=120, env={**os.environ, **daemons.env})
    commands = " ".join(daemons.running().values())
    # Besides raylet and gcs_server, monitors that name no port: they outlived
    # a stop that killed the node's processes by port.
    assert all(name in commands for name in ("raylet", "gcs_server", "monitor.py", "log_monitor.py"))
    daemons.stop()
    assert daemons.running() == {}
