"""The LM policy's core on tiny random models: batched generation, its
log-probs, action scoring, prompts, LoRA, and the errors users see."""
from __future__ import annotations

import pytest
import torch
from lm_fixtures import ARCHS, chat, prompts_of_different_lengths

from omnigym.policies.lm.config import LMConfig
from omnigym.policies.lm.generation import generate, sequence_logprobs
from omnigym.policies.lm.model import add_lora, load_lm, load_lora, save_lm, save_lora, tiny_lm
from omnigym.policies.lm.processor import LMProcessor, left_pad, response_text, right_pad
from omnigym.policies.lm.scoring import score_actions


def _setup(arch="llama", seed=0, **model_kw):
    model, tok = tiny_lm(arch, seed, **model_kw)
    return model, tok, prompts_of_different_lengths(LMProcessor(tok))


@pytest.mark.parametrize("arch", ARCHS)
def test_sampled_logprobs_match_a_teacher_forced_pass(arch):
    model, tok, prompts = _setup(arch)
    gen = generate(model, tok, prompts, max_new_tokens=24, temperature=0.7, top_p=0.9,
                   generator=torch.Generator().manual_seed(1))
    batch = gen.padded(tok.pad_token_id)
    with torch.no_grad():
        forced = sequence_logprobs(model, batch["prompt_ids"], batch["prompt_mask"], batch["response_ids"],
                                   batch["response_mask"], temperature=0.7, top_p=0.9)
    assert (forced - batch["logprobs"]).abs().max().item() <= 1e-4
    # every sampled id lies in the nucleus (finite log-prob); entropies are of a real distribution
    assert all(torch.isfinite(lp).all() and (lp <= 0).all() for lp in gen.logprobs)
    assert all((e >= 0).all() and len(e) == len(r) for e, r in zip(gen.entropies, gen.response_ids))
    # top-p changes the distribution: the same ids score differently without it
    with torch.no_grad():
        plain = sequence_logprobs(model, batch["prompt_ids"], batch["prompt_mask"], batch["response_ids"],
                                  batch["response_mask"], temperature=0.7)
    assert (plain - batch["logprobs"]).abs().max().item() > 1e-3
    # the same seed draws the same ids
    again = generate(model, tok, prompts, max_new_tokens=24, temperature=0.7, top_p=0.9,
                     generator=torch.Generator().manual_seed(1))
    assert again.response_ids == gen.response_ids


@pytest.mark.parametrize("arch", ARCHS)
def test_a_prompt_pass_in_chunks_equals_one_pass(arch):
    model, tok = tiny_lm(arch)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, 200, (n,), generator=g).tolist() for n in (7, 40, 13, 90, 3, 55)]
    whole = generate(model, tok, prompts, max_new_tokens=10, prefill_tokens=10**6)
    chunked = generate(model, tok, prompts, max_new_tokens=10, prefill_tokens=100)   # 4 chunks, joined
    assert chunked.response_ids == whole.response_ids
    for a, b in zip(chunked.logprobs, whole.logprobs):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_batched_equals_one_by_one(arch):
    model, tok, prompts = _setup(arch)
    assert len({len(p) for p in prompts}) == 3          # left padding is exercised
    batched = generate(model, tok, prompts, max_new_tokens=20)
    alone = [generate(model, tok, [p], max_new_tokens=20) for p in prompts]
    assert batched.response_ids == [g.response_ids[0] for g in alone]
    assert batched.texts == [g.texts[0] for g in alone]
    for lp, g in zip(batched.logprobs, alone):
        assert torch.allclose(lp, g.logprobs[0], atol=1e-4)
    # greedy log-probs are the model's own distribution, teacher-forced at temperature 0
    batch = batched.padded(tok.pad_token_id)
    with torch.no_grad():
        forced = sequence_logprobs(model, batch["prompt_ids"], batch["prompt_mask"], batch["response_ids"],
                                   batch["response_mask"])
    assert (forced - batch["logprobs"]).abs().max().item() <= 1e-4


def test_stop_strings_and_eos_end_a_row_while_the_others_continue():
    model, tok, prompts = _setup("llama")
    free = generate(model, tok, prompts, max_new_tokens=16)
    assert free.finish_reasons == ["length"] * 3
    # A stop string that row 0 writes and the other rows never do.
    text0 = free.texts[0]
    stop = next(text0[i:i + 3] for i in range(4, len(text0) - 3)
                if text0[i:i + 3].strip() and all(text0[i:i + 3] not in t for t in free.texts[1:]))
    stopped = generate(model, tok, prompts, max_new_tokens=16, stop=[stop])
    assert stopped.finish_reasons == ["stop", "length", "length"]
    assert stopped.texts[0] == text0[:text0.index(stop)]
    assert len(stopped.response_ids[0]) < 16
    assert stopped.response_ids[0] == free.response_ids[0][:len(stopped.response_ids[0])]
    assert stopped.response_ids[1:] == free.response_ids[1:]
    # An eos id (here: a token only row 1 emits, declared an eos of the model) ends row 1 after it.
    others = set(free.response_ids[0]) | set(free.response_ids[2])
    k, token = next((k, t) for k, t in enumerate(free.response_ids[1]) if k > 0 and t not in others)
    model.generation_config.eos_token_id = [tok.eos_token_id, token]
    ended = generate(model, tok, prompts, max_new_tokens=16)
    assert ended.finish_reasons == ["length", "eos", "length"]
    assert ended.response_ids[1] == free.response_ids[1][:free.response_ids[1].index(token) + 1]
    assert ended.response_ids[0] == free.response_ids[0] and ended.response_ids[2] == free.response_ids[2]


def test_requests_too_large_for_the_model_or_the_budget_fail_in_one_line(tmp_path):
    model, tok, prompts = _setup("qwen2", max_positions=256)
    cases = [
        (lambda: generate(model, tok, prompts, max_new_tokens=8, max_batch_tokens=300), "max_batch_tokens"),
        (lambda: generate(model, tok, prompts, max_new_tokens=200), "256 positions"),
        (lambda: score_actions(model, tok, prompts, [["x"]] * 3, max_batch_tokens=10), "max_batch_tokens"),
        (lambda: load_lm(LMConfig(model=str(tmp_path / "missing"))), "does not exist"),
        (lambda: load_lm(LMConfig(model=str(tmp_path))), "no config.json"),
        (lambda: load_lora(model, tmp_path), "adapter_config.json"),
        (lambda: LMConfig.from_options(temprature=0.5), "did you mean 'temperature'"),
        (lambda: LMConfig(mode="sample"), "mode must be one of"),
    ]
    for call, expected in cases:
        with pytest.raises(ValueError, match=expected) as err:
            call()
        assert "\n" not in str(err.value)


def test_prompts_keep_the_system_message_and_the_last_exchanges():
    _, tok = tiny_lm("llama")
    messages = chat("obs 0") + [m for k in (1, 2, 3) for m in ({"role": "assistant", "content": f"act {k}"},
                                                               {"role": "user", "content": f"obs {k}"})]
    processor = LMProcessor(tok, history_turns=1)
    assert [m["content"] for m in processor.window(messages)][1:] == ["obs 2", "act 3", "obs 3"]
    assert [m["content"] for m in processor.window(messages, 0)][1:] == ["obs 3"]
    assert processor.window(messages)[0] == messages[0]
    # tool specs reach the model's own template, which ends with the generation prompt
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    text = tok.decode(processor.prompt(messages, tools).ids)
    assert "Tools: search" in text and text.endswith("<|im_start|>assistant\n")
    # too long: old exchanges go first, then tokens from the left; the system message stays whole
    full = LMProcessor(tok, history_turns=3).prompt(messages)
    system_ids = processor.render(messages[:1], generation_prompt=False)
    for limit in (len(full.ids) - 5, len(system_ids) + 12):
        cut = LMProcessor(tok, history_turns=3, max_prompt_tokens=limit).prompt(messages)
        assert len(cut.ids) <= limit
        assert cut.ids[:len(system_ids)] == system_ids and cut.ids[-3:] == full.ids[-3:]
    with pytest.raises(ValueError, match="raise max_prompt_tokens"):
        LMProcessor(tok, max_prompt_tokens=len(system_ids)).prompt(messages)
    # a reply's ids -> text: the eos goes, a stop string cuts, tool families may keep special tokens
    ids = tok.encode("[walk] <kitchen> (2)\nmore", add_special_tokens=False) + [tok.eos_token_id]
    assert response_text(tok, ids) == "[walk] <kitchen> (2)\nmore"
    assert response_text(tok, ids, stop=["\n"]) == "[walk] <kitchen> (2)"
    special = tok.convert_tokens_to_ids("<|im_start|>")
    assert response_text(tok, [special] + ids, keep_special=True).startswith("<|im_start|>[walk]")


@pytest.mark.parametrize("arch", ARCHS)
def test_scoring_sums_equal_teacher_forced_sums(arch):
    model, tok, prompts = _setup(arch)
    candidates = [["[walk] <kitchen> (2)", "open fridge", "ls -a"], [], ["cat notes.txt | sort > out.txt"]]
    for budget in (65536, 300):     # one batch, or several that re-run a prompt
        scores = score_actions(model, tok, prompts, candidates, max_batch_tokens=budget)
        assert [len(s.sum) for s in scores] == [3, 0, 1]
        rows = [(p, ids) for p, s in zip(prompts, scores) for ids in s.ids]
        prompt_ids, prompt_mask = left_pad([p for p, _ in rows], tok.pad_token_id)
        response_ids, response_mask = right_pad([r for _, r in rows], tok.pad_token_id)
        with torch.no_grad():
            forced = sequence_logprobs(model, prompt_ids, prompt_mask, response_ids, response_mask).sum(-1)
        got = torch.tensor([x for s in scores for x in s.sum], dtype=torch.float32)
        assert (forced - got).abs().max().item() <= 1e-4
        assert all(s.ids[k][-1] == tok.eos_token_id for s in scores for k in range(len(s.ids)))
        assert torch.allclose(torch.tensor(scores[0].mean), torch.tensor(scores[0].sum) / torch.tensor(
            [len(i) for i in scores[0].ids]))


def test_scoring_picks_the_expert_action_after_a_few_training_steps():
    from omnigym.agents import ExpertAgent
    from omnigym.registry import make
    model, tok = tiny_lm("llama", seed=3)
    # The expert's third decision in an episode: 36 admissible actions, near misses among them.
    env = make("household/Heat-v0", mode="text")
    obs, info = env.reset(seed=0)
    expert = ExpertAgent()
    expert.reset(env=env, seed=0)
    messages = list(info["turn"])
    for _ in range(2):
        obs, _, _, _, info = env.step(expert.act(obs, info))
        messages += info["turn"]
    candidates = info["admissible_actions"]
    best = candidates.index(expert.act(obs, info))
    env.close()
    prompt = LMProcessor(tok, history_turns=0).prompt(messages).ids
    before = score_actions(model, tok, [prompt], [candidates])[0]
    assert int(before.mean.argmax()) != best
    prompt_ids, prompt_mask = left_pad([prompt], tok.pad_token_id)
    target_ids, target_mask = right_pad([before.ids[best]], tok.pad_token_id)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(8):           # behaviour cloning on the expert's reply
        loss = -sequence_logprobs(model, prompt_ids, prompt_mask, target_ids, target_mask).sum() / target_mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    after = score_actions(model, tok, [prompt], [candidates])[0]
    assert after.mean[best] > before.mean[best] + 1.0
    assert int(after.mean.argmax()) == best and int(after.sum.argmax()) == best


def test_lora_adapters_round_trip(tmp_path):
    base, tok = tiny_lm("llama", seed=5)
    lora = add_lora(base, r=4, alpha=8)
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():   # lora_B starts at zero (a no-op adapter): give it weights to carry
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([tok.encode("Task: heat the apple.", add_special_tokens=False)])
    with torch.no_grad():
        tuned = lora(input_ids=ids).logits
    save_lora(lora, tmp_path / "adapter")
    fresh, _ = tiny_lm("llama", seed=5)
    with torch.no_grad():
        plain = fresh(input_ids=ids).logits
        loaded = load_lora(fresh, tmp_path / "adapter")(input_ids=ids).logits
    assert not torch.allclose(plain, tuned, atol=1e-3)
    assert torch.allclose(loaded, tuned, atol=1e-6)
    # a saved model folder loads back with its adapter through the config
    folder = save_lm(tiny_lm("llama", seed=5)[0], tok, tmp_path / "model")
    model, _ = load_lm(LMConfig(model=str(folder), lora=str(tmp_path / "adapter"), device="cpu"))
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, tuned, atol=1e-5)
