"""Group RL for an LM agent in one file, without RLlib (CleanRL-style).

The same update as ``algo=grpo|rloo|drgrpo|gigpo|aepo`` on RLlib -- the same
token view of the env, the same LM and generation, the same estimators
(``omnigym.policies.agent_rl.episodes``) and losses
(``omnigym.policies.agent_rl.losses``) -- in a plain loop: roll out whole
groups (``group_rollouts``: only the slots still playing generate, and with
``--branching`` AEPO forks high-entropy paths from env snapshots), compute
one advantage per step, take one optimizer step per minibatch. It is the
correctness and speed reference for the RLlib path
(``benchmarks/agent_rl_throughput.py``) and runs where Ray does not (a GPU
box with torch and transformers only).

    python benchmarks/agent_rl_reference.py --env household/PutIn-v0 --estimator gigpo \
        --model runs/sft-putin/checkpoints/latest --mode admissible --iterations 20 --out runs/ref-gigpo
    python benchmarks/agent_rl_reference.py --tiny llama --device cuda ...   # a random LM from scratch
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from omnigym.policies.agent_rl.episodes import EstimatorConfig, group_sizes, step_advantages
from omnigym.policies.agent_rl.losses import LossConfig, policy_loss
from omnigym.policies.agent_rl.rollout import Branching, group_rollouts
from omnigym.policies.lm.token_replies import teacher_forced


@dataclass
class Args:
    env: str = "household/PutIn-v0"
    env_kwargs: dict = field(default_factory=lambda: {"mode": "text", "max_episode_steps": 12})
    model: str | None = None           # a local HF folder (an SFT checkpoint); None with --tiny: a random LM
    tiny: str | None = None            # llama | qwen2 | gpt2: tiny_lm from scratch
    tiny_hidden: int = 128
    tiny_layers: int = 4
    mode: str = "admissible"           # generate | admissible (the LM's mode)
    temperature: float = 1.0
    max_prompt_tokens: int = 1024
    max_new_tokens: int = 40
    history_turns: int = 1
    group_size: int = 4
    groups: int = 4
    seeds: tuple = (0, 49)             # the task seeds the groups cycle through
    iterations: int = 10
    lr: float = 1e-4
    minibatch_size: int | None = None  # replies per optimizer step; None: the whole batch
    estimator: dict = field(default_factory=lambda: {"estimator": "grpo"})
    loss: dict = field(default_factory=dict)
    branching: dict | None = None      # Branching options: AEPO's rollouts
    seed: int = 0
    eval_seeds: dict = field(default_factory=dict)   # {"train": [first, n], "test": [first, n]}: sampled evaluation after training
    device: str = "cpu"
    torch_threads: int = 2


def build(args: Args):
    """(model, tokenizer, envs): the LM and one token-view env per slot."""
    from omnigym.policies.lm.model import load_lm, tiny_lm
    from omnigym.registry import make
    from omnigym.rllib.episode_control import EpisodeFaults
    from omnigym.rllib.token_env import TokenTextEnv
    if args.tiny:
        model, tokenizer = tiny_lm(args.tiny, seed=args.seed, hidden=args.tiny_hidden, layers=args.tiny_layers)
    else:
        model, tokenizer = load_lm(model=args.model, device=args.device)
    model.to(args.device)
    vocab = int(model.get_input_embeddings().num_embeddings)
    envs = [TokenTextEnv(EpisodeFaults(make(args.env, **args.env_kwargs)), tokenizer,
                         prompt_tokens=args.max_prompt_tokens, response_tokens=args.max_new_tokens,
                         history_turns=args.history_turns, vocab_size=vocab,
                         candidates=64 if args.mode == "admissible" else 0)
            for _ in range(args.group_size * args.groups)]
    return model, tokenizer, envs


def update(model, optimizer, trajectories, advantages, args: Args, loss_config: LossConfig) -> dict:
    """One epoch over the batch's replies, in minibatches: the token-level loss, one optimizer step each."""
    device = next(model.parameters()).device
    rows = [(t.obs[i], t.actions[i], t.logp[i], t.mask[i], a[i]) for t, a in zip(trajectories, advantages)
            for i in range(len(t.actions))]
    order = np.random.default_rng(args.seed).permutation(len(rows))
    size = args.minibatch_size or len(rows)
    stats = defaultdict(list)
    model.train()
    for begin in range(0, len(rows), size):
        chunk = [rows[i] for i in order[begin:begin + size]]
        obs = {k: torch.as_tensor(np.stack([r[0][k] for r in chunk]), device=device) for k in chunk[0][0]}
        actions = torch.as_tensor(np.stack([r[1] for r in chunk]), device=device)
        old = torch.as_tensor(np.stack([r[2] for r in chunk]), device=device)
        mask = torch.as_tensor(np.stack([r[3] for r in chunk]), device=device)
        adv = torch.as_tensor(np.array([r[4] for r in chunk], dtype=np.float32), device=device)
        logp, entropy = teacher_forced(model, obs, actions, mask, temperature=args.temperature)
        loss, s = policy_loss(loss_config, logp=logp, old_logp=old, advantages=adv, mask=mask, entropy=entropy)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        for k, v in s.items():
            stats[k].append(float(v))
    model.eval()
    return {k: float(np.mean(v)) for k, v in stats.items()}


def train(args: Args, progress: bool = True) -> list[dict]:
    """``args.iterations`` iterations: one dict per iteration (success, return,
    timings), and the sampled evaluation of ``args.eval_seeds`` after them."""
    from tqdm import tqdm
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    model, tokenizer, envs = build(args)
    model.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    estimator, loss_config = EstimatorConfig(**args.estimator), LossConfig(**args.loss)
    branching = Branching(**args.branching) if args.branching is not None else None
    rng = np.random.default_rng(args.seed)
    first, last = args.seeds
    history = []
    for it in tqdm(range(args.iterations), desc=f"reference {estimator.estimator}", disable=not progress):
        timers: dict = defaultdict(float)
        start = time.perf_counter()
        starts = [(it * args.groups + g, first + (it * args.groups + g) % (last - first + 1))
                  for g in range(args.groups)]
        trajectories = group_rollouts(model, tokenizer, envs, starts, args.group_size, temperature=args.temperature,
                                      branching=branching, rng=rng, timers=timers)
        kept = [t for t in trajectories if not t.failed]
        t0 = time.perf_counter()
        records = [t.record() for t in kept]
        advantages = step_advantages(records, estimator)
        timers["advantage"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats = update(model, optimizer, kept, advantages, args, loss_config)
        timers["update"] = time.perf_counter() - t0
        timers["iteration"] = time.perf_counter() - start
        sizes = group_sizes(records)
        history.append({"iteration": it + 1, "success_rate": float(np.mean([r.success for r in records])),
                        "tool_calls_per_success": tool_calls_per_success(kept, envs[0]),
                        "return_mean": float(np.mean([r.score for r in records])),
                        "episodes": len(records), "dropped": len(trajectories) - len(kept),
                        "branched": sum(t.parent is not None for t in trajectories),
                        "steps": sum(len(t.actions) for t in kept), "group_size_min": min(sizes.values()),
                        **{f"{k}_s": v for k, v in timers.items()}, **stats})
    evaluation = {panel: evaluate(model, tokenizer, envs, first_seed, n, args)
                  for panel, (first_seed, n) in args.eval_seeds.items()}
    return history, evaluation


def tool_calls_per_success(trajectories, env) -> float | None:
    """Mean number of tool calls in the successful trajectories (None without any)."""
    solved = [t for t in trajectories if t.record().success]
    if not solved:
        return None
    return float(np.mean([sum("<tool_call>" in env.decode(a) for a in t.actions) for t in solved]))


def evaluate(model, tokenizer, envs, first_seed: int, n: int, args: Args) -> dict:
    """Sampled episodes on seeds first_seed .. first_seed + n - 1, as many at once as there are envs."""
    from omnigym.stats import wilson_interval
    results = []
    for begin in range(0, n, len(envs)):
        seeds = list(range(first_seed + begin, first_seed + min(n, begin + len(envs))))
        results += group_rollouts(model, tokenizer, envs[:len(seeds)], [(s, s) for s in seeds], 1,
                                  temperature=args.temperature)
    successes = sum(t.record().success for t in results)
    lo, hi = wilson_interval(successes, len(results))
    return {"episodes": len(results), "successes": successes, "success_rate": successes / len(results),
            "success_ci": [lo, hi], "tool_calls_per_success": tool_calls_per_success(results, envs[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in Args.__dataclass_fields__.values():   # every field is an option; unset ones keep Args' default
        kind = {"int": int, "float": float, "int | None": int}.get(f.type, str)
        if f.type in ("dict", "dict | None", "tuple"):
            kind = json.loads
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for results.json")
    ns = vars(parser.parse_args())
    out = ns.pop("out")
    args = Args(**{k: v for k, v in ns.items() if v is not None})
    history, evaluation = train(args)
    for row in history:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    print(json.dumps(evaluation))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"args": asdict(args), "history": history,
                                                      "evaluation": evaluation}, indent=1))


if __name__ == "__main__":
    main()
