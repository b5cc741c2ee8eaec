"""The contract of DESIGN §2, checked on every registered id, plus the
harness conventions built on it: gymnasium-native ids, batched grouped
rollouts, and one chat-export path for every text family."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import omnigym
from omnigym import info_keys as K
from omnigym.checker import check_id, format_table
from omnigym.episodes import export_chat_jsonl
from omnigym.rollout import rollout

IDS = [e.id for e in omnigym.list_envs()]


@pytest.mark.parametrize("env_id", IDS)
def test_every_registered_id_passes_omnigym_check(env_id):
    results = check_id(env_id)
    assert all(r.ok for r in results), format_table(results)


def test_check_reports_a_broken_env():
    # CartPole has none of omnigym's conventions: the table must say so, not pass it.
    results = check_id("CartPole-v1")
    failures = results[0].failures()
    assert {"info keys", "snapshot", "state key", "bad actions"} <= set(failures)
    assert "FAIL CartPole-v1" in format_table(results)


def test_ids_exist_after_a_plain_import_in_a_fresh_interpreter():
    code = ("import gymnasium, omnigym\n"
            "gymnasium.register_envs(omnigym)\n"
            "a = gymnasium.make('household/Hold-v0')\n"
            "b = gymnasium.make('omnigym:robots/Push-v0')\n"
            "print(a.unwrapped.__class__.__name__, b.unwrapped.__class__.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["HouseholdEnv", "ArmEnv"]
    # the module prefix alone imports omnigym, as gymnasium-robotics ids do
    code = "import gymnasium\nprint(gymnasium.make('omnigym:tools/Arithmetic-v0').spec.id)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tools/Arithmetic-v0"


class CountingBatchAgent:
    """A batched agent that records the size of every batch it is given."""

    name = "counting"

    def __init__(self):
        self.sizes: list[int] = []
        self.resets: list[tuple] = []

    def reset_batch(self, envs, seeds, members):
        self.resets.append((tuple(seeds), tuple(members)))

    def act_batch(self, observations, infos):
        self.sizes.append(len(observations))
        return [0] * len(observations)


def test_a_batched_agent_sees_whole_groups():
    # household Hold in discrete mode: index 0 is always admissible and the
    # episode runs to the step limit, so every member lives equally long.
    agent = CountingBatchAgent()
    episodes = rollout(agent, "household/Hold-v0", seeds=[0, 1, 2], group_size=4, groups_per_batch=1,
                       env_kwargs={"mode": "discrete"}, max_steps=5, progress=False)
    assert agent.sizes == [4] * 15                      # 3 groups x 5 steps, 4 members each
    assert agent.resets == [((0, 0, 0, 0), (0, 1, 2, 3)), ((1,) * 4, (0, 1, 2, 3)), ((2,) * 4, (0, 1, 2, 3))]
    assert [(e.seed, e.group, e.member) for e in episodes[:5]] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3),
                                                                   (1, 1, 0)]
    agent = CountingBatchAgent()
    rollout(agent, "household/Hold-v0", seeds=[0, 1, 2], group_size=4, groups_per_batch=2,
            env_kwargs={"mode": "discrete"}, max_steps=5, progress=False)
    assert agent.sizes == [8] * 5 + [4] * 5             # two groups at once, then the last one


def test_finished_members_leave_the_batch_and_single_agents_keep_their_own_memory():
    # The expert finishes at different times on different seeds; a single agent is
    # copied per slot, so each member follows its own plan and every episode succeeds.
    episodes = rollout("expert", "household/Household-v0", seeds=[0, 1, 2, 3], group_size=2,
                       groups_per_batch=2, progress=False)
    assert all(e.success for e in episodes)
    assert len({e.length for e in episodes}) > 1
    assert [e.actions for e in episodes[0::2]] == [e.actions for e in episodes[1::2]]


@pytest.mark.parametrize("env_id, kwargs", [
    ("household/PutIn-v0", {"mode": "discrete"}),
    ("household/PutIn-v0", {"mode": "text"}),
    ("shell/FreeForm-v0", {}),
    ("tools/Memory-v0", {}),
])
def test_chat_export_is_one_path_for_every_text_family(env_id, kwargs, tmp_path):
    episodes = rollout("expert", env_id, seeds=[0, 1], env_kwargs=kwargs, progress=False)
    path = export_chat_jsonl(episodes, tmp_path / "chat.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 2
    for ep, rec in zip(episodes, records):
        roles = [m["role"] for m in rec["messages"]]
        assert roles[0] == "system" and roles[1] == "user" and roles[-1] == "assistant"
        assert roles.count("assistant") == ep.length
        # the turns are exactly what the env emitted, in order
        emitted = [m for info in ep.infos for m in info[K.TURN]]
        assert rec["messages"] == emitted[:len(rec["messages"])]
        opening = rec["messages"][0]["content"] + rec["messages"][1]["content"]
        assert ep.infos[0][K.INSTRUCTION] in opening or env_id.startswith("tools/Memory")
        assert rec["success"] is True
    if env_id.startswith("tools/"):
        assert records[0]["tools"] and records[0]["tools"] == episodes[0].infos[0][K.TOOLS]
        assert any(m["role"] == "tool" for m in records[0]["messages"])
