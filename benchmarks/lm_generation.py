"""Tokens/s of omnigym's batched LM generator against Hugging Face ``generate``
one prompt at a time, on the same prompts in the same run, plus the time of
one full fine-tuning step.

    python benchmarks/lm_generation.py                       # SmolLM2-135M-Instruct, CPU
    python benchmarks/lm_generation.py --model tiny:llama    # a tiny random model (a smoke run)
    python benchmarks/lm_generation.py --device cuda --model random:smollm2   # SmolLM2's config, random weights

Prompts are real: the chat prompts (system message, instruction, first
observation) of household tasks, through the model's chat template. Both
sides decode greedily up to ``--new-tokens`` tokens and stop at the eos;
tokens/s counts the tokens each side actually generated, over the whole
call (prompt pass included) and over decoding alone (the same call with one
new token, subtracted). The baseline is what a harness without batching
does: ``model.generate`` per prompt.
The fine-tuning step is a forward and backward pass over prompt + reply
ids with the log-likelihood of the reply tokens as the loss, and an AdamW
step: the compute of one SFT step.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from omnigym.policies.lm.generation import generate, sequence_logprobs
from omnigym.policies.lm.model import load_lm, resolve_device, tiny_lm
from omnigym.policies.lm.processor import LMProcessor, right_pad, left_pad
from omnigym.registry import make


def load(spec: str, dtype: str, device: str):
    """``default`` (SmolLM2), ``tiny:ARCH``, ``random:smollm2`` (its config, random weights) or a folder."""
    if spec.startswith("tiny:"):
        model, tokenizer = tiny_lm(spec.split(":", 1)[1])
    elif spec == "random:smollm2":
        from transformers import AutoModelForCausalLM
        trained, tokenizer = load_lm(dtype="float32", device="cpu")
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(trained.config)
    else:
        model, tokenizer = load_lm(model=None if spec == "default" else spec, dtype=dtype, device="cpu")
    return model.to(device=device, dtype=getattr(torch, dtype)).eval(), tokenizer


def household_prompts(processor: LMProcessor, n: int) -> list[list[int]]:
    prompts = []
    for seed in range(n):
        env = make("household/Household-v0", mode="text")
        _, info = env.reset(seed=seed)
        prompts.append(processor.prompt(info["turn"]).ids)
        env.close()
    return prompts


def timed(fn, device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def hf_one_by_one(model, tokenizer, prompts, new_tokens: int, device: str) -> tuple[int, float]:
    def run():
        tokens = 0
        for p in prompts:
            ids = torch.tensor([p], device=device)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
            tokens += out.shape[1] - len(p)
        return tokens
    return timed(run, device)


def ours_batched(model, tokenizer, prompts, new_tokens: int, device: str) -> tuple[int, float]:
    def run():
        gen = generate(model, tokenizer, prompts, max_new_tokens=new_tokens, max_batch_tokens=10**8)
        return sum(len(r) for r in gen.response_ids)
    return timed(run, device)


def finetune_step_s(model, tokenizer, prompts, reply_tokens: int, batch: int, device: str, steps: int) -> float:
    """Median seconds of one forward + backward + AdamW step at ``batch`` rows."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    rows = (prompts * batch)[:batch]
    replies = [[(t * 7 + 11) % (model.config.vocab_size - 1) for t in range(reply_tokens)] for _ in rows]
    prompt_ids, prompt_mask = left_pad(rows, tokenizer.pad_token_id, device)
    reply_ids, reply_mask = right_pad(replies, tokenizer.pad_token_id, device)
    times = []
    for _ in range(steps + 1):            # the first step warms up (allocations, kernels)
        def step():
            optimizer.zero_grad()
            logp = sequence_logprobs(model, prompt_ids, prompt_mask, reply_ids, reply_mask)
            loss = -(logp * reply_mask).sum() / reply_mask.sum()
            loss.backward()
            optimizer.step()
        times.append(timed(step, device)[1])
    model.eval()
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="default (SmolLM2-135M-Instruct), tiny:ARCH, "
                   "random:smollm2 or a local model folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--sft-batch", type=int, default=8)
    p.add_argument("--sft-steps", type=int, default=3)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model, tokenizer = load(args.model, args.dtype, device)
    processor = LMProcessor(tokenizer, history_turns=4, max_prompt_tokens=2048)
    prompts = household_prompts(processor, max(args.batches))
    print(f"model {args.model} on {device} ({args.dtype}); prompts of {min(map(len, prompts))}-"
          f"{max(map(len, prompts))} tokens; up to {args.new_tokens} new tokens each", flush=True)
    generate(model, tokenizer, prompts[:1], max_new_tokens=2)            # warm-up, both sides
    hf_one_by_one(model, tokenizer, prompts[:1], 2, device)
    rows = []
    for batch in args.batches:
        batch_prompts = prompts[:batch]
        row = {"batch": batch}
        for side, run in (("hf", hf_one_by_one), ("ours", ours_batched)):
            tokens, seconds = run(model, tokenizer, batch_prompts, args.new_tokens, device)
            # The same prompts with one new token: the prompt pass (and the first token) alone.
            first, prefill_s = run(model, tokenizer, batch_prompts, 1, device)
            row[f"{side}_tokens"], row[f"{side}_s"], row[f"{side}_prefill_s"] = tokens, seconds, prefill_s
            row[f"{side}_tok_s"] = tokens / seconds
            row[f"{side}_decode_tok_s"] = (tokens - first) / max(seconds - prefill_s, 1e-9)
        row["speedup"] = row["ours_tok_s"] / row["hf_tok_s"]
        row["decode_speedup"] = row["ours_decode_tok_s"] / row["hf_decode_tok_s"]
        rows.append(row)
        print(f"batch {batch:>3}: HF generate one by one {row['hf_tok_s']:7.1f} tok/s "
              f"(decode {row['hf_decode_tok_s']:7.1f}), ours batched {row['ours_tok_s']:7.1f} tok/s "
              f"(decode {row['ours_decode_tok_s']:7.1f}): x{row['speedup']:.2f} (decode x{row['decode_speedup']:.2f})",
              flush=True)
    step_s = finetune_step_s(model, tokenizer, prompts, 32, args.sft_batch, device, args.sft_steps)
    print(f"one fine-tuning step (batch {args.sft_batch}, prompt + 32 reply tokens): {step_s:.2f} s")
    print("\n| batch | HF generate, one prompt at a time: tok/s (decode only) | omnigym batched: tok/s "
          "(decode only) | speed-up (decode only) | prompt pass, HF / ours |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['hf_tok_s']:.1f} ({r['hf_decode_tok_s']:.1f}) | {r['ours_tok_s']:.1f} "
              f"({r['ours_decode_tok_s']:.1f}) | {r['speedup']:.2f}x ({r['decode_speedup']:.2f}x) | "
              f"{r['hf_prefill_s']:.1f} s / {r['ours_prefill_s']:.1f} s |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "device": device, "dtype": args.dtype, "new_tokens": args.new_tokens,
                       "generation": rows, "finetune_step_s": step_s, "sft_batch": args.sft_batch}, f, indent=2)


if __name__ == "__main__":
    main()
