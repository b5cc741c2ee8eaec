"""Generation restricted to the admissible actions (``mode=admissible``):
every reply is one of the candidates, the teacher-forced log-probs under the
same mask equal the sampled ones, and the token view carries the candidates."""
from __future__ import annotations

import numpy as np
import torch

from omnigym import info_keys as K
from omnigym.policies.lm.constrained import NO_TOKEN, candidate_table
from omnigym.policies.lm.generation import generate, sequence_logprobs
from omnigym.policies.lm.model import tiny_lm
from omnigym.registry import make
from omnigym.rllib.token_env import CANDIDATES, TokenTextEnv, lm_tokenizer


def test_candidate_table_pads_appends_eos_and_drops_what_cannot_fit():
    table, kept = candidate_table([[5, 6], [7, 8, 9, 10], [11]], count=3, width=4, eos_id=2)
    assert kept == 2   # [7, 8, 9, 10] + eos needs 5 positions
    assert table.tolist() == [[5, 6, 2, NO_TOKEN], [11, 2, NO_TOKEN, NO_TOKEN], [NO_TOKEN] * 4]


def test_replies_are_candidates_and_teacher_forcing_reproduces_their_logprobs():
    model, tokenizer = tiny_lm("llama", seed=1)
    actions = ["[walk] <kitchen> (2)", "[walk] <bedroom> (4)", "[grab] <mug> (12)", "[open] <fridge> (9)"]
    ids = [tokenizer.encode(a, add_special_tokens=False) for a in actions]
    width = max(len(i) for i in ids) + 3
    table, _ = candidate_table(ids, count=6, width=width, eos_id=tokenizer.eos_token_id)
    prompts = [tokenizer.encode(f"task {i}: what next?", add_special_tokens=False) for i in range(24)]
    tables = np.stack([table] * len(prompts))
    torch.manual_seed(0)
    out = generate(model, tokenizer, prompts, max_new_tokens=width, temperature=1.0, candidates=tables)
    assert all(text in actions for text in out.texts)
    assert len(set(out.texts)) > 1            # sampling, not a fixed choice
    assert all(reason == "eos" for reason in out.finish_reasons)
    padded = out.padded(tokenizer.pad_token_id)
    with torch.no_grad():
        forced = sequence_logprobs(model, padded["prompt_ids"], padded["prompt_mask"], padded["response_ids"],
                                   padded["response_mask"], temperature=1.0,
                                   candidates=torch.as_tensor(tables)[:, :, :padded["response_ids"].shape[1]])
        free = sequence_logprobs(model, padded["prompt_ids"], padded["prompt_mask"], padded["response_ids"],
                                 padded["response_mask"], temperature=1.0)
    assert torch.allclose(forced, padded["logprobs"], atol=1e-5)
    # The mask moves mass: without it the same ids are less likely.
    assert (free.sum(-1) < forced.sum(-1) - 1e-3).all()
    # A shared first token ("[walk]" ...) is a choice among fewer tokens than the vocabulary.
    assert (forced <= 0).all()


def test_token_view_lists_the_admissible_actions_as_candidates():
    tokenizer, vocab = lm_tokenizer({}, {"arch": "llama"})
    env = TokenTextEnv(make("household/Hold-v0", mode="text"), tokenizer, prompt_tokens=1024, response_tokens=40,
                       history_turns=1, vocab_size=vocab, candidates=64)
    obs, info = env.reset(seed=2)
    assert env.observation_space.contains(obs)
    table = obs[CANDIDATES]
    rows = [row[row >= 0].tolist() for row in table if row[0] >= 0]
    admissible = info[K.ADMISSIBLE_ACTIONS]
    assert len(rows) == len(admissible)
    assert [env.decode(np.array(r)) for r in rows] == admissible
