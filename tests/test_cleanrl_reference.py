"""The single-file CleanRL-style PPO reference (benchmarks/cleanrl_ppo.py):
it learns CartPole, samples only admissible actions on a masked household
env, handles Box actions (clipped at the env), and prints its RESULT line."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "cleanrl_ppo.py"
RESULT_KEYS = {"env_id", "total_timesteps", "sps", "wall_s", "mean_return_last", "time_env_s", "time_update_s"}


@pytest.fixture(scope="module")
def ppo():
    spec = importlib.util.spec_from_file_location("cleanrl_ppo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolves string annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_args_parse_from_command_line(ppo):
    args = ppo.parse_args(["--env-id", "household/Hold-v0", "--env-kwargs", '{"mode": "vector", "progress_reward": 0.5}',
                           "--total-timesteps", "1000", "--no-anneal-lr", "--hidden", "32,16", "--target-kl", "0.02"])
    assert args.env_id == "household/Hold-v0"
    assert json.loads(args.env_kwargs) == {"mode": "vector", "progress_reward": 0.5}
    assert args.total_timesteps == 1000 and args.anneal_lr is False and args.target_kl == 0.02
    assert args.hidden == "32,16" and args.num_envs == 4 and args.torch_threads == 1
    defaults = ppo.parse_args([])
    assert defaults == ppo.Args()


def test_cartpole_learns(ppo):
    # A uniformly random CartPole policy averages ~22 steps; every seed we tried
    # is above 150 after 8k steps with the defaults.
    result = ppo.train(ppo.Args(env_id="CartPole-v1", total_timesteps=8192, seed=1, quiet=True))
    assert RESULT_KEYS <= set(result)
    assert result["total_timesteps"] == 8192 and result["iterations"] == 16
    assert result["episodes"] >= 20
    assert result["mean_return_last"] > 100, result


def test_household_masked_sampling_never_picks_masked_index(ppo):
    common = dict(env_id="household/Hold-v0", env_kwargs='{"mode": "vector"}', num_envs=4, num_steps=64,
                  total_timesteps=2 * 4 * 64, seed=0, quiet=True)
    masked = ppo.train(ppo.Args(**common))
    assert masked["iterations"] == 2 and masked["total_timesteps"] == 512
    assert masked["masked_picks"] == 0
    assert masked["invalid_actions"] == 0  # the env's own verdict, from info["invalid_action"] on every step
    assert masked["episodes"] > 0 and 0.0 <= masked["success_rate"] <= 1.0
    # The counter is live: sampling over all max_actions indices hits invalid ones.
    unmasked = ppo.train(ppo.Args(**common, use_action_mask=False))
    assert "masked_picks" not in unmasked
    assert unmasked["invalid_actions"] > 50


def test_halfcheetah_box_actions_are_clipped_at_the_env(ppo, monkeypatch):
    seen = []

    class Record(gym.Wrapper):
        def step(self, action):
            seen.append(np.asarray(action).copy())
            return self.env.step(action)

    real_make = ppo.omnigym.make
    monkeypatch.setattr(ppo.omnigym, "make", lambda env_id, **kw: Record(real_make(env_id, **kw)))
    result = ppo.train(ppo.Args(env_id="HalfCheetah-v5", num_envs=2, num_steps=64, total_timesteps=128,
                                seed=0, quiet=True))
    assert result["iterations"] == 1 and result["total_timesteps"] == 128
    assert result["time_env_s"] > 0 and result["time_update_s"] > 0
    actions = np.stack(seen)
    assert actions.shape == (128, 6)
    assert actions.min() >= -1.0 and actions.max() <= 1.0
    assert np.isclose(np.abs(actions), 1.0).any()  # std 1 at init: some samples were out of bounds and clipped


def test_result_json_line_printed_as_subprocess():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--env-id", "CartPole-v1", "--total-timesteps", "1024",
                           "--num-steps", "128", "--seed", "3"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("iter ") and "SPS=" in line for line in lines) == 2
    results = [line for line in lines if line.startswith("RESULT ")]
    assert len(results) == 1 and results[0] == lines[-1]
    result = json.loads(results[0][len("RESULT "):])
    assert RESULT_KEYS <= set(result)
    assert result["env_id"] == "CartPole-v1" and result["total_timesteps"] == 1024
    assert result["sps"] > 0 and result["wall_s"] >= result["time_env_s"] + result["time_update_s"] * 0.99
