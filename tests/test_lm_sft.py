"""SFT of the LM policy (``omnigym train algo=sft policy=lm``) with a tiny
random Llama saved as a model folder: which tokens are learned, packing,
the loss going down on household expert episodes, the run folder, resume,
``omnigym eval --policy RUN`` and config mistakes."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import lm_fixtures  # noqa: F401  (offline Hugging Face)
import pytest
import torch

from omnigym.conversation import chat
from omnigym.policies.lm.model import save_lm, tiny_lm
from omnigym.policies.lm.processor import LMProcessor, eos_ids
from omnigym.policies.lm.sft import collate, render, row_logits, target_loss, tokenize_chat, tokenize_steps
from omnigym.rllib.train import train
from omnigym.rllib.train_config import compose
from omnigym.rollout import rollout

OMNIGYM = str(Path(sys.executable).with_name("omnigym"))  # the console script, as a user runs it
ENV_ID = "household/Heat-v0"
# Small and fast: these tests check the machinery and that learning happens, not a good policy.
FAST = ["algo=sft", "policy=lm", "env=household", f"env.id={ENV_ID}", "+env.kwargs.max_episode_steps=10",
        "algo.demonstrations.episodes=6", "algo.examples=step", "algo.max_tokens=1024",
        "algo.training.batch_size=4", "algo.training.steps_per_iteration=3", "algo.training.lr=0.01",
        "algo.training.warmup_steps=0", "policy.config.history_turns=0", "policy.config.max_new_tokens=3",
        "evaluation.episodes=1", "evaluation.baselines=[]", "evaluation.every=0", "checkpoint_every=1",
        "progress=false"]


def rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def spans(ids: list[int], targets: list[bool]) -> list[list[int]]:
    """The runs of consecutive target ids."""
    out, run = [], []
    for token, target in zip(ids, targets):
        if target:
            run.append(token)
        elif run:
            out, run = out + [run], []
    return out + ([run] if run else [])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_lm(*tiny_lm("llama", seed=0), tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="module")
def household_chat() -> dict:
    episode = rollout("expert", ENV_ID, [0], env_kwargs={"mode": "text"}, progress=False)[0]
    assert episode.success and episode.length >= 3
    return chat(episode)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_dir) -> Path:
    """A 4-iteration SFT run (12 optimizer steps), trained in this process."""
    out = tmp_path_factory.mktemp("runs") / "sft"
    train(compose([*FAST, f"policy.config.model={tiny_dir}", f"out_dir={out}", "iterations=4"]))
    return out


# ------------------------------------------------------------- what is learned
def test_the_targets_are_exactly_the_assistant_replies_and_their_end_token(household_chat):
    model, tok = tiny_lm("qwen2")
    messages, tools = household_chat["messages"], household_chat["tools"]
    replies = [m["content"] for m in messages if m["role"] == "assistant"]
    example = tokenize_chat(tok, messages, tools, eos_ids(model, tok))
    # The ids are the template's text, encoded as one piece would be; the targets are each reply + <|im_end|>.
    assert tok.decode(example.ids) == render(tok, messages, tools, generation_prompt=False)
    assert example.ids == tok.encode(tok.decode(example.ids), add_special_tokens=False)
    assert [tok.decode(s) for s in spans(example.ids, example.targets)] == [r + "<|im_end|>" for r in replies]
    assert example.env_steps == len(replies)
    # One example per step: the agent's own prompt at that step, then the reply.
    processor = LMProcessor(tok, history_turns=1, max_prompt_tokens=4096)
    steps = tokenize_steps(processor, messages, tools, eos_ids(model, tok))
    assistant_at = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    assert len(steps) == len(replies)
    for step, i, reply in zip(steps, assistant_at, replies):
        prompt = processor.prompt(messages[:i], tools).ids
        assert step.ids[:len(prompt)] == prompt and not any(step.targets[:len(prompt)])
        assert [tok.decode(s) for s in spans(step.ids, step.targets)] == [reply + "<|im_end|>"]


def test_a_step_longer_than_max_tokens_drops_old_exchanges_and_keeps_the_task(household_chat):
    model, tok = tiny_lm("qwen2")
    messages = household_chat["messages"]
    processor = LMProcessor(tok, history_turns=4, max_prompt_tokens=4096)
    full = tokenize_steps(processor, messages, None, eos_ids(model, tok))
    budget = min(len(e.ids) for e in full[2:]) - 1          # every step from the third on is too long
    fitted = tokenize_steps(processor, messages, None, eos_ids(model, tok), max_tokens=budget)
    system = render(tok, [m for m in messages if m["role"] == "system"], None, generation_prompt=False)
    for before, after in zip(full[2:], fitted[2:]):
        assert len(after.ids) <= budget < len(before.ids)
        assert tok.decode(after.ids).startswith(system)      # the system message, the task in it, stays whole
        assert spans(after.ids, after.targets) == spans(before.ids, before.targets)   # the same reply
        assert after.shortened and not before.shortened                               # counted as cut
    # a budget without room for the system message is a mistake to fix, not a task to drop
    with pytest.raises(ValueError, match="raise algo.max_tokens"):
        tokenize_steps(processor, messages, None, eos_ids(model, tok),
                       max_tokens=len(tok.encode(system, add_special_tokens=False)) // 2)


def test_tool_specs_are_in_the_context_and_tool_calls_are_targets():
    model, tok = tiny_lm("llama")
    episode = rollout("expert", "tools/Tools-v0", [0], progress=False)[0]
    conversation = chat(episode)
    example = tokenize_chat(tok, conversation["messages"], conversation["tools"], eos_ids(model, tok))
    names = [t["function"]["name"] for t in conversation["tools"]]
    # The tiny template lists the tools after the system message; the calls themselves are learned.
    assert f"Tools: {', '.join(names)}" in tok.decode(example.ids)
    learned = [tok.decode(s) for s in spans(example.ids, example.targets)]
    assert learned == [m["content"] + "<|im_end|>" for m in conversation["messages"] if m["role"] == "assistant"]
    assert any("<tool_call>" in text for text in learned)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_packed_examples_never_see_each_other(household_chat, arch):
    model, tok = tiny_lm(arch)
    processor = LMProcessor(tok, history_turns=0, max_prompt_tokens=4096)
    first, second = tokenize_steps(processor, household_chat["messages"][:5], None, eos_ids(model, tok))
    packed = collate([[first, second]], tok.pad_token_id)
    model.train()   # as in training (dropout is 0 in the tiny models)
    with torch.no_grad():
        alone = row_logits(model, collate([[second]], tok.pad_token_id))[0]
        together = row_logits(model, packed)[0]
        # The same row with positions running on: the second example attends to the first.
        leaky = model(input_ids=packed["input_ids"], use_cache=False).logits[0]
        at = slice(len(first.ids), len(first.ids) + len(second.ids))
        assert torch.allclose(together[at], alone, atol=1e-5)
        assert not torch.allclose(leaky[at], alone, atol=1e-3)
        # A batch's loss is the same packed or one example per row (padding included).
        one_per_row = collate([[first], [second]], tok.pad_token_id)
        assert target_loss(model, packed).item() == pytest.approx(target_loss(model, one_per_row).item(), abs=1e-5)


# ------------------------------------------------------------------- the run
def test_a_few_sft_steps_drive_the_loss_down(run):
    metrics = rows(run / "metrics.csv")
    assert [int(r["iteration"]) for r in metrics] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in metrics] == [3, 6, 9, 12]
    losses = [float(r["loss"]) for r in metrics]
    assert losses[-1] < 0.75 * losses[0], losses
    assert all(float(r["step_s"]) > 0 and float(r["target_tokens"]) > 0 for r in metrics)   # time per SFT step
    assert int(metrics[-1]["env_steps"]) == 12 * 4   # step examples: one env step each, 4 per batch


def test_the_run_folder_has_the_files_of_an_rllib_run(run):
    rllib_run = {"config.yaml", "metrics.csv", "eval.csv", "tb", "checkpoints", "report"}
    # Plus the recorded episodes, cached as BC runs cache theirs.
    assert {p.name for p in run.iterdir()} == rllib_run | {"demonstrations"}
    report = {p.name for p in (run / "report").iterdir()}
    assert {"report.md", "summary.json", "learning_curve.png", "eval_curve.png"} <= report
    assert any((run / "tb").glob("events.out.tfevents.*"))
    # The recording, and the chats learned from as chat JSONL (every one a success of the expert).
    assert {p.name for p in (run / "demonstrations").iterdir()} == {"episodes.parquet", "chat.jsonl"}
    chats = [json.loads(line) for line in (run / "demonstrations" / "chat.jsonl").read_text().splitlines()]
    assert len(chats) == 6 and all(c["success"] and c["messages"][0]["role"] == "system" for c in chats)
    assert [int(r["iteration"]) for r in rows(run / "eval.csv")] == [4]
    checkpoints = run / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iter_00003", "iter_00004", "latest"]  # keep_checkpoints=2
    assert (checkpoints / "latest").read_text() == "iter_00004"
    # A Hugging Face folder (lm:PATH reads it too) plus the loop's state.
    assert {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.pt"} <= \
        {p.name for p in (checkpoints / "iter_00004").iterdir()}
    notes = (run / "report" / "report.md").read_text()
    assert "4 iterations, 12 optimizer steps" in notes and "expert episodes" in notes


def test_resume_continues_from_the_checkpoint_as_if_never_stopped(run, tiny_dir, tmp_path):
    out = tmp_path / "sft"
    overrides = [*FAST, f"policy.config.model={tiny_dir}", f"out_dir={out}"]
    train(compose([*overrides, "iterations=2"]))
    train(compose([f"out_dir={out}", "resume=true", "iterations=4"]))   # the run's own config says the rest
    resumed, straight = rows(out / "metrics.csv"), rows(run / "metrics.csv")
    assert [r["iteration"] for r in resumed] == ["1", "2", "3", "4"]
    # Same batches, optimizer state and RNG: the resumed half trains exactly as the straight run did.
    for a, b in zip(resumed, straight):
        assert (a["step"], a["env_steps"]) == (b["step"], b["env_steps"])
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), abs=1e-6)
    assert [r["iteration"] for r in rows(out / "eval.csv")] == ["2", "4"]


def test_lora_runs_save_adapters_and_start_again_from_them(tmp_path):
    from omegaconf import OmegaConf
    from safetensors.torch import load_file
    from omnigym.agents import resolve_agent
    from omnigym.policies.lm.sft import SFTLearner
    out = tmp_path / "lora"
    # On the tiny random base of policy.tiny; whole episodes, packed, every activation kept, this time.
    cfg = compose([*FAST, "policy.tiny={arch:llama,seed:0}", f"out_dir={out}", "iterations=1", "policy.lora.r=4",
                   "policy.lora.targets=[q_proj,v_proj]", "algo.examples=episode", "algo.packing=true",
                   "algo.max_tokens=2048", "algo.activation_checkpointing=false"])
    train(cfg)
    ckpt = out / "checkpoints" / "iter_00001"
    files = {p.name for p in ckpt.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "trainer_state.pt"} <= files
    assert "model.safetensors" not in files   # the base model stays where it is
    saved = load_file(ckpt / "adapter_model.safetensors")
    learner = SFTLearner(OmegaConf.load(out / "config.yaml"), out, ckpt)
    current = {k: v for k, v in learner.model.state_dict().items() if "lora_" in k}
    assert len(current) == len(saved) > 0
    for key, value in saved.items():
        match = [v for k, v in current.items() if k.replace(".default", "") == key]
        assert len(match) == 1 and torch.equal(match[0], value), key
    agent = resolve_agent(str(out))
    assert agent.name == "sft" and hasattr(agent.model, "peft_config")
    base = {k: v for k, v in agent.model.get_base_model().state_dict().items() if "lora_" not in k}
    tiny = tiny_lm("llama", seed=0)[0].state_dict()
    assert all(torch.equal(v, tiny[k.replace(".base_layer", "")]) for k, v in base.items())


def test_omnigym_eval_runs_the_sft_run_and_its_checkpoints(run, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([OMNIGYM, "eval", ENV_ID, "--policy", str(run), "--panel", "0..0", "--no-record",
                           "--out", str(tmp_path / "eval")], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    section = json.loads((tmp_path / "eval" / "summary.json").read_text())["sections"][0]
    # Named after its algorithm, on the env it trained on (text mode, at most 10 steps).
    assert section["policy"] == "sft" and section["summary"]["episodes"] == 1
    assert 1 <= section["summary"]["length_mean"] <= 10
    from omnigym.agents import resolve_agent
    agent = resolve_agent(str(run / "checkpoints" / "iter_00003"), mode="score")
    assert (agent.name, agent.config.mode, agent.env_kwargs["mode"]) == ("sft", "score", "text")
    assert resolve_agent(f"lm:{run / 'checkpoints' / 'iter_00003'}").name == "lm"


# ----------------------------------------------------------------- mistakes
@pytest.mark.parametrize("override, says", [
    (["policy=mlp"], "algo=sft trains an LM policy: use policy=lm"),
    (["env=cartpole"], "CartPole-v1 has no mode 'text'"),
    (["policy.config.lora=/tmp/adapter"], "set policy.lora.r"),
    (["algo.examples=turns"], "algo.examples='turns': use episode or step"),
    (["algo.training.lr=0"], "algo.training.lr=0"),
    (["policy.config.temperature=-1"], "temperature must be 0"),
])
def test_config_mistakes_are_one_line_and_leave_no_run_folder(tmp_path, override, says):
    cfg = compose(["algo=sft", "policy=lm", "env=household", f"out_dir={tmp_path / 'run'}", *override])
    with pytest.raises(ValueError) as err:
        train(cfg)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_the_command_says_what_is_wrong_in_one_line(tmp_path):
    proc = subprocess.run([OMNIGYM, "train", "algo=sft", "policy=mlp", f"out_dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "omnigym train: error: algo=sft trains an LM policy: use policy=lm (policy=mlp has no LM options such as "
        "model, history_turns)"]


def test_train_help_lists_sft_and_the_lm_policy():
    from omnigym.rllib.train_config import train_help
    text = train_help()
    assert "sft" in text.split("algo ")[1].splitlines()[0]
    assert "lm" in text.split("policy ")[1].splitlines()[0]
