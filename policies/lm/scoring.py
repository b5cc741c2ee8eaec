"""Action scoring (SayCan / LID style): the log-likelihood of each admissible
action as the assistant's reply to a prompt.

A candidate's ids are its text encoded without special tokens, then the
end-of-turn id (the tokenizer's eos): the score is that of the whole reply,
so an action is not rewarded for being the prefix of a longer one. ``sum``
is the total log-likelihood of those ids, ``mean`` the sum over their
count (length-normalised); both under the model's own distribution
(``token_logprobs`` at temperature 0), so ``sum`` equals the sum of
``sequence_logprobs`` over the same ids.

Each prompt is run once (``generation.prefill``); its KV cache is then repeated for each of its
candidates (``batch_select_indices`` with repeated indices), and all
candidates run as one right-padded batch on top of it. Work is split into
batches of at most ``max_batch_tokens`` rows x tokens, re-running a prompt
only when its own candidates need more than one batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omnigym.policies.lm.generation import check_request, prefill, token_logprobs
from omnigym.policies.lm.processor import right_pad


@dataclass
class ActionScores:
    """The scores of one prompt's candidates, in the candidates' order."""

    sum: np.ndarray            # [n] log-likelihood of each candidate's ids
    mean: np.ndarray           # [n] sum / number of ids
    ids: list[list[int]]       # each candidate's ids: its text, then the eos

    def by(self, norm: str) -> np.ndarray:
        if norm not in ("sum", "mean"):
            raise ValueError(f"score norm must be 'sum' or 'mean', got {norm!r}")
        return self.sum if norm == "sum" else self.mean


def candidate_ids(tokenizer, candidate: str | list[int]) -> list[int]:
    """A candidate's ids as a reply: given ids as they are, text encoded plus the eos."""
    if isinstance(candidate, str):
        return tokenizer.encode(candidate, add_special_tokens=False) + [tokenizer.eos_token_id]
    return list(candidate)


def _units(prompts, candidates, budget) -> list[list[tuple[int, int, int]]]:
    """Batches of (prompt, first candidate, end candidate) whose rows x tokens fit ``budget``."""
    batches, current, used = [], [], 0
    for i, (prompt, cands) in enumerate(zip(prompts, candidates)):
        if not cands:
            continue
        width = len(prompt) + max(len(c) for c in cands)
        per = max(1, budget // width)
        for start in range(0, len(cands), per):
            end = min(start + per, len(cands))
            cost = (end - start) * width
            if current and used + cost > budget:
                batches.append(current)
                current, used = [], 0
            current.append((i, start, end))
            used += cost
    return batches + ([current] if current else [])


def score_actions(model, tokenizer, prompt_ids_batch: list[list[int]], candidates_batch: list[list],
                  *, max_batch_tokens: int = 65536) -> list[ActionScores]:
    """One ``ActionScores`` per prompt; candidates are strings or id lists."""
    import torch
    if len(prompt_ids_batch) != len(candidates_batch):
        raise ValueError(f"{len(prompt_ids_batch)} prompts but {len(candidates_batch)} candidate lists")
    cand_ids = [[candidate_ids(tokenizer, c) for c in cands] for cands in candidates_batch]
    for prompt, cands in zip(prompt_ids_batch, cand_ids):
        if cands:
            check_request(model, 1, len(prompt), max(len(c) for c in cands), max_batch_tokens)
    sums = [np.zeros(len(c), np.float64) for c in cand_ids]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    with torch.no_grad():
        for batch in _units(prompt_ids_batch, cand_ids, max_batch_tokens):
            owners = sorted({i for i, _, _ in batch})
            cache, last_logits, prompt_mask = prefill(model, [prompt_ids_batch[i] for i in owners], pad)
            rows = [(owners.index(i), i, k) for i, start, end in batch for k in range(start, end)]
            index = torch.as_tensor([r for r, _, _ in rows], device=device)
            cache.batch_select_indices(index)   # each prompt's cache, once per candidate
            ids, mask = right_pad([cand_ids[i][k] for _, i, k in rows], pad, device)
            full_mask = torch.cat([prompt_mask[index], mask], dim=1)
            start = prompt_mask.sum(-1)[index]     # a candidate's first position: its prompt's length
            cand_positions = start[:, None] + torch.arange(ids.shape[1], device=device)
            logits = model(input_ids=ids, attention_mask=full_mask, position_ids=cand_positions,
                           past_key_values=cache, use_cache=True).logits
            # The prompt's last logits predict a candidate's first id; its own logits predict the rest.
            logits = torch.cat([last_logits[index][:, None], logits[:, :-1]], dim=1)
            logp = token_logprobs(logits).gather(-1, ids[..., None]).squeeze(-1) * mask
            for (_, i, k), total in zip(rows, logp.sum(-1).double().tolist()):
                sums[i][k] = total
    return [ActionScores(sum=s, mean=s / np.maximum([len(c) for c in cands], 1) if cands else s.copy(),
                         ids=cands) for s, cands in zip(sums, cand_ids)]
