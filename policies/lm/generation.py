"""Batched generation with one KV cache for the whole batch, and the
teacher-forced log-probs of the same ids.

Which distribution a log-prob is of: at every step the next-token logits
``z`` go through ``token_logprobs(z, temperature, top_p)``:

- ``temperature == 0`` (greedy): ``log_softmax(z)``, the model's own
  distribution; the argmax is taken and ``top_p`` is ignored;
- ``temperature > 0``: ``log_softmax(z / temperature)``, then top-p: only the
  smallest set of most probable tokens whose probability reaches ``top_p``
  keeps its mass (the most probable token always does), the rest get
  ``-inf``, and the result is renormalised. The token is sampled from it.

The log-prob and the entropy recorded for each token are of that
distribution, and ``sequence_logprobs`` applies the same transform to a
teacher-forced pass over the same ids, so the two agree to float precision
(token-in/token-out: the ids returned are the ids that produced the text).

Rows are left-padded; positions count real tokens only
(``positions_of``), so a row's outputs do not depend on its padding.
A row leaves the batch (and the cache) when it emits an eos id, completes a
stop string, or reaches ``max_new_tokens``; the others go on.
"""
from __future__ import annotations

from dataclasses import dataclass

from omnigym.policies.lm.processor import eos_ids, left_pad, response_text, right_pad


@dataclass
class Generation:
    """One batch of replies; row i answers prompt i."""

    texts: list[str]               # decoded reply, special tokens dropped, cut before a stop string
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]  # every sampled id, up to and including the eos or the stop string's last token
    logprobs: list                 # float32 tensors, one per row: log-prob of each response id (see module doc)
    entropies: list                # float32 tensors: entropy of the distribution each id was drawn from
    finish_reasons: list[str]      # "eos" | "stop" | "length"
    temperature: float = 0.0
    top_p: float = 1.0

    def padded(self, pad_id: int, device=None) -> dict:
        """Tensors for ``sequence_logprobs`` and trainers: left-padded
        prompts, right-padded responses, and their masks."""
        import torch
        prompt_ids, prompt_mask = left_pad(self.prompt_ids, pad_id, device)
        response_ids, response_mask = right_pad(self.response_ids, pad_id, device)
        logprobs = torch.zeros(response_ids.shape, dtype=torch.float32)
        for i, lp in enumerate(self.logprobs):
            logprobs[i, :len(lp)] = lp
        return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "response_ids": response_ids,
                "response_mask": response_mask, "logprobs": logprobs.to(device)}


def token_logprobs(logits, temperature: float = 0.0, top_p: float = 1.0):
    """Log-probs ``[..., V]`` of the distribution tokens are drawn from (module doc)."""
    import torch
    logits = logits.float()
    if temperature <= 0:
        return torch.log_softmax(logits, dim=-1)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_logp, order = logp.sort(dim=-1, descending=True, stable=True)
        probs = sorted_logp.exp()
        outside = (probs.cumsum(dim=-1) - probs) >= top_p     # mass before a token already reaches top_p
        outside = torch.zeros_like(outside).scatter(-1, order, outside)
        logp = torch.log_softmax(logp.masked_fill(outside, float("-inf")), dim=-1)
    return logp


def entropy(logp):
    """Entropy of each distribution in ``logp`` (``-inf`` entries count as 0)."""
    import torch
    return -torch.where(torch.isfinite(logp), logp.exp() * logp, torch.zeros_like(logp)).sum(dim=-1)


def positions_of(mask):
    """Position ids of a left-padded batch: each row counts its real tokens
    from 0 (padding gets 0 and is masked), so a row's outputs do not depend on
    how much padding its batch gave it."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def max_positions(model) -> int | None:
    config = model.config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def check_request(model, rows: int, prompt_tokens: int, new_tokens: int, max_batch_tokens: int) -> None:
    """One-line errors for requests the model or the memory cannot hold."""
    total = prompt_tokens + new_tokens
    limit = max_positions(model)
    if limit is not None and total > limit:
        raise ValueError(f"a prompt of {prompt_tokens} tokens plus {new_tokens} new tokens exceeds the model's "
                         f"{limit} positions; lower max_new_tokens or max_prompt_tokens")
    if rows * total > max_batch_tokens:
        raise ValueError(f"{rows} rows x {total} tokens = {rows * total} tokens exceeds max_batch_tokens="
                         f"{max_batch_tokens}; use smaller batches, shorter prompts or raise max_batch_tokens")


PREFILL_TOKENS = 8192   # rows x tokens per chunk of the prompt pass on an accelerator
CPU_PREFILL_TOKENS = 1  # on CPU each prompt runs alone: per token, a batched pass was slower (prefill's doc)


def prefill(model, prompts: list[list[int]], pad_id: int, chunk_tokens: int | None = None):
    """Run the prompts once: their KV cache, the logits of their last tokens
    ``[B, V]`` and the left-padded attention mask ``[B, L]`` that goes with it.

    Prompts are sorted by length and run in chunks of at most
    ``chunk_tokens`` rows x tokens, each padded only to its own longest
    prompt; the chunks' caches are then left-padded to the longest prompt and
    joined in the prompts' order. Padding thus costs no compute, and no pass
    builds the attention mask of a whole large batch. ``chunk_tokens=None``
    picks by device: ``PREFILL_TOKENS`` on an accelerator, and on CPU each
    prompt alone -- there 32 household prompts of 250-770 tokens took 15 s
    one at a time, 18 s in chunks of 4096 rows x tokens, 22 s of 8192 and
    32-38 s in one padded pass, the joining itself 0.4-0.7 s of it.
    Joining needs caches of plain per-layer key/value tensors
    (``DynamicLayer``); any other cache (sliding windows, linear attention)
    gets one pass over the whole padded batch."""
    import torch
    from transformers.cache_utils import DynamicLayer
    device = next(model.parameters()).device
    if chunk_tokens is None:
        chunk_tokens = CPU_PREFILL_TOKENS if device.type == "cpu" else PREFILL_TOKENS
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    chunks = [[order[i] for i in chunk]
              for chunk in batch_chunks([len(prompts[i]) for i in order], 0, chunk_tokens)]
    parts = []
    for chunk in chunks if len(chunks) > 1 else [list(range(len(prompts)))]:
        ids, mask = left_pad([prompts[i] for i in chunk], pad_id, device)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions_of(mask), use_cache=True,
                    logits_to_keep=1)
        cache = out.past_key_values
        if len(chunks) > 1 and not all(type(layer) is DynamicLayer for layer in getattr(cache, "layers", [None])):
            return prefill(model, prompts, pad_id, chunk_tokens=10**12)
        parts.append((chunk, cache, out.logits[:, -1]))
    if len(parts) == 1:
        return cache, out.logits[:, -1], mask
    full_mask = left_pad(prompts, pad_id, device)[1]
    width = full_mask.shape[1]
    back = torch.as_tensor([i for i, _ in sorted(enumerate(i for chunk, _, _ in parts for i in chunk),
                                                  key=lambda pair: pair[1])], device=device)
    cache = parts[0][1]
    for l, layer in enumerate(cache.layers):
        for name in ("keys", "values"):
            tensors = [getattr(part.layers[l], name) for _, part, _ in parts]
            joined = torch.cat([torch.nn.functional.pad(t, (0, 0, width - t.shape[-2], 0)) for t in tensors])
            setattr(layer, name, joined[back])
    return cache, torch.cat([logits for _, _, logits in parts])[back], full_mask


def generate(model, tokenizer, prompts: list[list[int]], *, max_new_tokens: int = 64, temperature: float = 0.0,
             top_p: float = 1.0, stop: list[str] | tuple = (), generator=None,
             max_batch_tokens: int = 65536, prefill_tokens: int | None = None, candidates=None) -> Generation:
    """Replies to ``prompts`` (lists of ids), all rows in one batch (module doc).
    ``generator``: a ``torch.Generator`` on the model's device, for sampling;
    ``prefill_tokens``: rows x tokens per chunk of the prompt pass (``prefill``;
    None: the device's default); ``candidates``: ``[B, C, R]`` ids, each row's
    replies restricted to its candidates (``constrained``)."""
    from omnigym.policies.lm.constrained import NO_TOKEN, allowed_next, mask_logits
    import torch
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("generate needs at least one prompt, each of at least one token")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    check_request(model, len(prompts), max(len(p) for p in prompts), max_new_tokens, max_batch_tokens)
    device = next(model.parameters()).device
    stop = [s for s in stop if s]
    # A stop string spans at most this many of the latest tokens when it first appears.
    stop_window = max((len(s) for s in stop), default=0) + 4
    ends = eos_ids(model, tokenizer)
    n = len(prompts)
    responses: list[list[int]] = [[] for _ in range(n)]
    logprobs: list[list[float]] = [[] for _ in range(n)]
    entropies: list[list[float]] = [[] for _ in range(n)]
    reasons = ["length"] * n
    rows = list(range(n))                       # the prompt each batch row answers
    with torch.no_grad():
        cache, logits, mask = prefill(model, prompts, tokenizer.pad_token_id, prefill_tokens)
        next_position = mask.sum(-1)
        if candidates is not None:
            candidates = torch.as_tensor(candidates, dtype=torch.long, device=device)
            alive = torch.ones(candidates.shape[:2], dtype=torch.bool, device=device)
        for step in range(max_new_tokens):
            if candidates is not None:
                at = (candidates[..., step] if step < candidates.shape[-1]
                      else torch.full_like(candidates[..., 0], NO_TOKEN))
                logits = mask_logits(logits, allowed_next(at, alive))
            logp = token_logprobs(logits, temperature, top_p)
            if temperature > 0:
                token = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            else:
                token = logp.argmax(dim=-1)
            if candidates is not None:
                alive &= at == token[:, None]
            chosen = logp.gather(1, token[:, None]).squeeze(1).tolist()
            spread = entropy(logp).tolist()
            keep = []
            for j, (row, t) in enumerate(zip(rows, token.tolist())):
                responses[row].append(t)
                logprobs[row].append(chosen[j])
                entropies[row].append(spread[j])
                if t in ends:
                    reasons[row] = "eos"
                elif stop and any(s in tokenizer.decode(responses[row][-stop_window:], skip_special_tokens=True)
                                  for s in stop):
                    reasons[row] = "stop"
                elif step + 1 < max_new_tokens:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(rows):           # finished rows leave the batch and the cache
                index = torch.as_tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, next_position, token = mask[index], next_position[index], token[index]
                if candidates is not None:
                    candidates, alive = candidates[index], alive[index]
                rows = [rows[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            out = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_position[:, None],
                        past_key_values=cache, use_cache=True)
            cache, logits, next_position = out.past_key_values, out.logits[:, -1], next_position + 1
    texts = [response_text(tokenizer, r, stop) for r in responses]
    return Generation(texts=texts, prompt_ids=[list(p) for p in prompts], response_ids=responses,
                      logprobs=[torch.tensor(lp, dtype=torch.float32) for lp in logprobs],
                      entropies=[torch.tensor(e, dtype=torch.float32) for e in entropies],
                      finish_reasons=reasons, temperature=temperature, top_p=top_p)


def sequence_logprobs(model, prompt_ids, prompt_mask, response_ids, response_mask, temperature: float = 0.0,
                      top_p: float = 1.0, with_entropy: bool = False, candidates=None):
    """Teacher-forced log-probs ``[B, R]`` of ``response_ids`` (right-padded)
    after ``prompt_ids`` (left-padded), under the same transform as
    ``generate`` (module doc, and its ``candidates`` mask when given); 0 where
    ``response_mask`` is 0. With ``with_entropy``: ``(log-probs, entropies)``, both ``[B, R]``.
    Differentiable: call it under ``torch.no_grad()`` when no gradient is wanted."""
    import torch
    response_mask = response_mask.long()
    ids = torch.cat([prompt_ids, response_ids], dim=1)
    mask = torch.cat([prompt_mask, response_mask], dim=1)
    width = response_ids.shape[1]
    # The logits at the last prompt position and every response position but the last predict the response.
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions_of(mask),
                   logits_to_keep=width + 1).logits[:, :-1]
    if candidates is not None:
        from omnigym.policies.lm.constrained import mask_reply_logits
        logits = mask_reply_logits(logits, candidates.long(), response_ids)
    all_logp = token_logprobs(logits, temperature, top_p)
    outside = response_mask == 0
    logp = all_logp.gather(-1, response_ids[..., None]).squeeze(-1).masked_fill(outside, 0.0)
    return (logp, entropy(all_logp).masked_fill(outside, 0.0)) if with_entropy else logp


def batch_chunks(lengths: list[int], new_tokens: int, max_batch_tokens: int) -> list[list[int]]:
    """Consecutive rows in batches whose rows x (longest prompt + ``new_tokens``)
    stay within ``max_batch_tokens``; a row that alone exceeds it goes alone."""
    chunks, current, longest = [], [], 0
    for i, n in enumerate(lengths):
        if current and (len(current) + 1) * (max(longest, n) + new_tokens) > max_batch_tokens:
            chunks.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    return chunks + ([current] if current else [])
