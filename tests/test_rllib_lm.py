"""LM policies on RLlib: text envs as token envs, the LM RLModule's sampled
vs trained log-probs, a TokenPPO iteration on household text with a tiny LM,
checkpoints, and a one-turn task the LM learns."""
from __future__ import annotations


import gymnasium as gym
import numpy as np
import pytest
import torch
from lm_fixtures import ARCHS

from omnigym import conversation
from omnigym import info_keys as K
from omnigym.policies.lm.generation import generate
from omnigym.policies.lm.processor import LMProcessor
from omnigym.policies.lm.token_replies import teacher_forced
from omnigym.registry import make
from omnigym.rllib.env_spec import resolve_env
from omnigym.rllib.token_env import ATTENTION_MASK, INPUT_IDS, TokenTextEnv, lm_tokenizer, token_train_env

HEAT = "household/Heat-v0"
# Short episodes and a penalty for invalid actions: a random LM's replies get rewards that differ by step.
HEAT_KWARGS = {"mode": "text", "max_episode_steps": 3, "invalid_penalty": 0.1}


def lm_node(arch: str = "llama", **options) -> dict:
    """The policy node of a tiny LM: LMConfig options + the tiny model."""
    config = {"max_prompt_tokens": 768, "max_new_tokens": 16, "history_turns": 1, "temperature": 1.0, **options}
    return {"name": "lm", "config": config, "tiny": {"arch": arch}}


def token_env(env_id: str = HEAT, stop=(), prompt_tokens: int = 2048, response_tokens: int = 24,
              **kwargs) -> TokenTextEnv:
    tokenizer, vocab = lm_tokenizer({}, {"arch": "llama"})
    return TokenTextEnv(make(env_id, **kwargs), tokenizer, prompt_tokens=prompt_tokens, response_tokens=response_tokens,
                        history_turns=1, stop=stop, vocab_size=vocab)


def reply_ids(env: TokenTextEnv, text: str) -> np.ndarray:
    """A reply as the module writes it: its ids, the eos, then pad ids."""
    ids = env.tokenizer.encode(text, add_special_tokens=False) + [env.tokenizer.eos_token_id]
    assert len(ids) <= env.response_tokens
    return np.array(ids + [env.pad_id] * (env.response_tokens - len(ids)), dtype=np.int64)


def prompt_of(obs: dict) -> list[int]:
    return obs[INPUT_IDS][obs[ATTENTION_MASK] == 1].tolist()


# --- the token view --------------------------------------------------------------------------

def test_token_view_round_trip_ids_text_env_action():
    env = token_env(**HEAT_KWARGS)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    # Left-padded: the prompt (the env's reset turn through the chat template) ends every row.
    processor = LMProcessor(env.tokenizer, history_turns=1, max_prompt_tokens=2048)
    ids = processor.prompt(info[K.TURN]).ids
    assert obs[INPUT_IDS][-len(ids):].tolist() == ids and obs[ATTENTION_MASK].sum() == len(ids)
    assert (obs[INPUT_IDS][:-len(ids)] == env.pad_id).all()
    # ids -> text -> the env's action: the env reads the reply and acts on it.
    action = reply_ids(env, "[walk] <kitchen>")
    assert env.action_space.contains(action)
    assert env.decode(action) == "[walk] <kitchen>"
    obs, _, _, _, info = env.step(action)
    assert info[K.TURN][0] == conversation.assistant("[walk] <kitchen>")
    assert not info[K.INVALID_ACTION] and "You are in the kitchen" in info[K.TURN][-1]["content"]
    # The next prompt holds the whole exchange (history window of one turn).
    text = env.tokenizer.decode(prompt_of(obs))
    assert "<|im_start|>assistant\n[walk] <kitchen><|im_end|>" in text
    assert "You are in the bathroom" in text and "You are in the kitchen" in text
    # The reply ends at the first eos or pad id, and before a stop string.
    tokens = env.tokenizer.encode("[grab] <apple>", add_special_tokens=False)
    assert env.decode(np.array(tokens + [env.pad_id] + tokens)) == "[grab] <apple>"
    stopping = token_env(stop=["\n"], **HEAT_KWARGS)
    stopping.reset(seed=3)
    assert stopping.decode(reply_ids(stopping, "[grab] <apple>\nthen more")) == "[grab] <apple>"


def test_token_view_of_a_tool_env_keeps_the_tools_and_the_raw_call():
    env = token_env("tools/Arithmetic-v0", prompt_tokens=4096, response_tokens=64)   # a long system message
    obs, info = env.reset(seed=0)
    assert "Tools: calculator" in env.tokenizer.decode(prompt_of(obs))   # the tiny template lists them
    call = '<tool_call>{"name": "calculator", "arguments": {"expression": "2+2"}}</tool_call>'
    obs, _, _, _, info = env.step(reply_ids(env, call))
    assert info[K.TURN][0]["tool_calls"][0]["function"]["name"] == "calculator"
    assert info[K.TURN][1] == conversation.tool("calculator", "4")


def test_token_view_maps_replies_to_indices_refuses_vectors_and_bad_models_and_lm_policy_needs_it():
    from omnigym.rllib.policies import lm_policy
    env = token_env(mode="discrete")
    _, info = env.reset(seed=1)
    admissible = info[K.ADMISSIBLE_ACTIONS]
    _, _, _, _, info = env.step(reply_ids(env, admissible[1]))
    assert not info[K.INVALID_ACTION]                                  # the reply named an admissible action
    _, _, _, _, info = env.step(reply_ids(env, "[fly] <moon> (1)"))
    assert info[K.INVALID_ACTION]
    with pytest.raises(ValueError, match="text mode"):
        token_env(mode="vector")
    vector = resolve_env(HEAT, {"mode": "vector"})
    with pytest.raises(ValueError, match="env.kwargs.mode=text or discrete"):
        token_train_env(vector, lm_node())
    with pytest.raises(ValueError, match="token_train_env"):
        lm_policy(lm_node(), resolve_env(HEAT, {"mode": "text"}))
    with pytest.raises(ValueError, match="does not exist"):
        token_train_env(resolve_env(HEAT, {"mode": "text"}), {"config": {"model": "/nonexistent/lm"}})


# --- the module ----------------------------------------------------------------------------------

def build_module(env, node):
    from omnigym.rllib.policies import lm_policy
    return lm_policy(node, env)["rl_module_spec"].build()


def household_batch(train_env, seeds=(0, 1, 2), steps=(0, 1, 2)) -> dict:
    """Observations of prompts of different lengths (envs some steps into their episodes)."""
    from ray.rllib.core.columns import Columns
    from omnigym.rllib.envs import make_env
    observations = []
    for seed, n in zip(seeds, steps):
        env = make_env(train_env)
        obs, _ = env.reset(seed=seed)
        for _ in range(n):
            obs = env.step(reply_ids(env, "[walk] <kitchen>"))[0]
        observations.append(obs)
    return {Columns.OBS: {k: torch.as_tensor(np.stack([o[k] for o in observations])) for k in observations[0]}}


@pytest.mark.parametrize("arch", ARCHS)
def test_sampled_token_logprobs_equal_the_train_pass(arch):
    from ray.rllib.core.columns import Columns
    from omnigym.rllib.lm_module import TOKEN_ENTROPY, TOKEN_LOGP, TOKEN_MASK
    node = lm_node(arch, temperature=0.8, top_p=0.9, history_turns=2)
    env = token_train_env(resolve_env(HEAT, HEAT_KWARGS), node)
    module = build_module(env, node)
    batch = household_batch(env)
    assert len({int(m.sum()) for m in batch[Columns.OBS][ATTENTION_MASK]}) == 3     # padding differs per row
    torch.manual_seed(0)
    out = module.forward_exploration(batch)
    actions, mask = out[Columns.ACTIONS], out[TOKEN_MASK]
    assert actions.shape == (3, 16) and env.action_space.contains(actions[0].numpy())
    assert torch.allclose(out[Columns.ACTION_LOGP], out[TOKEN_LOGP].sum(-1))
    train = module.forward_train({**batch, Columns.ACTIONS: actions, TOKEN_MASK: mask})
    assert torch.equal(train[TOKEN_MASK], mask)
    assert (train[TOKEN_LOGP] - out[TOKEN_LOGP]).abs().max().item() <= 1e-4
    assert train[TOKEN_LOGP].requires_grad and (train[TOKEN_ENTROPY][mask] > 0).all()
    # Without a stored mask the reply is read as the env reads it (through the first eos or pad).
    derived = module.forward_train({**batch, Columns.ACTIONS: actions})
    assert torch.equal(derived[TOKEN_MASK], mask)
    # Greedy inference is the batched generator's greedy reply, deterministic.
    greedy = module.forward_inference(batch)[Columns.ACTIONS]
    assert torch.equal(greedy, module.forward_inference(batch)[Columns.ACTIONS])
    first = {k: v[0].numpy() for k, v in batch[Columns.OBS].items()}
    alone = generate(module.lm, module.tokenizer, [prompt_of(first)], max_new_tokens=16)
    assert greedy[0, :len(alone.response_ids[0])].tolist() == alone.response_ids[0]


def test_lora_module_trains_only_its_adapters_and_agrees_with_sampling():
    from ray.rllib.core.columns import Columns
    from omnigym.rllib.lm_module import TOKEN_LOGP, TOKEN_MASK
    node = {**lm_node("qwen2"), "lora": {"r": 4, "alpha": 8, "dropout": 0.1}}
    env = token_train_env(resolve_env(HEAT, HEAT_KWARGS), node)
    module = build_module(env, node)
    trainable = [name for name, p in module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    with torch.no_grad():   # adapters that change the outputs (fresh ones are zero)
        for name, p in module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    batch = household_batch(env, seeds=(0, 1), steps=(0, 1))
    out = module.forward_exploration(batch)
    inputs = {**batch, Columns.ACTIONS: out[Columns.ACTIONS], TOKEN_MASK: out[TOKEN_MASK]}
    train = module.forward_train(inputs)
    # Adapter dropout stays off in training: the two passes are one function ...
    assert (train[TOKEN_LOGP] - out[TOKEN_LOGP]).abs().max().item() <= 1e-4
    # ... where it would otherwise change the log-probs.
    module.lm.train()
    obs = batch[Columns.OBS]
    dropped, _ = teacher_forced(module.lm, obs, out[Columns.ACTIONS], out[TOKEN_MASK],
                                temperature=module.lm_config.temperature)
    assert (dropped - out[TOKEN_LOGP]).abs().max().item() > 1e-3


def test_module_as_agent_builds_the_prompts_of_the_token_view():
    from ray.rllib.core.columns import Columns
    from omnigym.rllib.envs import make_env
    node = lm_node()
    env = token_train_env(resolve_env(HEAT, HEAT_KWARGS), node)
    module = build_module(env, node)
    view = make_env(env)
    obs, info = view.reset(seed=5)
    agent = module.as_agent()
    agent.reset(env=view.env, seed=5)
    text = agent.act(None, info)
    assert agent.last.prompts[0].ids == prompt_of(obs)
    reply = module.forward_inference({Columns.OBS: {k: torch.as_tensor(v)[None] for k, v in obs.items()}})
    assert view.decode(reply[Columns.ACTIONS][0].numpy()) == text


# --- RLlib ----------------------------------------------------------------------------------------

def token_ppo(env, node, sub_envs: int, **training):
    from omnigym.rllib import envs
    from omnigym.rllib.lm_algorithm import TokenPPOConfig
    from omnigym.rllib.policies import lm_policy
    return (TokenPPOConfig()
            .environment(envs.register(env, sub_envs), observation_space=env.observation_space,
                         action_space=env.action_space)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=sub_envs)
            .learners(num_learners=0)
            .debugging(seed=0)
            .training(**training)
            .rl_module(**lm_policy(node, env)))


def weights(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_one_token_ppo_iteration_on_household_text_and_checkpoints(ray_session, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.core.rl_module.rl_module import RLModule
    from omnigym.rllib.inference import find_module_dir, trained_module
    node = lm_node()
    env = token_train_env(resolve_env(HEAT, HEAT_KWARGS), node)
    algo = token_ppo(env, node, sub_envs=4, lr=1e-3, episodes_per_iteration=4).build_algo()
    try:
        before = weights(trained_module(algo))
        result = algo.train()
        learned = result["learners"]["default_policy"]
        assert result["env_runners"]["num_episodes"] >= 4
        assert learned["num_module_steps_trained"] == result["env_runners"]["num_env_steps_sampled"] == 12
        assert np.isfinite(learned["total_loss"]) and learned["reply_tokens_mean"] > 0
        # One epoch, one minibatch, the weights that sampled: every ratio is 1 (to float precision).
        assert abs(learned["approx_kl"]) < 1e-6 and learned["clip_fraction"] == 0.0
        after = trained_module(algo)
        assert any(not torch.equal(before[k], v) for k, v in weights(after).items())
        runner = algo.env_runner_group.local_env_runner.module
        assert all(torch.equal(v, runner.state_dict()[k]) for k, v in weights(after).items())   # synced
        # The algorithm's checkpoint holds the module: restored alone, it replies alike.
        algo.save_to_path(str(tmp_path))
        restored = RLModule.from_checkpoint(str(find_module_dir(tmp_path)))
        assert all(torch.equal(v, restored.state_dict()[k]) for k, v in weights(after).items())
        batch = household_batch(env, seeds=(7, 8), steps=(0, 1))
        from ray.rllib.core.columns import Columns
        assert torch.equal(restored.forward_inference(batch)[Columns.ACTIONS],
                           after.forward_inference(batch)[Columns.ACTIONS])
    finally:
        algo.stop()
    # The whole algorithm resumes and trains on.
    resumed = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert resumed.iteration == 1
        assert all(torch.equal(v, trained_module(resumed).state_dict()[k]) for k, v in weights(after).items())
        assert np.isfinite(resumed.train()["learners"]["default_policy"]["total_loss"])
    finally:
        resumed.stop()


class SayA(gym.Env):
    """One turn: reward 1 when the reply holds the letter a (about a third of a random LM's replies do)."""

    def __init__(self):
        from omnigym.text import text_space
        self.observation_space, self.action_space = text_space(256), text_space(256)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "Say a word.", {K.TURN: [conversation.system("Answer."), conversation.user("Say a word.")]}

    def step(self, action):
        success = "a" in action
        return "ok", float(success), True, False, {K.TURN: [conversation.assistant(action), conversation.user("ok")],
                                                   K.SUCCESS: success}


def test_token_ppo_teaches_the_lm_a_one_turn_task(ray_session):
    gym.register("omnigym-test/SayA-v0", entry_point=SayA)
    node = lm_node("gpt2", max_prompt_tokens=32, max_new_tokens=4)
    env = token_train_env(resolve_env("omnigym-test/SayA-v0"), node)
    algo = token_ppo(env, node, sub_envs=16, lr=3e-3, episodes_per_iteration=32, num_epochs=2,
                     minibatch_size=16).build_algo()
    try:
        returns = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(24)]
    finally:
        algo.stop()
    assert np.mean(returns[:3]) < 0.6 and np.mean(returns[-3:]) > 0.9, returns


def test_omnigym_train_runs_token_ppo_with_an_lm_and_the_run_evaluates_as_a_text_agent(tmp_path):
    """The whole path a user types: `omnigym train algo=token_ppo policy=lm`, then `omnigym eval --policy RUN`."""
    import json
    import os
    import subprocess
    import sys
    run = tmp_path / "run"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    overrides = ["algo=token_ppo", "policy=lm", "policy.tiny={arch:llama}", "policy.config.temperature=1.0",
                 "policy.config.max_prompt_tokens=768", "policy.config.max_new_tokens=16",
                 "policy.config.history_turns=1", "env=household", f"env.id={HEAT}",
                 "+env.kwargs.max_episode_steps=3", "resources.num_envs_per_env_runner=2",
                 "algo.training.episodes_per_iteration=2", "iterations=1", "evaluation.episodes=2",
                 "evaluation.baselines=[]", "progress=false", f"out_dir={run}"]
    train = subprocess.run([sys.executable, "-m", "omnigym.cli", "train", *overrides], capture_output=True,
                           text=True, timeout=600, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    assert json.loads((run / "report" / "summary.json").read_text())["sections"][0]["policy"] == "token_ppo"
    out = tmp_path / "eval"
    evaluate = subprocess.run([sys.executable, "-m", "omnigym.cli", "eval", HEAT, "--policy", str(run),
                               "--panel", "0..1", "--out", str(out), "--no-record"],
                              capture_output=True, text=True, timeout=600, env=env)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [s["policy"] for s in summary["sections"]] == ["token_ppo"]
    assert summary["sections"][0]["summary"]["episodes"] == 2
