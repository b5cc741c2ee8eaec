"""Group RL on RLlib (``omnigym.rllib.group_rl``): whole groups from armed
sub-envs whatever the episode lengths, advantages on the driver with several
learners, GiGPO anchors by state, failing and stuck episodes dropped, SPO's
tracker and its checkpoint."""
from __future__ import annotations

import dataclasses
import logging
import time

import gymnasium as gym
import numpy as np
import pytest

from omnigym import conversation
from omnigym import info_keys as K
from omnigym.groups import GroupSchedule
from omnigym.policies.agent_rl.episodes import EpisodeRecord, EstimatorConfig, step_advantages
from omnigym.rllib.env_spec import resolve_env
from omnigym.rllib.episode_control import EPISODE_ERROR, IDLE, ArmedEpisodes, EpisodeFaults
from omnigym.rllib.token_env import token_train_env
from omnigym.text import text_space

NODE = {"name": "lm", "tiny": {"arch": "llama"},
        "config": {"max_prompt_tokens": 256, "max_new_tokens": 8, "history_turns": 1, "temperature": 1.0}}


class Countdown(gym.Env):
    """A text env whose episodes differ in length: it ends when the reply
    holds an 'a' or after ``seed % 4 + 2`` turns; seed 13 raises on its
    first step. ``state_key`` is the seed and the turn."""

    def __init__(self):
        self.observation_space, self.action_space = text_space(256), text_space(256)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seed_, self.t = int(seed or 0), 0
        text = f"Task {self.seed_}: say words."
        return text, self._info([conversation.system("Answer."), conversation.user(text)])

    def _info(self, turn, success=False):
        return {K.TURN: turn, K.SUCCESS: success, K.STATE_KEY: f"{self.seed_}:{self.t}", K.INVALID_ACTION: False,
                K.INSTRUCTION: "say words", K.TASK_ID: "countdown"}

    def step(self, action):
        self.t += 1
        if self.seed_ == 13:
            raise RuntimeError("the tool crashed")
        success = "a" in action
        done = success or self.t >= self.seed_ % 4 + 2
        return "go on", float(success), done, False, self._info([conversation.assistant(action),
                                                                conversation.user("go on")], success)


gym.register("omnigym-test/Countdown-v0", entry_point=Countdown)


def group_rl(sub_envs: int, group_size: int, seeds=range(100), learners: int = 0, **training):
    from omnigym.rllib import envs
    from omnigym.rllib.group_rl import GroupRLConfig
    from omnigym.rllib.policies import lm_policy
    schedule = GroupSchedule(group_size, seeds, num_groups=sub_envs // group_size) if group_size > 1 else None
    env = token_train_env(resolve_env("omnigym-test/Countdown-v0", groups=schedule), NODE)
    env = dataclasses.replace(env, armed=True)
    return (GroupRLConfig()
            .environment(envs.register(env, sub_envs), observation_space=env.observation_space,
                         action_space=env.action_space)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=sub_envs)
            .learners(num_learners=learners)
            .debugging(seed=0)
            .training(group_size=group_size, episodes_per_iteration=sub_envs, lr=1e-3, **training)
            .rl_module(**lm_policy(NODE, env)))


def test_armed_sub_envs_play_one_episode_each_and_groups_stay_whole_with_two_learners(ray_session):
    algo = group_rl(sub_envs=8, group_size=4, seeds=range(20, 30), learners=2).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
            episodes = algo._last_episodes
            assert len(episodes) == 8                                     # one per sub-env, none twice
            groups: dict = {}
            for e in episodes:
                groups.setdefault(e.get_infos(0)[K.GROUP], []).append(e)
            assert sorted(len(g) for g in groups.values()) == [4, 4]
            for members in groups.values():
                assert len({m.get_infos(0)[K.STATE_KEY] for m in members}) == 1   # one start per group
                # GRPO: the group's advantages (one per episode) sum to zero, computed over the whole group.
                assert abs(sum(float(m.get_extra_model_outputs("advantages")[0]) for m in members)) < 1e-4
            assert len({len(e) for e in episodes}) >= 1
            assert result["group_rl"]["group_size_min"] == 4
            assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    finally:
        algo.stop()


def test_kl_to_the_frozen_initial_lm_starts_at_zero_and_grows(ray_session):
    # One minibatch per iteration: the first is taken with the initial weights, the second after one update.
    algo = group_rl(sub_envs=4, group_size=2, seeds=range(20, 30), loss={"kl_coef": 0.1, "kl_kind": "k3"}).build_algo()
    try:
        first = algo.train()["learners"]["default_policy"]["kl_ref"]
        later = algo.train()["learners"]["default_policy"]["kl_ref"]
    finally:
        algo.stop()
    assert abs(first) < 1e-6 and later > 1e-6   # the policy moved away from its start


def test_an_episode_that_raises_is_dropped_and_the_iteration_goes_on(ray_session, caplog):
    algo = group_rl(sub_envs=4, group_size=2, seeds=[13, 14]).build_algo()   # group 0 plays seed 13
    try:
        with caplog.at_level(logging.WARNING, logger="omnigym.episodes"):
            result = algo.train()
        kept = algo._last_episodes
        assert result["group_rl"]["episodes_dropped"] == 2
        assert len(kept) == 2 and {e.get_infos(0)[K.STATE_KEY] for e in kept} == {"14:0"}
        assert any("seed 13" in r.getMessage() and "the tool crashed" in r.getMessage() for r in caplog.records)
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    finally:
        algo.stop()


class Stuck(Countdown):
    def step(self, action):
        time.sleep(5)
        return super().step(action)


def test_a_stuck_step_times_out_and_ends_its_episode():
    env = EpisodeFaults(Stuck(), step_timeout_s=0.3)
    env.reset(seed=1)
    start = time.perf_counter()
    _, reward, terminated, truncated, info = env.step("hello")
    assert time.perf_counter() - start < 2
    assert truncated and not terminated and reward == 0.0 and "0.3 s" in info[EPISODE_ERROR]


def test_an_unarmed_sub_env_idles_on_a_one_token_prompt():
    node_env = token_train_env(resolve_env("omnigym-test/Countdown-v0"), NODE)
    env = ArmedEpisodes(node_env.wrapper(Countdown()))
    obs, info = env.reset()
    assert info == {IDLE: True} and obs["attention_mask"].sum() == 1
    env.arm(seed=5)
    obs, info = env.reset()
    assert info["seed"] == 5 and obs["attention_mask"].sum() > 10
    for _ in range(10):
        *_, terminated, truncated, info = env.step(np.zeros(8, dtype=np.int64))
        if terminated or truncated:
            break
    obs, info = env.reset()                  # auto-reset after the episode: parked, not a second episode
    assert info == {IDLE: True}
    assert env.step(np.zeros(8, dtype=np.int64))[1:4] == (0.0, False, False)


def record(group, anchors, rewards, texts=None):
    return EpisodeRecord(group=group, task=group, rewards=np.asarray(rewards, float), anchors=anchors,
                         texts=texts or [], valid=np.ones(len(rewards), bool))


def test_gigpo_step_groups_follow_the_state_key_not_the_text():
    # Two episodes of one group see the same text at step 1, but from different states.
    same_text = ["start", "a corridor", "end"]
    records = [record(0, ["s0", "s1", "s2"], [0, 0, 1], same_text), record(0, ["s0", "x1", "s2"], [0, 0, 0], same_text)]
    by_state = step_advantages(records, EstimatorConfig("gigpo", invalid_penalty=0.0))
    by_text = step_advantages(records, EstimatorConfig("gigpo", anchors="text", similarity=1.0, invalid_penalty=0.0))
    # Episode part: +-0.5 (mean_norm); step groups: s0 (both), s2 (both); s1 and x1 are singletons (0).
    g = 0.95
    assert np.allclose(by_state[0], [0.5 + (g * g - g * g / 2), 0.5, 0.5 + 0.5])
    assert np.allclose(by_state[1], [-0.5 - (g * g - g * g / 2), -0.5, -0.5 - 0.5])
    # Text anchors join s1 and x1 (same text): their step returns now differ from the mean too.
    assert np.allclose(by_text[0][1], 0.5 + (g - g / 2)) and np.allclose(by_text[1][1], -0.5 - (g - g / 2))


def test_spo_samples_tasks_by_priority_updates_its_tracker_and_checkpoints_it(ray_session, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm
    algo = group_rl(sub_envs=4, group_size=1, estimator={"estimator": "spo"}, spo_tasks=[20, 21, 22, 23, 24, 25]).build_algo()
    try:
        result = algo.train()
        tasks = {e.get_infos(0)["seed"] for e in algo._last_episodes}
        assert len(algo._last_episodes) == 4 and tasks <= set(range(20, 26))
        assert set(algo.tracker.alpha) == tasks and set(algo.snapshots) == tasks
        for task in tasks:   # one visit: alpha + beta = rho * (0.5 + 0.5) + 1, rho = 0.96 at zero drift
            assert algo.tracker.alpha[task] + algo.tracker.beta[task] == pytest.approx(0.96 + 1.0)
        algo.train()
        assert result["group_rl"]["groups"] == 4
        algo.save_to_path(str(tmp_path))
        state = algo.tracker.state_dict()
    finally:
        algo.stop()
    resumed = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert resumed.tracker.state_dict() == state and set(resumed.snapshots) == set(algo.snapshots)
    finally:
        resumed.stop()


def test_kill_minus_9_mid_run_then_resume_finishes_the_run(tmp_path):
    """`omnigym train algo=grpo` killed with SIGKILL after its first checkpoint; `resume=true` goes on to the end."""
    import os
    import signal
    import subprocess
    import sys
    run = tmp_path / "run"
    overrides = ["algo=grpo", "policy=lm", "policy.tiny={arch:llama}", "policy.config.temperature=1.0",
                 "policy.config.mode=admissible", "policy.config.max_prompt_tokens=768",
                 "policy.config.max_new_tokens=40", "policy.config.history_turns=1", "env=household",
                 "env.id=household/Hold-v0", "+env.kwargs.max_episode_steps=2", "groups.size=2",
                 "resources.num_envs_per_env_runner=4", "iterations=4", "checkpoint_every=1", "evaluation.every=0",
                 "evaluation.episodes=1", "evaluation.baselines=[]", "progress=false", f"out_dir={run}"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    command = [sys.executable, "-m", "omnigym.cli", "train", *overrides]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (run / "checkpoints" / "iter_00001").exists():
            assert first.poll() is None and time.time() < deadline, "no first checkpoint"
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        os.killpg(first.pid, signal.SIGKILL)   # the driver and the Ray processes it started
        first.wait()
    assert first.returncode == -signal.SIGKILL
    resumed = subprocess.run(command + ["resume=true"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    import csv
    with open(run / "metrics.csv") as f:
        iterations = [int(r["iteration"]) for r in csv.DictReader(f)]
    assert iterations == [1, 2, 3, 4] or iterations[-1] == 4 and sorted(set(iterations)) == [1, 2, 3, 4]
    assert (run / "checkpoints" / "iter_00004").exists()


@pytest.mark.parametrize("env_id,kwargs,mode", [
    ("household/Hold-v0", {"mode": "discrete", "max_episode_steps": 2}, "admissible"),
    ("shell/FreeForm-v0", {"max_episode_steps": 2}, "generate"),
    ("tools/Tools-v0", {"max_episode_steps": 2}, "admissible"),
], ids=["household-discrete", "shell-freeform", "tools"])
def test_one_gigpo_iteration_on_every_text_family(ray_session, env_id, kwargs, mode):
    from omnigym.rllib import envs
    from omnigym.rllib.group_rl import GroupRLConfig
    from omnigym.rllib.policies import lm_policy
    node = {"name": "lm", "tiny": {"arch": "llama"},
            "config": {"max_prompt_tokens": 4096, "max_new_tokens": 48, "history_turns": 1, "temperature": 1.0,
                       "mode": mode}}
    env = token_train_env(resolve_env(env_id, kwargs, groups=GroupSchedule(2, range(10), num_groups=2)), node)
    env = dataclasses.replace(env, armed=True)
    algo = (GroupRLConfig()
            .environment(envs.register(env, 4), observation_space=env.observation_space, action_space=env.action_space)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=4).learners(num_learners=0).debugging(seed=0)
            .training(group_size=2, episodes_per_iteration=4, lr=1e-3, estimator={"estimator": "gigpo"})
            .rl_module(**lm_policy(node, env))).build_algo()
    try:
        result = algo.train()
        assert len(algo._last_episodes) == 4 and result["group_rl"]["group_size_min"] == 2
        assert all(e.get_infos(0)[K.STATE_KEY] for e in algo._last_episodes)
        learned = result["learners"]["default_policy"]
        assert np.isfinite(learned["total_loss"]) and abs(learned["approx_kl"]) < 1e-5
    finally:
        algo.stop()
