"""Training runs as a user meets them: run folders evaluated from anywhere,
their own code brought in from the current directory or a file, config
mistakes explained in one line, run names, resume, seed lists."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from omnigym.rllib.train_config import compose
from test_train import USER_ENV     # the same user env module as the training tests

ROOT = Path(__file__).resolve().parents[1]
OMNIGYM = str(Path(sys.executable).with_name("omnigym"))  # the console script, as a user runs it
# Small, fast PPO settings (as in test_train.py): these tests check the machinery, not learning.
FAST = ["algo.training.train_batch_size_per_learner=400", "algo.training.minibatch_size=100",
        "algo.training.num_epochs=1", "policy.config.hidden=[32,32]", "evaluation.episodes=3",
        "evaluation.baselines=[]", "progress=false"]
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def omnigym(cwd, *args, env=None, timeout=400):
    """The command run from ``cwd`` with no PYTHONPATH: only what a user's shell has."""
    environ = {k: v for k, v in {**RAY_ENV, **(env or {})}.items() if k != "PYTHONPATH"}
    proc = subprocess.run([OMNIGYM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environ)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------ run folders, from anywhere
def fake_run(run: Path, env_id="CartPole-v1", kwargs=None, modules=()) -> Path:
    """A run folder as omnigym train leaves it: config.yaml and one checkpoint
    holding an (untrained) RLModule."""
    from omegaconf import OmegaConf
    from omnigym.rllib.env_spec import TrainEnv
    from omnigym.rllib.inference import MODULE_SUBDIR
    from omnigym.rllib.policies import omnigym_policy
    spec = TrainEnv(env_id, observation_space=gym.spaces.Box(-1, 1, (4,), np.float32),
                    action_space=gym.spaces.Discrete(2))
    module = omnigym_policy({"name": "mlp", "config": {"hidden": [8]}}, spec)["rl_module_spec"].build()
    module.save_to_path(str((run / "checkpoints" / "iter_00001" / MODULE_SUBDIR).resolve()))
    (run / "checkpoints" / "latest").write_text("iter_00001")
    cfg = compose(["env=cartpole", "iterations=1"])
    cfg.env.id, cfg.env.kwargs, cfg.env.modules = env_id, kwargs or {}, list(modules)
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return run


def test_a_run_loads_from_a_relative_path_and_says_what_env_it_was_trained_on(tmp_path, monkeypatch):
    from omnigym.rllib.inference import MODULE_SUBDIR, RLModuleAgent
    run = fake_run(tmp_path / "runs" / "r", "robots/Reach-v0", {"mode": "vector"}, ["/abs/my_envs.py"])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    for path in ("../runs/r", "../runs/r/checkpoints/iter_00001", run.resolve()):
        agent = RLModuleAgent.from_checkpoint(path)
        assert (agent.env_id, agent.env_kwargs, agent.env_modules) == (
            "robots/Reach-v0", {"mode": "vector"}, ["/abs/my_envs.py"])
        assert agent.act(np.zeros(4, np.float32), {}) in (0, 1)
    (tmp_path / "bare").mkdir()  # an RLlib module checkpoint outside any run folder
    os.rename(run / "checkpoints" / "iter_00001" / MODULE_SUBDIR, tmp_path / "bare" / "default_policy")
    agent = RLModuleAgent.from_checkpoint("../bare/default_policy")
    assert (agent.env_id, agent.env_kwargs, agent.env_modules) == (None, None, None)


# --------------------------------------------------------------- user code
@pytest.fixture
def clean_imports(monkeypatch):
    """Undo what importing the test's user modules does to sys.path and sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in ("cwd_envs_a", "file_envs_b", "pkg_c", "pkg_c.envs"):
        sys.modules.pop(name, None)


def test_user_modules_come_from_the_current_directory_or_a_file(tmp_path, monkeypatch, clean_imports):
    from omnigym.user_code import import_user_module, portable_spec
    (tmp_path / "cwd_envs_a.py").write_text("VALUE = 'cwd'\n")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "file_envs_b.py").write_text("from cwd_envs_a import VALUE as NEIGHBOUR\n"
                                                         "VALUE = 'file'\n")
    (tmp_path / "pkg_c").mkdir()
    (tmp_path / "pkg_c" / "__init__.py").write_text("")
    (tmp_path / "pkg_c" / "envs.py").write_text("from . import __name__ as PARENT\n")
    monkeypatch.chdir(tmp_path)
    sys.path[:] = [p for p in sys.path if p not in ("", str(tmp_path))]  # as under the `omnigym` script
    assert import_user_module("cwd_envs_a").VALUE == "cwd"
    assert import_user_module("plugins/file_envs_b.py").__name__ == "file_envs_b"
    assert import_user_module(str(tmp_path / "pkg_c" / "envs.py")).__name__ == "pkg_c.envs"
    assert import_user_module("pkg_c.envs").PARENT == "pkg_c"
    # What other processes (workers, a later eval elsewhere) are given: absolute files, installed names.
    assert portable_spec("cwd_envs_a") == str(tmp_path / "cwd_envs_a.py")
    assert portable_spec("plugins/file_envs_b.py") == str(tmp_path / "plugins" / "file_envs_b.py")
    assert portable_spec("json") == "json"
    for missing, says in (("no_such_envs", "no no_such_envs.py in"), ("nowhere/envs.py", "no such .py file")):
        with pytest.raises(ValueError, match=says) as err:
            import_user_module(missing)
        assert "\n" not in str(err.value)


PLUGIN = '''
import os
with open(os.environ["IMPORT_LOG"], "a") as f:
    f.write(f"plugin {os.getpid()}\\n")
'''


def test_user_modules_from_the_current_directory_and_a_file_reach_the_workers(tmp_path):
    (tmp_path / "user_corridor.py").write_text(USER_ENV)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "logged.py").write_text(PLUGIN)
    log = tmp_path / "imports.txt"
    proc = omnigym(tmp_path, "train", *FAST, "env=cartpole", "env.id=user/Corridor-v0",
                   "env.modules=[user_corridor,plugins/logged.py]", "resources.num_env_runners=1",
                   "resources.num_envs_per_env_runner=1", "iterations=1", env={"IMPORT_LOG": str(log)})
    run = tmp_path / "runs" / "ppo-user-corridor-v0-s0"
    assert str(run / "report" / "report.md") in proc.stdout
    imported = [line.split() for line in log.read_text().splitlines()]
    for module in ("corridor", "plugin"):  # in the driver and in the env runner, another process
        assert len({pid for name, pid in imported if name == module}) >= 2, imported
    # The run remembers them as files, so it resumes and evaluates from anywhere.
    config = (run / "config.yaml").read_text()
    assert str(tmp_path / "user_corridor.py") in config and str(tmp_path / "plugins" / "logged.py") in config


# ----------------------------------------------------- the config, by hand
@pytest.mark.parametrize("override,says", [
    ("iteratons=3", "unknown key 'iteratons' (did you mean 'iterations'?)"),
    ("algo.training.lrr=1e-3", "unknown key 'algo.training.lrr' (did you mean 'algo.training.lr'?)"),
    ("env=cartpol", "no option 'cartpol' in group env; options: cartpole, "),
    ("seed=0,1", "lists are written in brackets, seed=[0,1]"),
    ("env.kwargs.length=8", "to add a new key write +env.kwargs.length=8"),
])
def test_config_mistakes_are_one_line_naming_the_key_and_its_closest_match(override, says):
    with pytest.raises(ValueError) as err:
        compose([override])
    assert says in str(err.value) and "\n" not in str(err.value)
    if override == "env=cartpol":
        assert str(err.value).endswith("(did you mean 'cartpole'?)")


def test_train_help_lists_groups_options_keys_and_examples():
    from omnigym.rllib.train_config import train_help
    text = train_help()
    for needle in ("algo ", "ppo (default)", "sac", "env ", "household_hold (default)", "robots_reach",
                   "policy ", "scorer", "resources ", "cluster", "iterations=20", "seed=0",
                   "evaluation.episodes=30", "--print-config", "omnigym train env=cartpole seed=[0,1,2]"):
        assert needle in text, needle


def test_run_names_come_from_the_env_id():
    assert compose(["env=cartpole"]).out_dir == "runs/ppo-cartpole-v1-s0"
    assert compose(["env=cartpole", "env.id=user/Corridor-v0", "seed=3"]).out_dir == "runs/ppo-user-corridor-v0-s3"
    assert compose(["env=cartpole", "run_name=mine"]).out_dir == "runs/mine"
    assert compose(["env=cartpole", "out_dir=/tmp/there"]).out_dir == "/tmp/there"


def test_resume_continues_to_the_iterations_asked_or_says_why_not(tmp_path):
    from omegaconf import OmegaConf
    from omnigym.rllib.train import prepare_run
    run = tmp_path / "run"
    fake_run(run)
    saved = OmegaConf.load(run / "config.yaml")
    saved.iterations = 4                      # a 4-iteration run, killed after its checkpoint at 3
    (run / "config.yaml").write_text(OmegaConf.to_yaml(saved))
    os.rename(run / "checkpoints" / "iter_00001", run / "checkpoints" / "iter_00003")
    resume = ["env=cartpole", f"out_dir={run}", "resume=true"]
    assert prepare_run(compose(resume))[0].iterations == 4          # the run's own target
    with pytest.raises(ValueError, match=r"already done 3 iterations.*pass iterations=3 or more") as err:
        prepare_run(compose([*resume, "iterations=2"]))
    assert "\n" not in str(err.value)
    assert prepare_run(compose([*resume, "iterations=10"]))[0].iterations == 10
    assert OmegaConf.load(run / "config.yaml").iterations == 10     # and a later resume goes there too


# ------------------------------------------------------------ seed lists
def test_a_seed_list_gives_one_run_per_seed_and_a_report_across_them(tmp_path):
    from omnigym.rllib.seeds import aggregate_dir, seed_configs, write_seed_report
    cfg = compose(["env=cartpole", "seed=[0,1,2]"])
    assert [c.out_dir for c in seed_configs(cfg, [0, 1, 2])] == [f"runs/ppo-cartpole-v1-s{s}" for s in (0, 1, 2)]
    named = compose(["env=cartpole", "run_name=mine", "seed=[0,1]"])
    assert [c.out_dir for c in seed_configs(named, [0, 1])] == ["runs/mine-s0", "runs/mine-s1"]
    assert aggregate_dir(Path("runs/ppo-cartpole-v1-s0"), 0) == Path("runs/ppo-cartpole-v1-seeds")
    runs = []
    for seed, (success, ret) in enumerate([(0.5, 10.0), (0.7, 20.0), (0.6, 30.0)]):
        run = tmp_path / f"ppo-x-s{seed}"
        run.mkdir()
        (run / "metrics.csv").write_text(f"iteration,env_steps,episode_return_mean\n1,400,{ret / 2}\n2,800,{ret}\n")
        (run / "eval.csv").write_text(f"iteration,env_steps,success_rate,return_mean\n2,800,{success},{ret}\n")
        runs.append((seed, run))
    report = write_seed_report(runs, tmp_path / "ppo-x-seeds", "ppo on X")
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["success_rate"]["mean"] == pytest.approx(0.6)
    assert summary["return_mean"]["mean"] == pytest.approx(20.0)
    # t interval over 3 seeds: sd 10, t(0.975, 2) = 4.303 -> half width 24.8
    assert summary["return_mean"]["half_width"] == pytest.approx(4.3027 * 10 / 3 ** 0.5, rel=1e-3)
    text = report.read_text()
    assert "mean ± 95% CI" in text and "60% ± 24.8%" in text and "learning_curves.png" in text
    assert (report.parent / "learning_curves.png").stat().st_size > 0


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """seed=[0,1] trained through the command, one iteration each, in a user's folder."""
    cwd = tmp_path_factory.mktemp("user")
    proc = omnigym(cwd, "train", *FAST, "env=cartpole", "seed=[0,1]", "iterations=1")
    return cwd, proc


def test_a_seed_list_trains_each_seed_and_prints_where_the_report_is(two_seeds):
    cwd, proc = two_seeds
    for seed in (0, 1):
        run = cwd / "runs" / f"ppo-cartpole-v1-s{seed}"
        assert [int(r["iteration"]) for r in rows(run / "metrics.csv")] == [1]
        assert f"tensorboard --logdir {run / 'tb'}" in (run / "report" / "report.md").read_text()
    aggregate = cwd / "runs" / "ppo-cartpole-v1-seeds"
    assert str(aggregate / "report.md") in proc.stdout
    assert "tensorboard --logdir" in proc.stdout
    assert [r["seed"] for r in json.loads((aggregate / "summary.json").read_text())["runs"]] == [0, 1]


def test_a_run_is_evaluated_from_a_relative_path_and_resumed_to_more_iterations(two_seeds):
    cwd, _ = two_seeds
    omnigym(cwd, "eval", "CartPole-v1", "--agent", "runs/ppo-cartpole-v1-s0", "--panel", "0..2",
            "--out", "reports/eval", "--no-record")
    # One name per agent: a run goes by its algorithm, as in its own report; two
    # runs of one algorithm side by side go by their run names.
    summary = json.loads((cwd / "reports/eval/summary.json").read_text())
    assert [s["policy"] for s in summary["sections"]] == ["ppo"]
    omnigym(cwd, "eval", "CartPole-v1", "--agent", "runs/ppo-cartpole-v1-s0", "--agent", "runs/ppo-cartpole-v1-s1",
            "--panel", "0..2", "--out", "reports/both", "--no-record")
    summary = json.loads((cwd / "reports/both/summary.json").read_text())
    assert [s["policy"] for s in summary["sections"]] == ["ppo-cartpole-v1-s0", "ppo-cartpole-v1-s1"]
    omnigym(cwd, "train", *FAST, "env=cartpole", "seed=1", "resume=true", "iterations=2")
    assert [int(r["iteration"]) for r in rows(cwd / "runs" / "ppo-cartpole-v1-s1" / "metrics.csv")] == [1, 2]
