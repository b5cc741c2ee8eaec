"""The tools family's environments: contract, experts, bad outputs, snapshots, turns."""
from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from omnigym import conversation
from omnigym import info_keys as K
from omnigym.environments.tools.candidates import call
from omnigym.registry import list_envs, make
from omnigym.rollout import rollout

TOOL_IDS = [e.id for e in list_envs("tools")]
TEMPLATE_IDS = [i for i in TOOL_IDS if i != "tools/Tools-v0"]


def test_family_ids():
    assert set(TOOL_IDS) == {"tools/Tools-v0", "tools/Arithmetic-v0", "tools/Data-v0", "tools/Memory-v0",
                             "tools/MultihopPeople-v0", "tools/MultihopPlaces-v0"}


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_env_checker(env_id):
    env = make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", TEMPLATE_IDS)
@pytest.mark.parametrize("split", ["train", "heldout"])
def test_expert_solves_its_panel(env_id, split):
    seeds = range(6) if split == "train" else range(100_000, 100_006)
    episodes = rollout("expert", env_id, seeds, env_kwargs={"split": split}, progress=False)
    assert all(e.success for e in episodes), [(e.seed, e.infos[-1].get(K.INSTRUCTION)) for e in episodes
                                              if not e.success]
    assert not any(info[K.INVALID_ACTION] for e in episodes for info in e.infos)


def test_same_seed_same_corpus_question_and_episode():
    a, b = make("tools/MultihopPeople-v0"), make("tools/MultihopPeople-v0")
    oa, ia = a.reset(seed=3)
    ob, ib = b.reset(seed=3)
    assert oa == ob and ia[K.STATE_KEY] == ib[K.STATE_KEY] and ia[K.TURN] == ib[K.TURN]
    for action in ["<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": \"founder\"}}</tool_call>",
                   ia[K.ADMISSIBLE_ACTIONS][0], "no idea"]:
        ra, rb = a.step(action), b.step(action)
        assert ra[0] == rb[0] and ra[1] == rb[1] and ra[4][K.STATE_KEY] == rb[4][K.STATE_KEY]
    oc, _ = a.reset(seed=4)
    assert oc != oa


@pytest.mark.parametrize("output, fragment", [
    ('<tool_call>{"name": "calculator", "arguments": {"expression": "1+"</tool_call>', "JSON"),
    ('<tool_call>{"name": "teleport", "arguments": {}}</tool_call>', "unknown tool"),
    ('<tool_call>{"name": "calculator", "arguments": {"expr": "1+1"}}</tool_call>', "expression"),
    ('<tool_call>{"name": "calculator", "arguments": {"expression": 7}}</tool_call>', "expression"),
    ("   ", "empty"),
])
def test_bad_outputs_are_invalid_and_explained(output, fragment):
    env = make("tools/Arithmetic-v0")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(output)
    assert info[K.INVALID_ACTION] is True and not terminated
    assert fragment.lower() in obs.lower()
    # The episode goes on: a good call afterwards is valid.
    expression = info[K.INSTRUCTION].split("What is ")[1].split("?")[0]
    *_, info = env.step(call("calculator", expression=expression))
    assert info[K.INVALID_ACTION] is False


def test_plain_answer_ends_the_episode_and_is_checked():
    env = make("tools/Arithmetic-v0")
    env.reset(seed=1)
    answer = env.unwrapped.problem.answer
    *_, terminated, _, info = env.step("Final answer: 12345.678")
    assert terminated and info[K.SUCCESS] is False
    env.reset(seed=1)
    _, reward, terminated, _, info = env.step(answer)
    assert terminated and reward == 1.0 and info[K.SUCCESS] is True


def test_memory_facts_are_in_the_reset_turn_only():
    """After the facts phase nothing the env says repeats a fact: an agent
    recalls what it stored, or what its own history window still holds."""
    env = make("tools/Memory-v0")
    obs, info = env.reset(seed=2)
    facts = env.unwrapped.problem.facts
    assert all(v in obs for v in facts.values())
    assert [m["role"] for m in info[K.TURN]] == ["system", "user"]
    assert all(v in info[K.TURN][1]["content"] for v in facts.values())
    assert env.unwrapped.problem.question not in info[K.INSTRUCTION]  # not asked yet
    turns, later = [info[K.TURN]], []
    for action in ["ready", call("memory_get", key=next(iter(facts))), "<tool_call>{", None]:
        obs, *_, info = env.step(action)
        turns.append(info[K.TURN])
        later.append(json.dumps([obs, info], default=str))
    assert env.unwrapped.problem.question in later[0]
    assert not any(v in text for v in facts.values() for text in later)
    whole = json.dumps([m for turn in turns for m in turn])
    assert all(whole.count(v) == 1 for v in facts.values())
    window = turns[0][:1] + [m for turn in turns[-3:] for m in turn]  # the system prompt and the last 3 turns
    assert not any(v in json.dumps(window) for v in facts.values())


def test_turns_hold_the_assistant_output_its_calls_and_the_results():
    env = make("tools/Arithmetic-v0")
    _, info = env.reset(seed=0)
    assert info[K.TURN][0]["role"] == "system" and "calculator" in info[K.TURN][0]["content"]
    assert {t["function"]["name"] for t in info[K.TOOLS]} >= {"calculator", "final_answer"}
    output = "Let me compute.\n" + call("calculator", expression="2 * 21") + call("memory_set", key="k", value="v")
    obs, _, _, _, step_info = env.step(output)
    assistant, *results = step_info[K.TURN]
    assert assistant == conversation.assistant(output, [{"name": "calculator", "arguments": {"expression": "2 * 21"}},
                                                        {"name": "memory_set", "arguments": {"key": "k", "value": "v"}}])
    assert [(m["role"], m["name"]) for m in results] == [("tool", "calculator"), ("tool", "memory_set")]
    assert "42" in results[0]["content"] and "42" in obs and output not in obs
    assert set(info) - set(step_info) == {K.TOOLS} and set(step_info) <= set(info)
    # Unusable output: the assistant's words as given, then a user message that says why.
    _, _, _, _, bad = env.step(b"<tool_call>{")
    assert [m["role"] for m in bad[K.TURN]] == ["assistant", "user"]
    assert bad[K.TURN][0]["content"] == "<tool_call>{" and "Invalid action" in bad[K.TURN][1]["content"]


def test_invalid_penalty_and_reset_guard():
    env = make("tools/Arithmetic-v0", invalid_penalty=0.25).unwrapped
    with pytest.raises(gym.error.ResetNeeded):
        env.step("42")
    with pytest.raises(gym.error.ResetNeeded):
        env.get_state()
    env.reset(seed=0)
    for bad in (None, 7, object(), np.zeros(3), ["x"], "x" * 30_000):
        obs, reward, terminated, _, info = env.step(bad)
        assert info[K.INVALID_ACTION] is True and reward == -0.25 and not terminated
        assert obs.startswith("[user] Invalid action:")


def test_expert_comes_from_the_env():
    assert all(" " in e.expert and "\n" not in e.expert for e in list_envs("tools"))  # one-line descriptions
    env = make("tools/Data-v0")
    expert = env.unwrapped.make_expert(unknown_option=1)
    assert expert.name == "expert"
    obs, info = env.reset(seed=4)
    expert.reset(env=env)
    for _ in range(4):
        obs, reward, terminated, _, info = env.step(expert.act(obs, info))
        if terminated:
            break
    assert terminated and reward == 1.0 and info[K.SUCCESS]
    env.close()


def test_state_key_follows_tool_state_not_text():
    env = make("tools/Memory-v0")
    env.reset(seed=5)
    snap = env.unwrapped.get_state()
    obs1, *_, info1 = env.step(call("memory_set", key="x", value="1"))
    env.unwrapped.set_state(snap)
    obs2, *_, info2 = env.step(call("memory_set", key="x", value="2"))
    assert obs1.replace("1", "") == obs2.replace("2", "") or obs1 == obs2
    assert info1[K.STATE_KEY] != info2[K.STATE_KEY]
    assert info2[K.STATE_KEY] == env.unwrapped.state_key()
    # The same tool state reached by other words has the same key.
    env.unwrapped.set_state(snap)
    *_, info3 = env.step("Storing it. " + call("memory_set", key="x", value="2"))
    assert info3[K.STATE_KEY] == info2[K.STATE_KEY]


def test_set_state_returns_what_the_env_returned_then():
    env = make("tools/Memory-v0").unwrapped
    at_reset = env.reset(seed=6)
    reset_snap = env.get_state()
    env.step("ready")
    at_step = env.step(call("memory_get", key="nothing"))
    step_snap = env.get_state()
    env.step(call("memory_set", key="a", value="b"))
    assert env.set_state(reset_snap) == at_reset
    assert env.set_state(step_snap) == (at_step[0], at_step[4])
    obs, info = env.set_state(step_snap)
    info[K.TURN].clear()  # what a caller does with the result does not touch the snapshot
    assert env.set_state(step_snap)[1][K.TURN] == at_step[4][K.TURN]
    fresh = make("tools/Memory-v0").unwrapped
    assert fresh.set_state(step_snap) == (at_step[0], at_step[4])
    assert fresh.state_key() == at_step[4][K.STATE_KEY]


def test_snapshot_branches_right_after_a_python_call():
    env = make("tools/Data-v0")
    env.reset(seed=7)
    env.step(call("python", code="open('note.txt', 'w').write('first')\nprint('written')"))
    snap = env.unwrapped.get_state()
    probe = call("python", code="print(open('note.txt').read())")
    first = env.step(probe)
    env.step(call("python", code="open('note.txt', 'w').write('second')"))
    env.unwrapped.set_state(snap)
    again = env.step(probe)
    assert "first" in first[0] and first[0] == again[0]
    assert first[4][K.STATE_KEY] == again[4][K.STATE_KEY]
    env.close()


def test_ten_thousand_fuzzed_outputs_raise_nothing():
    """Model outputs of every broken shape, through the env (not just the parser)."""
    rng = np.random.default_rng(0)
    good = [call("calculator", expression="(3 + 4) * 2"), call("search", query="founder"),
            call("memory_set", key="k", value="v"), call("open", title="Nowhere"), call("memory_get", key="k")]
    pieces = ["<tool_call>", "</tool_call>", "{", "}", '"name"', '"arguments"', ":", ",", "[", "]", "null",
              '"calculator"', '"open"', '"python"', "1e309", "\\u0000", "\u2603", "```json", "\n", '"' * 3]
    env = make("tools/Tools-v0").unwrapped
    env.reset(seed=0)
    kinds = {"invalid": 0, "valid": 0, "ended": 0}
    for i in range(10_000):
        r = rng.random()
        if r < 0.3:
            text = good[rng.integers(len(good))]
            text = text[: rng.integers(len(text) + 1)]                       # truncated JSON
        elif r < 0.5:
            text = "".join(pieces[j] for j in rng.integers(len(pieces), size=rng.integers(1, 12)))
        elif r < 0.6:
            text = call(str(rng.choice(["calculator", "open", "memory_set", "nope", "search"])),
                        **{str(rng.choice(["expression", "title", "key", "query", "x"])):
                           [None, 3, 2.5, [], {}, True, "x" * int(rng.integers(1, 200_000))][rng.integers(7)]})
        elif r < 0.7:
            text = bytes(rng.integers(0, 256, size=rng.integers(1, 64), dtype=np.uint8)).decode("latin-1")
        elif r < 0.75:
            text = [None, 42, b"bytes", ["list"], {"name": "calculator"}][rng.integers(5)]
        else:
            text = good[rng.integers(len(good))]
        obs, reward, terminated, truncated, info = env.step(text)
        assert isinstance(obs, str) and env.observation_space.contains(obs)
        kinds["invalid" if info[K.INVALID_ACTION] else "valid"] += 1
        if terminated or i % 10 == 9:
            kinds["ended"] += terminated
            env.reset(seed=i)
    assert kinds["invalid"] > 3000 and kinds["valid"] > 2000, kinds


def test_random_agent_is_a_floor_below_the_expert():
    random_eps = rollout("random", "tools/Arithmetic-v0", range(20), progress=False)
    expert_eps = rollout("expert", "tools/Arithmetic-v0", range(20), progress=False)
    assert sum(e.success for e in expert_eps) == 20
    assert sum(e.success for e in random_eps) < 20


def test_play_in_the_terminal():
    """A person plays through `omnigym play`: a numbered suggestion, then an answer."""
    proc = subprocess.run([sys.executable, "-m", "omnigym.cli", "play", "tools/Arithmetic-v0", "--seed", "0"],
                          input="0\n12345\nq\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[tool calculator]" in proc.stdout and "Episode over" in proc.stdout


def test_chat_export_keeps_the_envs_conversation(tmp_path):
    from omnigym.episodes import export_chat_jsonl, read_episodes, write_episodes
    episodes = rollout("expert", "tools/MultihopPlaces-v0", range(3), progress=False)
    write_episodes(episodes, tmp_path / "eps.parquet")
    path = export_chat_jsonl(read_episodes(tmp_path / "eps.parquet"), tmp_path / "chat.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 3 and all(r["success"] for r in records)
    roles = [m["role"] for m in records[0]["messages"]]
    assert roles[:2] == ["system", "user"] and "tool" in roles and roles[-1] == "assistant"
    turns = [m for info in episodes[0].infos for m in info[K.TURN]]
    assert records[0]["messages"] == json.loads(json.dumps(turns[:len(records[0]["messages"])]))
    assert {t["function"]["name"] for t in records[0]["tools"]} >= {"search", "open", "final_answer"}


def test_recorded_episodes_grow_linearly(tmp_path):
    """Per-step stored size does not grow with the step index (no whole
    conversation in any info): steps 21-30 cost what steps 1-10 cost."""
    from omnigym.episodes import Episode, read_episodes, to_jsonable, write_episodes
    env = make("tools/Memory-v0").unwrapped
    obs, info = env.reset(seed=0)
    episode = Episode.from_reset(obs, info, env_id="tools/Memory-v0", seed=0)
    outputs = ["ready", call("memory_set", key="note", value="same"), call("memory_get", key="note"),
               call("calculator", expression="1 + 1")]
    for t in range(30):
        action = outputs[0] if t == 0 else outputs[1 + t % 3]
        obs, reward, terminated, truncated, info = env.step(action)
        assert not terminated
        episode.append_step(obs, action, reward, terminated, truncated, info)
    write_episodes([episode], tmp_path / "long.parquet")
    back = read_episodes(tmp_path / "long.parquet")[0]
    sizes = [len(json.dumps(to_jsonable([o, i]))) for o, i in zip(back.observations, back.infos)]
    early, late = sum(sizes[1:11]), sum(sizes[21:31])
    assert late <= 1.05 * early, sizes


def test_a_snapshot_restores_into_a_fresh_env():
    """set_state before any reset: the corpus and index come back with the problem."""
    env = make("tools/MultihopPeople-v0")
    env.reset(seed=9)
    first = env.unwrapped.problem.plan["chain"][0]
    snap = env.unwrapped.get_state()
    fresh = make("tools/MultihopPeople-v0")
    fresh.unwrapped.set_state(snap)
    obs, *_, info = fresh.unwrapped.step(call("search", query=first))  # wrappers want a reset first
    assert info[K.INVALID_ACTION] is False and first in obs
