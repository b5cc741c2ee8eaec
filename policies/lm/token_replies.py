"""Replies to token observations (a text env's token view: left-padded
``input_ids`` / ``attention_mask``, optional ``candidates``) as fixed-width
id rows: what the RLlib module and the reference agent-RL loop both act with.

``token_replies`` returns ``actions`` [B, K] (the reply's ids, then pad
ids), ``token_logp`` and ``token_entropy`` [B, K] (0 outside the reply) and
``token_mask`` [B, K] (the reply's ids through its first end id);
``teacher_forced`` gives the log-probs and entropies of the same ids under
the same transform (temperature, top-p, the candidates' mask), with
gradients.
"""
from __future__ import annotations

import torch

from omnigym.policies.lm.generation import batch_chunks, generate, sequence_logprobs

INPUT_IDS, ATTENTION_MASK, CANDIDATES = "input_ids", "attention_mask", "candidates"


def end_ids_of(tokenizer) -> list[int]:
    """Ids that end a reply in the token view: pad and eos (``TokenTextEnv`` reads up to them)."""
    return sorted({tokenizer.pad_token_id, tokenizer.eos_token_id} - {None})


def reply_mask(actions: torch.Tensor, end_ids: list[int]) -> torch.Tensor:
    """The reply's positions: every id up to and including the first end id
    (eos or pad), where the env's decoding stops reading too."""
    ends = torch.isin(actions, torch.as_tensor(end_ids, device=actions.device)).long()
    return (ends.cumsum(-1) - ends) == 0


def token_replies(model, tokenizer, obs: dict, width: int, *, temperature: float, top_p: float = 1.0,
                  stop=(), max_batch_tokens: int = 65536, generator=None) -> dict:
    """One batched generation for every row of ``obs`` (module docstring)."""
    ids, mask = obs[INPUT_IDS], obs[ATTENTION_MASK].bool()
    prompts = [row[keep].tolist() for row, keep in zip(ids, mask)]
    candidates = obs.get(CANDIDATES)
    pad_id = int(tokenizer.pad_token_id)
    rows = len(prompts)
    actions = torch.full((rows, width), pad_id, dtype=torch.long)
    logp = torch.zeros((rows, width), dtype=torch.float32)
    spread = torch.zeros((rows, width), dtype=torch.float32)
    written = torch.zeros((rows, 1), dtype=torch.long)
    for chunk in batch_chunks([len(p) for p in prompts], width, max_batch_tokens):
        generation = generate(model, tokenizer, [prompts[i] for i in chunk], max_new_tokens=width,
                              temperature=temperature, top_p=top_p, stop=stop, max_batch_tokens=max_batch_tokens,
                              generator=generator, candidates=None if candidates is None else candidates[chunk])
        for i, reply, reply_logp, reply_entropy in zip(chunk, generation.response_ids, generation.logprobs,
                                                       generation.entropies):
            actions[i, :len(reply)] = torch.as_tensor(reply)
            logp[i, :len(reply)] = reply_logp
            spread[i, :len(reply)] = reply_entropy
            written[i] = len(reply)
    # The reply: the ids generated, through the first end id (the env stops reading there).
    token_mask = reply_mask(actions, end_ids_of(tokenizer)) & (torch.arange(width) < written)
    return {"actions": actions, "token_logp": logp * token_mask, "token_entropy": spread * token_mask,
            "token_mask": token_mask}


def teacher_forced(model, obs: dict, actions, token_mask, *, temperature: float, top_p: float = 1.0):
    """(log-probs, entropies) [N, K] of ``actions`` after the observations'
    prompts, under the sampling transform; 0 outside ``token_mask``.
    Columns that are padding in every row are dropped first (positions count
    real tokens, so they change nothing)."""
    ids, mask = obs[INPUT_IDS].long(), obs[ATTENTION_MASK].long()
    first = int(mask.any(0).long().argmax()) if mask.any() else 0
    candidates = obs.get(CANDIDATES)
    return sequence_logprobs(model, ids[:, first:], mask[:, first:], actions.long(), token_mask, temperature, top_p,
                             with_entropy=True, candidates=None if candidates is None else candidates.long())
