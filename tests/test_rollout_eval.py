"""Rollouts over seed panels, groups of identical resets, evaluation and reports."""
from __future__ import annotations

import json

import numpy as np
import pytest

import omnigym
from omnigym.agents import RandomAgent, resolve_agent
from omnigym.episodes import read_episodes
from omnigym.evaluation import evaluate, evaluate_many, panel_seeds
from omnigym.rollout import rollout
from omnigym.wrappers import RecordEpisodes


def test_groups_are_identical_resets_and_random_members_differ():
    eps = rollout("random", "household/PutIn-v0", seeds=[3, 4], group_size=3, progress=False)
    assert len(eps) == 6
    assert [(e.seed, e.group, e.member) for e in eps] == [(3, 0, 0), (3, 0, 1), (3, 0, 2),
                                                           (4, 1, 0), (4, 1, 1), (4, 1, 2)]
    first = eps[:3]
    assert len({e.observations[0] for e in first}) == 1          # same start state
    assert len({e.infos[0]["state_key"] for e in first}) == 1
    assert len({tuple(e.actions) for e in first}) > 1            # the policy's own randomness differs
    assert eps[0].observations[0] != eps[3].observations[0]


def test_rollout_is_reproducible():
    a = rollout("random", "household/Hold-v0", seeds=range(3), group_size=2, progress=False)
    b = rollout("random", "household/Hold-v0", seeds=range(3), group_size=2, progress=False)
    assert [e.actions for e in a] == [e.actions for e in b]
    assert [e.rewards for e in a] == [e.rewards for e in b]


def test_rollout_accepts_callables_and_gymnasium_envs():
    eps = rollout(lambda obs, info: 0, "CartPole-v1", seeds=[0, 1], progress=False)
    assert all(e.actions and set(e.actions) == {0} for e in eps)
    assert all(e.done for e in eps)
    with pytest.raises(ValueError):
        rollout("random", "CartPole-v1", seeds=[0], group_size=0)


def test_expert_beats_random_on_both_panels_with_intervals():
    seeds = range(100000, 100012)
    planner = evaluate("expert", "household/Household-v0", seeds, env_kwargs={"split": "heldout"},
                       progress=False)
    random = evaluate("random", "household/Household-v0", seeds, group_size=2,
                      env_kwargs={"split": "heldout"}, progress=False)
    p, r = planner["summary"], random["summary"]
    assert p["success_rate"] == 1.0 and p["episodes"] == 12
    lo, hi = p["success_ci"]
    assert 0.7 < lo < 1.0 and hi == pytest.approx(1.0)
    assert r["success_rate"] < 0.5 and r["episodes"] == 24
    assert set(r["pass_at_k"]) == {"1", "2"} and r["pass_at_k"]["2"] >= r["pass_at_k"]["1"]
    assert r["pass_hat_k"]["2"] <= r["pass_hat_k"]["1"]
    assert set(p["per_task"]) <= set(omnigym.registry.suite_of("household/Household-v0").templates)


def test_named_panels_come_from_the_suite():
    name, seeds, kwargs = panel_seeds("household/Household-v0", "heldout")
    assert name == "heldout" and kwargs == {"split": "heldout"} and seeds[0] == 100000
    with pytest.raises(ValueError, match="train, test, heldout"):
        panel_seeds("household/Household-v0", "nope")


def test_every_id_has_train_and_test_panels():
    for e in omnigym.list_envs():
        assert {"train", "test"} <= set(omnigym.registry.panels_of(e.id)), e.id
    name, seeds, kwargs = panel_seeds("CartPole-v1", "test")  # plain gymnasium ids too
    assert seeds[0] == 100000 and kwargs == {}


def test_evaluate_many_writes_report_plots_and_episodes(tmp_path):
    path, sections = evaluate_many(["random", "expert"], "household/Hold-v0", [range(0, 4)], tmp_path,
                                   group_size=2, progress=False)
    assert path.read_text().count("| household/Hold-v0 |") == 2
    assert (tmp_path / "success.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "per_task.png").exists()     # Hold has one task: no heat map of one cell
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["policy"] for s in summary["sections"]] == ["random", "expert"]
    assert sections[1]["summary"]["success_rate"] == 1.0


def test_recorded_household_dataset_survives_reader_round_trip(tmp_path):
    env = RecordEpisodes(omnigym.make("household/PutIn-v0", mode="discrete"), tmp_path, episodes_per_file=2)
    policy = RandomAgent(seed=1)
    manual = []
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        policy.reset(env=env, seed=seed)
        steps = [(obs, info)]
        done = False
        while not done:
            action = policy.act(obs, info)
            obs, reward, term, trunc, info = env.step(action)
            steps.append((obs, info, action, reward))
            done = term or trunc
        manual.append(steps)
    env.close()
    episodes = read_episodes(tmp_path)
    assert len(episodes) == 5 and len(env.recorded_paths) == 3
    for ep, steps in zip(episodes, manual):
        assert ep.observations == [s[0] for s in steps]
        assert ep.actions == [s[2] for s in steps[1:]]
        assert ep.rewards == [s[3] for s in steps[1:]]
        assert [i["state_key"] for i in ep.infos] == [s[1]["state_key"] for s in steps]
        assert [i["admissible_actions"] for i in ep.infos] == [s[1]["admissible_actions"] for s in steps]
        assert all(np.array_equal(i["action_mask"], s[1]["action_mask"]) for i, s in zip(ep.infos, steps))
        assert ep.task_id == steps[0][1]["task_id"]


def test_resolve_agent_errors_are_clear():
    with pytest.raises(ValueError, match="unknown agent"):
        resolve_agent("nonsense")
    with pytest.raises(ValueError, match="no expert"):
        resolve_agent("expert", "CartPole-v1")
    with pytest.raises(ValueError, match="module:Name"):
        resolve_agent("omnigym.agents:")
    assert resolve_agent("omnigym.agents:RandomAgent").name == "random"



class _BatchCounting:
    """Takes each episode's first admissible action; records how many
    observations each act_batch call gets."""

    name = "first-action"

    def __init__(self):
        self.batch_sizes = []

    def act_batch(self, observations, infos):
        self.batch_sizes.append(len(observations))
        return [0 for _ in observations]


def test_evaluate_steps_together_the_episodes_an_agent_asks_for():
    env_id = "household/Hold-v0"
    one_by_one = _BatchCounting()
    evaluate(one_by_one, env_id, list(range(4)), progress=False, max_steps=3)
    assert set(one_by_one.batch_sizes) == {1}
    batched = _BatchCounting()
    batched.episodes_per_batch = 4           # what LMAgent says (32): one generate call per step of the panel
    evaluate(batched, env_id, list(range(4)), progress=False, max_steps=3)
    assert batched.batch_sizes[0] == 4 and len(batched.batch_sizes) == 3
