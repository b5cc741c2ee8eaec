"""LMAgent on every text family through the real rollout, its per-episode
memory, and ``--policy lm:PATH`` from Python and from the command line."""
from __future__ import annotations

import json
import subprocess
import sys

import lm_fixtures  # noqa: F401  (offline Hugging Face)
import pytest

from omnigym import info_keys as K
from omnigym.agents import resolve_agent
from omnigym.policies.lm.agent import LMAgent
from omnigym.policies.lm.model import add_lora, save_lm, save_lora, tiny_lm
from omnigym.registry import make
from omnigym.rollout import rollout


@pytest.fixture(scope="module")
def tiny():
    return tiny_lm("qwen2", seed=0)


@pytest.mark.parametrize("env_id, env_kwargs, options", [
    ("household/Heat-v0", {"mode": "text"}, {}),
    ("household/Heat-v0", {"mode": "discrete"}, {"mode": "score"}),
    ("household/Heat-v0", {"mode": "text"}, {"mode": "score", "temperature": 1.0}),
    ("shell/FreeForm-v0", {}, {"temperature": 0.8, "top_p": 0.9}),
    ("tools/Tools-v0", {}, {}),
    ("tools/Tools-v0", {}, {"mode": "score"}),
])
def test_the_agent_plays_every_text_family_end_to_end(tiny, env_id, env_kwargs, options):
    model, tok = tiny
    agent = LMAgent(model, tok, max_new_tokens=12, history_turns=1, max_prompt_tokens=4096, **options)
    episodes = rollout(agent, env_id, seeds=range(2), group_size=2, groups_per_batch=2, env_kwargs=env_kwargs,
                       max_steps=3, progress=False)
    assert len(episodes) == 4 and all(1 <= e.length <= 3 for e in episodes)
    discrete = env_kwargs.get("mode") == "discrete"
    for ep in episodes:
        assert all(set(K.REQUIRED_KEYS) <= set(info) for info in ep.infos)
        for action, info in zip(ep.actions, ep.infos):
            if discrete:
                assert isinstance(action, int) and info[K.ACTION_MASK][action]
            else:
                assert isinstance(action, str)
                if options.get("mode") == "score":
                    assert action in info[K.ADMISSIBLE_ACTIONS]
    last = agent.last
    assert len(last.prompts) == len(last.generated_rows) + len(last.scored_rows)
    if options.get("mode") == "score":
        assert last.scores and all(len(s.sum) for s in last.scores)
    else:
        gen = last.generation
        assert [len(lp) for lp in gen.logprobs] == [len(r) for r in gen.response_ids]
        assert all(1 <= len(r) <= 12 for r in gen.response_ids)
    # one conversation per episode: every prompt opens with that episode's system message
    assert all(p.messages[0]["role"] == "system" for p in last.prompts)


def test_each_episode_keeps_its_own_conversation_when_the_batch_shrinks(tiny):
    model, tok = tiny
    agent = LMAgent(model, tok, max_new_tokens=4, history_turns=8)
    envs = [make("household/Heat-v0", mode="text") for _ in range(3)]
    first = [env.reset(seed=seed) for seed, env in enumerate(envs)]
    agent.reset_batch(envs, [0, 1, 2], [0, 0, 0], slots=[0, 1, 2])
    agent.act_batch([o for o, _ in first], [i for _, i in first], slots=[0, 1, 2])
    # Each env takes its own admissible action; then the middle episode is over.
    steps = [env.step(info[K.ADMISSIBLE_ACTIONS][k]) for k, (env, (_, info)) in enumerate(zip(envs, first))]
    agent.act_batch([steps[0][0], steps[2][0]], [steps[0][4], steps[2][4]], slots=[0, 2])
    for prompt, k in zip(agent.last.prompts, (0, 2)):
        expected = first[k][1][K.TURN] + steps[k][4][K.TURN]
        assert prompt.messages == expected
    # A slot whose episode the agent never saw start is refused in one line.
    with pytest.raises(ValueError, match="reset_batch"):
        agent.act_batch([steps[0][0]], [steps[0][4]], slots=[7])
    for env in envs:
        env.close()


def test_lm_path_resolves_and_evaluates_from_the_command_line(tiny, tmp_path):
    model, tok = tiny
    folder = save_lm(model, tok, tmp_path / "tiny-qwen2")
    agent = resolve_agent(f"lm:{folder}", "household/Heat-v0", mode="score", device="cpu")
    assert isinstance(agent, LMAgent) and agent.name == "lm" and agent.config.mode == "score"
    adapter = save_lora(add_lora(tiny_lm("qwen2", seed=0)[0], r=2), tmp_path / "adapter")
    assert hasattr(resolve_agent(f"lm:{folder}", lora=str(adapter)).model, "peft_config")

    def omnigym(*args):
        return subprocess.run([sys.executable, "-m", "omnigym.cli", *args], capture_output=True, text=True,
                              timeout=120)

    out = tmp_path / "report"
    proc = omnigym("eval", "household/Heat-v0", "--policy", f"lm:{folder}", "--policy-kwarg", "mode=score",
                   "--policy-kwarg", "history_turns=1", "--lora", str(adapter), "--panel", "0..1",
                   "--env-kwarg", "mode=discrete", "--env-kwarg", "max_episode_steps=4", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    section = json.loads((out / "summary.json").read_text())["sections"][0]
    assert section["policy"] == "lm" and section["panel"] == "seeds 0..1"
    assert section["summary"]["episodes"] == 2 and section["summary"]["length_mean"] == 4.0
    assert (out / "report.md").is_file()

def test_a_bad_model_path_is_one_line_on_the_command_line(tmp_path, capsys):
    from omnigym.cli import main
    assert main(["eval", "household/Heat-v0", "--policy", f"lm:{tmp_path / 'missing'}", "--panel", "0..1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "model folder" in err
