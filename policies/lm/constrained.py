"""Replies restricted to a list of candidate replies (the env's admissible actions).

A text env that lists its admissible actions lets an LM generate only them:
at each reply position, the tokens allowed are the next tokens of the
candidates whose ids agree with the reply so far (a prefix trie), and every
other token's logit is ``-inf`` before the temperature/top-p transform of
``generation.token_logprobs``. So the LM still samples token by token (its
log-probs, entropies and PPO ratios are per token, as in free generation),
but every reply it can write is one of the candidates. Unlike scoring
(``scoring.py``: one log-likelihood per whole candidate), this costs one
generation, not one pass per candidate.

The mask is part of the sampling transform: training must apply the same
mask (``sequence_logprobs(..., candidates=...)``) or the ratio of the first
minibatch is not 1 (RLlib pitfall: a logit transform sampling applies and
training does not).

Candidates are a tensor ``[B, C, R]`` of ids, each candidate's reply ids
followed by the LM's eos id, padded with ``NO_TOKEN``; a row with no
candidate left (none given, or the reply has left every candidate, which
cannot happen when sampling under the mask) is unconstrained.
"""
from __future__ import annotations

NO_TOKEN = -1


def candidate_table(candidates: list[list[int]], count: int, width: int, eos_id: int):
    """``[count, width]`` int64 numpy table of candidate ids (each + eos),
    padded with ``NO_TOKEN``; candidates longer than ``width`` with their eos
    are left out (they could never be written whole), as are those past
    ``count``. Returns ``(table, number kept)``."""
    import numpy as np
    table = np.full((count, width), NO_TOKEN, dtype=np.int64)
    kept = 0
    for ids in candidates:
        ids = list(ids) + [eos_id]
        if kept == count or len(ids) > width:
            continue
        table[kept, :len(ids)] = ids
        kept += 1
    return table, kept


def allowed_next(candidates, alive):
    """``[B, C]`` ids each alive candidate allows at this position, ``NO_TOKEN``
    where a candidate is dead or ended. ``candidates``: ``[B, C]`` ids at the
    position; ``alive``: ``[B, C]`` bool, the candidate agrees with the reply so far."""
    return candidates.masked_fill(~alive, NO_TOKEN)


def mask_logits(logits, allowed):
    """``logits [B, V]`` with ``-inf`` outside ``allowed [B, C]`` (ids or
    ``NO_TOKEN``); rows whose ``allowed`` is all ``NO_TOKEN`` are unchanged."""
    import torch
    valid = allowed >= 0
    keep = torch.zeros_like(logits, dtype=torch.bool)
    keep.scatter_(1, allowed.clamp(min=0), valid)
    constrained = valid.any(-1, keepdim=True)
    return logits.float().masked_fill(constrained & ~keep, float("-inf"))


def mask_reply_logits(logits, candidates, reply_ids):
    """Teacher-forced form: ``logits [B, R, V]`` of the reply positions
    masked as sampling masked them, given the candidates ``[B, C, R']``
    and the reply ``[B, R]`` that was written."""
    import torch
    width = logits.shape[1]
    cands = candidates[..., :width]
    if cands.shape[-1] < width:   # positions past every candidate: no constraint
        cands = torch.nn.functional.pad(cands, (0, width - cands.shape[-1]), value=NO_TOKEN)
    agree = cands == reply_ids[:, None, :]                        # [B, C, R]
    # A candidate is alive at position t when it agreed at every position before t.
    before = torch.cat([torch.ones_like(agree[..., :1]), agree[..., :-1]], dim=-1).cumprod(-1).bool()
    out = []
    for t in range(width):
        out.append(mask_logits(logits[:, t], allowed_next(cands[..., t], before[..., t])))
    return torch.stack(out, dim=1)
