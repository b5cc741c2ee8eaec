"""The contract of DESIGN §2, checked on every registered id, plus the
harness conventions built on it: gymnasium-native ids, batched grouped
rollouts, and one chat-export path for every text family."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import omnigym
from omnigym.agents import ExpertAgent
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


class SlotAwareExpert:
    """A batched agent with per-episode memory: one expert per slot, found by ``slots=``."""

    name = "slot-aware"

    def __init__(self):
        self.experts, self.resets = {}, []

    def reset_batch(self, envs, seeds, members, slots=None):
        self.resets.append(list(slots))
        for slot, env, seed, member in zip(slots, envs, seeds, members):
            self.experts[slot] = ExpertAgent()
            self.experts[slot].reset(env=env, seed=seed, member=member)

    def act_batch(self, observations, infos, slots=None):
        return [self.experts[s].act(o, i) for s, o, i in zip(slots, observations, infos)]


def test_a_batched_agent_with_memory_is_told_each_rows_slot():
    # Episodes end at different times, so rows shift; only the slot says whose plan a row follows.
    agent = SlotAwareExpert()
    episodes = rollout(agent, "household/Household-v0", seeds=[0, 1, 2, 3, 4, 5], group_size=1,
                       groups_per_batch=3, progress=False)
    assert len({e.length for e in episodes}) > 1 and all(e.success for e in episodes)
    assert agent.resets[0] == [0, 1, 2] and sorted(s for r in agent.resets for s in r) == [0, 0, 1, 1, 2, 2]


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


def test_action_parsing_helpers_never_raise_and_say_why():
    import numpy as np

    from omnigym.contract import Invalid, hash_key, parse_index, parse_text
    assert parse_index(np.int64(2), 3) == 2 and parse_index(2.0, 3) == 2 and parse_index(np.array([1]), 3) == 1
    for bad in (True, "1", b"1", 1.5, None, object(), np.array([0, 1]), float("nan"), -1, 3):
        reason = parse_index(bad, 3)
        assert isinstance(reason, Invalid) and reason, bad
    assert "0..2" in parse_index(7, 3)
    assert parse_text(b"ls -l", 10) == "ls -l" and parse_text(np.str_("a"), 5) == "a"
    for bad in (None, 3, "", "  ", "x" * 11, b"\xff\xfe"):
        assert isinstance(parse_text(bad, 10), Invalid), bad
    assert parse_text("", 10, allow_empty=True) == ""
    assert hash_key("a", {"b": 1, "c": [1, 2]}) == hash_key("a", {"c": [1, 2], "b": 1})
    assert hash_key("a", 1) != hash_key("a", 2) and hash_key(b"x") != hash_key("x")


def test_chat_is_built_from_turns_or_derived_where_an_env_emits_none():
    from omnigym.conversation import assistant, chat, system, tool, user
    from omnigym.episodes import Episode
    ep = Episode.from_reset("o0", {K.TURN: [system("act"), user("o0")], K.TOOLS: [{"name": "f"}]}, env_id="x")
    ep.append_step("o1", "call f", 0.0, False, False,
                   {K.TURN: [assistant("call f", [{"name": "f", "arguments": {}}]), tool("f", "42")]})
    ep.append_step("o2", "42", 1.0, True, False, {K.TURN: [assistant("42"), user("o2")]})
    out = chat(ep)
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert out["messages"][2]["tool_calls"][0]["function"]["name"] == "f" and out["tools"] == [{"name": "f"}]
    assert chat(ep, keep_last_observation=True)["messages"][-1] == user("o2")
    assert chat(ep, system_prompt="be brief")["messages"][0] == system("be brief")
    plain = Episode.from_reset("hello", {}, env_id="y")
    plain.append_step("bye", 3, 0.0, True, False, {})
    assert chat(plain)["messages"] == [user("hello"), assistant("3")]
