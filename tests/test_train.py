"""omnigym train on RLlib: real training runs in real subprocesses, as a user runs them."""
from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Small, fast PPO settings: these tests check the machinery, not learning.
FAST = ["algo.training.train_batch_size_per_learner=400", "algo.training.minibatch_size=100",
        "algo.training.num_epochs=1", "policy.config.hidden=[32,32]", "evaluation.episodes=3",
        "evaluation.baselines=[]", "progress=false"]


def train_cmd(out_dir, *overrides):
    return [sys.executable, "-m", "omnigym.cli", "train", f"out_dir={out_dir}", *FAST, *overrides]


def run_train(out_dir, *overrides, env=None, timeout=400):
    proc = subprocess.run(train_cmd(out_dir, *overrides), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def metrics(out_dir) -> list[dict]:
    with open(Path(out_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ masking
def test_masked_actions_are_never_sampled():
    import torch
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from omnigym.rllib.module import OmnigymTorchRLModule
    n = 12
    space = gym.spaces.Dict({"observations": gym.spaces.Box(-1, 1, (5,), np.float32),
                             "action_mask": gym.spaces.Box(0, 1, (n,), np.float32)})
    module = RLModuleSpec(module_class=OmnigymTorchRLModule, observation_space=space,
                          action_space=gym.spaces.Discrete(n),
                          model_config={"policy": "mlp", "policy_config": {"hidden": [16]}}).build()
    # Make the masked actions the most attractive ones: they still must never come out.
    with torch.no_grad():
        module.policy.actor_head.bias[:] = torch.arange(n, dtype=torch.float32) * 5
    rng = np.random.default_rng(0)
    batch = 4096
    mask = (rng.random((batch, n)) < 0.3).astype(np.float32)
    mask[np.arange(batch), rng.integers(0, n, batch)] = 1.0       # at least one valid action
    obs = {"observations": torch.as_tensor(rng.uniform(-1, 1, (batch, 5)).astype(np.float32)),
           "action_mask": torch.as_tensor(mask)}
    for forward in (module.forward_exploration, module.forward_inference, module.forward_train):
        logits = forward({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
        dist = module.get_exploration_action_dist_cls().from_logits(logits)
        for _ in range(5):
            actions = dist.sample().numpy()
            assert mask[np.arange(batch), actions].all()
        greedy = logits.argmax(-1).numpy()
        assert mask[np.arange(batch), greedy].all()


def test_training_on_a_masked_household_env_never_takes_an_invalid_action(tmp_path):
    run_train(tmp_path / "run", "env=household_hold", "iterations=1", "env.kwargs.progress_reward=0.5")
    rows = metrics(tmp_path / "run")
    assert len(rows) == 1 and int(rows[0]["env_steps"]) >= 400
    # Sample with the trained module through the env runner path and look at every info.
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm
    from omnigym.rllib import envs
    from omnigym.rllib.env_spec import resolve_env
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        envs.register(resolve_env("household/Hold-v0", {"mode": "vector", "progress_reward": 0.5}))
        algo = Algorithm.from_checkpoint(str(tmp_path / "run" / "checkpoints" / "iter_00001"))
        episodes = algo.env_runner.sample(num_timesteps=600, random_actions=False)
        infos = [i for e in episodes for i in e.get_infos()]
        assert len(infos) > 600 and not any(i.get("invalid_action") for i in infos)
        algo.stop()
    finally:
        ray.shutdown()


# --------------------------------------------------- configs and inference
CONFIGS = ROOT / "platform" / "omnigym" / "configs"


def test_every_algo_and_policy_config_names_a_builder():
    from hydra.utils import get_class, get_method

    from omnigym.rllib.train_config import compose
    for group in ("algo", "policy"):
        for path in sorted((CONFIGS / group).glob("*.yaml")):
            node = compose([f"{group}={path.stem}"])[group]   # composed: group-RL algos share configs/_base
            assert callable(get_method(node._target_)), path
            if node.get("module"):
                assert callable(get_method(node.module)), path
            if node.get("config_class"):
                assert callable(get_class(node.config_class)), path


def test_the_train_env_is_described_once_and_groups_must_fill_the_sub_envs():
    from omnigym.rllib.env_spec import train_env
    from omnigym.rllib.train_config import compose
    env = train_env(compose(["env=cartpole"]))
    assert (env.id, env.mask, env.layout, env.groups) == ("CartPole-v1", False, None, None)
    assert env.observation_space.shape == (4,) and env.action_space.n == 2
    grouped = train_env(compose(["env=cartpole", "groups.size=2", "resources.num_envs_per_env_runner=4"]))
    assert (grouped.groups.group_size, grouped.groups.num_groups) == (2, 2)
    with pytest.raises(ValueError, match="must divide"):
        train_env(compose(["env=cartpole", "groups.size=3", "resources.num_envs_per_env_runner=4"]))


def test_the_scorer_needs_an_env_that_describes_its_action_table():
    from omnigym.rllib.env_spec import TrainEnv
    from omnigym.rllib.policies import action_scorer
    space = gym.spaces.Box(0, 10, (4 + 3 * 3,), np.float32)
    policy = {"name": "scorer", "config": {"embed": 8}}
    with pytest.raises(ValueError, match="policy=mlp"):
        action_scorer(policy, TrainEnv("x", observation_space=space, action_space=gym.spaces.Discrete(3)))
    layout = {"state_dim": 4, "slots": 3, "fields": 3, "vocab": 11}
    spec = action_scorer(policy, TrainEnv("x", observation_space=space, action_space=gym.spaces.Discrete(3),
                                          layout=layout))["rl_module_spec"]
    assert spec.model_config["policy_config"] == {**layout, "embed": 8}
    assert spec.build().policy is not None


def _policy(observation_space, action_space, greedy=True):
    from omnigym.rllib.env_spec import TrainEnv
    from omnigym.rllib.inference import RLModuleAgent
    from omnigym.rllib.policies import omnigym_policy
    env = TrainEnv("x", observation_space=observation_space, action_space=action_space)
    spec = omnigym_policy({"name": "mlp", "config": {"hidden": [8]}}, env)["rl_module_spec"]
    return RLModuleAgent(spec.build(), greedy=greedy)


def test_act_batch_gives_act_for_each_observation_in_one_pass():
    n, rng = 6, np.random.default_rng(0)
    inner = gym.spaces.Box(-1, 1, (5,), np.float32)
    masked = gym.spaces.Dict({"observations": inner, "action_mask": gym.spaces.Box(0, 1, (n,), np.float32)})
    obs = [rng.uniform(-1, 1, 5).astype(np.float32) for _ in range(64)]
    infos = [{"action_mask": np.eye(n, dtype=bool)[i % n] | np.eye(n, dtype=bool)[(i + 1) % n]} for i in range(64)]
    greedy = _policy(masked, gym.spaces.Discrete(n))
    actions = greedy.act_batch(obs, infos)
    assert actions == [greedy.act(o, i) for o, i in zip(obs, infos)]
    assert all(i["action_mask"][a] for a, i in zip(actions, infos))           # masked actions never come out
    sampled = _policy(masked, gym.spaces.Discrete(n), greedy=False).act_batch(obs * 4, infos * 4)
    assert all(i["action_mask"][a] for a, i in zip(sampled, infos * 4)) and len(set(sampled)) == n
    box = gym.spaces.Box(-0.5, 0.5, (2,), np.float32)
    continuous = _policy(inner, box, greedy=False).act_batch(obs, [{}] * len(obs))
    assert len(continuous) == len(obs) and all(a.shape == (2,) and box.contains(a) for a in continuous)


# ------------------------------------------------------------- the command
def test_ppo_trains_cartpole_and_halfcheetah_through_the_same_command(tmp_path):
    for env_name in ("cartpole", "halfcheetah"):
        out = tmp_path / env_name
        proc = run_train(out, f"env={env_name}", "iterations=2", "checkpoint_every=1")
        rows = metrics(out)
        assert [int(r["iteration"]) for r in rows] == [1, 2]
        assert int(rows[-1]["env_steps"]) >= 800
        assert (out / "config.yaml").read_text().count(f"name: {env_name}") == 1
        report = (out / "report" / "report.md").read_text()
        assert "learning_curve.png" in report and (out / "report" / "learning_curve.png").exists()
        assert "report:" in proc.stdout
        assert list((out / "tb").glob("events.out.tfevents.*"))


def test_eval_accepts_a_checkpoint_and_a_finished_run_needs_resume(tmp_path):
    out = tmp_path / "cp"
    run_train(out, "env=cartpole", "iterations=1")
    again = subprocess.run(train_cmd(out, "env=cartpole", "iterations=2"), cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 2 and "resume=true" in again.stderr
    proc = subprocess.run([sys.executable, "-m", "omnigym.cli", "eval", "CartPole-v1", "--policy", str(out),
                           "--policy", "random", "--panel", "0..4", "--out", str(tmp_path / "eval")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ppo" in proc.stdout and "random" in proc.stdout     # a run is named after its algorithm, as in its report


def test_resume_after_kill_9_continues_from_the_last_checkpoint(tmp_path):
    out = tmp_path / "killed"
    cmd = train_cmd(out, "env=cartpole", "iterations=6", "checkpoint_every=1", "keep_checkpoints=10")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    latest = out / "checkpoints" / "latest"
    deadline = time.time() + 300
    while time.time() < deadline:
        if latest.exists() and latest.read_text().strip() >= "iter_00002":
            break
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)      # the trainer and everything it started
    proc.wait()
    killed_at = latest.read_text().strip()
    done_before = len(metrics(out))
    assert int(killed_at[-5:]) >= 2 and done_before < 6
    resumed = run_train(out, "env=cartpole", "resume=true", "iterations=6")
    assert f"from {killed_at}" in resumed.stdout
    rows = metrics(out)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4, 5, 6]      # continuous, no duplicates
    steps = [int(r["env_steps"]) for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == 6
    assert sorted(p.name for p in (out / "checkpoints").glob("iter_*"))[-1] == "iter_00006"
    # The checkpoint resumed from was complete (it is only named iter_* after a full save).
    for name in ("algorithm_state.pkl", "rllib_checkpoint.json", "learner_group"):
        assert (out / "checkpoints" / killed_at / name).exists()


# ------------------------------------------------- user envs, crashes, nodes
USER_ENV = '''
import os
import gymnasium as gym
import numpy as np
import omnigym

if os.environ.get("IMPORT_LOG"):      # which processes imported this module
    with open(os.environ["IMPORT_LOG"], "a") as f:
        f.write(f"corridor {os.getpid()}\\n")


class Corridor(gym.Env):
    """Walk right to the end of a corridor. CRASH_FILE makes one worker die
    once; NODE_LOG collects the Ray node of every instance."""
    def __init__(self, length=6):
        self.length = length
        self.observation_space = gym.spaces.Box(0, 1, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        marker = os.environ.get("NODE_LOG")
        if marker:
            import ray
            with open(marker, "a") as f:
                f.write(ray.get_runtime_context().get_node_id() + "\\n")

    def _obs(self):
        o = np.zeros(self.length, np.float32); o[self.pos] = 1; return o

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed); self.pos = 0; self.t = 0
        return self._obs(), {"success": False}

    def step(self, action):
        self.t += 1
        crash = os.environ.get("CRASH_FILE")
        if crash and self.t == 3 and not os.path.exists(crash):
            open(crash, "w").close()
            os._exit(1)          # the env runner process dies
        self.pos = min(self.length - 1, max(0, self.pos + (1 if action == 1 else -1)))
        done = self.pos == self.length - 1
        return self._obs(), float(done), done, self.t >= 30, {"success": done}

omnigym.register("user/Corridor-v0", Corridor, family="user", doc="a corridor")
'''


@pytest.fixture
def user_env(tmp_path):
    (tmp_path / "user_corridor.py").write_text(USER_ENV)
    return {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_user_env_registered_at_run_time_trains_with_two_env_runners(tmp_path, user_env):
    out = tmp_path / "user"
    node_log = tmp_path / "nodes.txt"
    run_train(out, "env=cartpole", "env.id=user/Corridor-v0", "env.name=corridor", "env.modules=[user_corridor]",
              "resources.num_env_runners=2", "resources.num_envs_per_env_runner=1", "iterations=1",
              env={**user_env, "NODE_LOG": str(node_log)})
    assert int(metrics(out)[0]["env_steps"]) >= 400
    assert len(node_log.read_text().split()) >= 2      # envs were built inside the remote runners


def test_crashed_env_runner_is_restarted_and_training_continues(tmp_path, user_env):
    out = tmp_path / "crash"
    crash = tmp_path / "crashed"
    run_train(out, "env=cartpole", "env.id=user/Corridor-v0", "env.modules=[user_corridor]",
                     "resources.num_env_runners=1", "resources.num_envs_per_env_runner=1", "iterations=3",
                     env={**user_env, "CRASH_FILE": str(crash)})
    assert crash.exists()                                   # a runner really died
    assert [int(r["iteration"]) for r in metrics(out)] == [1, 2, 3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_node_loopback_cluster_runs_env_runners_on_both_nodes(tmp_path, user_env, daemons):
    port = _free_port()
    ray_bin = str(Path(sys.executable).with_name("ray"))
    node_log = tmp_path / "nodes.txt"
    # The nodes' workers inherit the environment of `ray start`; the daemons
    # fixture stops every process the two `ray start`s leave behind.
    env = {**os.environ, **user_env, **daemons.env, "RAY_AUTH_MODE": "disabled", "NODE_LOG": str(node_log)}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
                   check=True, env=env, capture_output=True, timeout=120)
    subprocess.run([ray_bin, "start", f"--address=127.0.0.1:{port}", *common],
                   check=True, env=env, capture_output=True, timeout=120)
    out = tmp_path / "cluster"
    run_train(out, "resources=cluster", f"resources.address=127.0.0.1:{port}", "env=cartpole",
              "env.id=user/Corridor-v0", "env.modules=[user_corridor]", "resources.num_env_runners=2",
              "resources.num_envs_per_env_runner=1", "iterations=1",
              env={**user_env, "NODE_LOG": str(node_log)})
    assert [int(r["iteration"]) for r in metrics(out)] == [1]
    assert len(set(node_log.read_text().split())) == 2     # env runners on both nodes


@pytest.mark.parametrize("algo,env_name,extra", [
    ("appo", "cartpole", ["algo.training.train_batch_size_per_learner=200"]),
    ("sac", "pendulum", ["algo.training.num_steps_sampled_before_learning_starts=100"]),
    ("bc", "household_hold", ["algo.demonstrations.seeds=[1000,1019]"]),
])
def test_every_algorithm_of_the_algo_group_trains(tmp_path, algo, env_name, extra):
    out = tmp_path / algo
    overrides = [o for o in FAST if not o.startswith("algo.training")] if algo != "ppo" else FAST
    proc = subprocess.run([sys.executable, "-m", "omnigym.cli", "train", f"out_dir={out}", *overrides,
                           f"algo={algo}", f"env={env_name}", "iterations=2", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=400,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = metrics(out)
    assert [int(r["iteration"]) for r in rows] == [1, 2] and int(rows[-1]["env_steps"]) > 0
    summary = (out / "report" / "summary.json").read_text()
    assert f'"policy": "{algo}"' in summary
    if algo == "bc":   # demonstrations were recorded with the expert first
        assert list((out / "demonstrations").glob("*.parquet"))
