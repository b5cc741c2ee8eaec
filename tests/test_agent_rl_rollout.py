"""Group rollouts without RLlib: snapshots of token views restore exact
states on every family with snapshots, AEPO branching forks paths into the
group's spare slots, and every slot ends with one trajectory."""
from __future__ import annotations

import numpy as np
import pytest

from omnigym import info_keys as K
from omnigym.policies.agent_rl.rollout import Branching, group_rollouts
from omnigym.policies.lm.model import tiny_lm
from omnigym.registry import make
from omnigym.rllib.token_env import TokenTextEnv, lm_tokenizer

FAMILIES = [("household/PutIn-v0", {"mode": "text"}, None),
            ("shell/FreeForm-v0", {}, ["ls", "pwd", "ls -R"]),
            ("tools/Arithmetic-v0", {}, ["I will compute it.", "The answer is 3.", "Let me think."]),
            # The snapshot holds a Python sandbox that the restoring env never started.
            ("tools/Data-v0", {}, ['<tool_call>{"name": "python", "arguments": {"code": "x = 41"}}</tool_call>',
                                   '<tool_call>{"name": "python", "arguments": {"code": "x += 1"}}</tool_call>',
                                   '<tool_call>{"name": "python", "arguments": {"code": "print(x)"}}</tool_call>'])]


def view(env_id, kwargs, candidates=0, prompt_tokens=4096):
    tokenizer, vocab = lm_tokenizer({}, {"arch": "llama"})
    return TokenTextEnv(make(env_id, **kwargs), tokenizer, prompt_tokens=prompt_tokens, response_tokens=96,
                        history_turns=1, vocab_size=vocab, candidates=candidates)


def action_of(env, info, t, texts):
    text = info[K.ADMISSIBLE_ACTIONS][t % len(info[K.ADMISSIBLE_ACTIONS])] if texts is None else texts[t % len(texts)]
    ids = env.tokenizer.encode(text, add_special_tokens=False) + [env.tokenizer.eos_token_id]
    return np.array(ids + [env.pad_id] * (env.response_tokens - len(ids)))


@pytest.mark.parametrize("env_id,kwargs,texts", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_a_snapshot_restores_the_exact_state_in_another_env(env_id, kwargs, texts):
    first, second = view(env_id, kwargs), view(env_id, kwargs)
    obs, info = first.reset(seed=4)
    for t in range(2):
        obs, _, _, _, info = first.step(action_of(first, info, t, texts))
    snapshot = first.get_state()
    second.reset(seed=11)                                   # another episode entirely, then the snapshot
    restored = second.set_state(snapshot)
    assert all(np.array_equal(restored[k], obs[k]) for k in obs)
    assert second.env.unwrapped.state_key() == first.env.unwrapped.state_key() == info[K.STATE_KEY]
    # From there both envs go on alike.
    action = action_of(first, info, 2, texts)
    a, b = first.step(action), second.step(action)
    assert all(np.array_equal(a[0][k], b[0][k]) for k in a[0]) and a[1:4] == b[1:4]
    assert a[4][K.STATE_KEY] == b[4][K.STATE_KEY]


def test_branching_forks_paths_into_spare_slots_and_keeps_groups_whole():
    model, tokenizer = tiny_lm("llama", seed=0)
    envs = [view("household/PutIn-v0", {"mode": "text", "max_episode_steps": 5}, candidates=64, prompt_tokens=768)
            for _ in range(8)]
    starts = [(0, 3), (1, 4)]
    trajectories = group_rollouts(model, tokenizer, envs, starts, group_size=4, temperature=1.0,
                                  branching=Branching(initial=1, threshold=0.0), rng=np.random.default_rng(0))
    assert len(trajectories) == 8
    assert sorted(t.group for t in trajectories) == [0] * 4 + [1] * 4
    children = [t for t in trajectories if t.parent is not None]
    assert children   # threshold 0: every path with budget left branches
    by_slot = dict(enumerate(trajectories))
    for child in children:
        parent = by_slot[child.parent]
        assert child.group == parent.group and child.shared >= 1
        # The copied prefix is the parent's: the same replies from the same states.
        for i in range(child.shared):
            assert np.array_equal(child.actions[i], parent.actions[i])
            assert child.infos[i][K.STATE_KEY] == parent.infos[i][K.STATE_KEY]
        # The branch then acted from the state the parent was in before its reply at the fork.
        assert child.infos[child.shared][K.STATE_KEY] == parent.infos[child.shared][K.STATE_KEY]
    for t in trajectories:
        assert t.done and len(t.actions) <= 5
