"""``LMRLModule``: a causal LM (``omnigym.policies.lm``) as an RLlib RLModule.

It acts in a text env through the env's token view (``TokenTextEnv``):
observations are left-padded prompt ids ``{"input_ids", "attention_mask"}``
of length L, actions are K reply ids padded with the pad id.

- ``_forward_exploration`` runs the batched generator (one KV cache over all
  sub-envs of the runner) at the config's ``temperature`` / ``top_p`` and
  returns ``actions`` [B, K], ``action_logp`` [B] (the reply's log-prob) and,
  per token, ``token_logp`` and ``token_mask`` [B, K]: RLlib stores every
  extra output in the episode, so the learner gets the sampled log-probs of
  exactly the ids that were sampled.
- ``_forward_inference``: the same, greedy.
- ``_forward_train``: one teacher-forced pass over prompt + reply under the
  same logit transform (``token_logprobs``) as sampling: ``token_logp``,
  ``token_mask``, ``token_entropy`` [N, K]. On the weights that sampled, the
  new log-probs equal the stored ones (ratio 1 at the first minibatch).

Dropout stays off in training too (``train()`` keeps the LM in eval mode):
RLlib samples in eval mode and trains in train mode, and HF dropout would
make the two log-probs of one reply differ before any update.

``model_config``: ``lm`` (``LMConfig`` options: model, dtype, lora,
temperature, top_p, stop, max_batch_tokens...), ``tiny`` (``tiny_lm``
keyword arguments: a random test model instead of ``lm["model"]``),
``train_lora`` (``add_lora`` options: r, alpha, dropout, targets; r > 0
trains fresh adapters only) and ``torch_threads``. The LM is loaded on the CPU; RLlib moves the module to
the learner's (or runner's) device.
"""
from __future__ import annotations

import dataclasses

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule

from omnigym.policies.lm.config import LMConfig
from omnigym.policies.lm.generation import check_request
from omnigym.policies.lm.token_replies import end_ids_of, reply_mask, teacher_forced, token_replies

TOKEN_LOGP = "token_logp"        # [B, K] float: log-prob of each reply id under the sampling transform
TOKEN_MASK = "token_mask"        # [B, K] bool: the reply's ids (through its eos), not the padding after it
TOKEN_ENTROPY = "token_entropy"  # [B, K] float: entropy of the distribution each id was drawn from


def build_lm(lm: dict, tiny: dict | None = None, train_lora: dict | None = None):
    """``(model, tokenizer, config)`` on the CPU, in eval mode; with
    ``train_lora`` (``add_lora`` options, ``r`` > 0) fresh LoRA adapters
    are added and only they train."""
    from omnigym.policies.lm.model import add_lora, load_lm, tiny_lm
    config = LMConfig.from_options(**{**lm, "device": "cpu"})
    if tiny is not None:
        model, tokenizer = tiny_lm(**tiny)
    else:
        model, tokenizer = load_lm(config)
    if train_lora and int(train_lora.get("r") or 0) > 0:
        model = add_lora(model, **train_lora)
    return model.eval(), tokenizer, config


class LMRLModule(TorchRLModule):
    """A causal LM over token observations and actions (module docstring)."""

    def setup(self):
        config = dict(self.model_config or {})
        if config.get("torch_threads"):
            torch.set_num_threads(int(config["torch_threads"]))
        self.lm, self.tokenizer, self.lm_config = build_lm(dict(config.get("lm") or {}), config.get("tiny"),
                                                           config.get("train_lora"))
        self.prompt_tokens = int(self.observation_space["input_ids"].shape[0])
        self.response_tokens = int(self.action_space.shape[0])
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.end_ids = end_ids_of(self.tokenizer)   # as TokenTextEnv reads
        vocab = int(self.lm.get_input_embeddings().num_embeddings)
        if int(self.action_space.nvec.max()) > vocab:
            raise ValueError(f"the action space holds ids up to {int(self.action_space.nvec.max()) - 1}, "
                             f"but the LM has {vocab}; build the env's token view from the same LM options")
        check_request(self.lm, 1, self.prompt_tokens, self.response_tokens, self.lm_config.max_batch_tokens)

    def train(self, mode: bool = True):
        super().train(mode)
        self.lm.eval()   # dropout off: sampled and trained log-probs are of one function (module docstring)
        return self

    # --- acting ------------------------------------------------------------------------------

    def _forward_exploration(self, batch, **kwargs):
        return self._reply(batch, self.lm_config.temperature, self.lm_config.top_p)

    def _forward_inference(self, batch, **kwargs):
        return self._reply(batch, 0.0, 1.0)

    def _reply(self, batch, temperature: float, top_p: float) -> dict:
        """One batched generation; sampling draws from the global torch RNG,
        which RLlib seeds per env runner (``config.debugging(seed=...)``)."""
        cfg = self.lm_config
        out = token_replies(self.lm, self.tokenizer, batch[Columns.OBS], self.response_tokens,
                            temperature=temperature, top_p=top_p, stop=cfg.stop, max_batch_tokens=cfg.max_batch_tokens)
        return {Columns.ACTIONS: out["actions"], Columns.ACTION_LOGP: out["token_logp"].sum(-1),
                TOKEN_LOGP: out["token_logp"], TOKEN_MASK: out["token_mask"], TOKEN_ENTROPY: out["token_entropy"]}

    # --- training ----------------------------------------------------------------------------

    def _forward_train(self, batch, **kwargs):
        actions = batch[Columns.ACTIONS].long()
        # The mask stored at sampling is exact (a reply cut by a stop string ends without an end id).
        token_mask = batch[TOKEN_MASK].bool() if TOKEN_MASK in batch else reply_mask(actions, self.end_ids)
        cfg = self.lm_config
        logp, spread = teacher_forced(self.lm, batch[Columns.OBS], actions, token_mask, temperature=cfg.temperature,
                                      top_p=cfg.top_p)
        return {TOKEN_LOGP: logp, TOKEN_MASK: token_mask, TOKEN_ENTROPY: spread}

    # --- evaluation ----------------------------------------------------------------------------

    def as_agent(self, **options):
        """An ``LMAgent`` on this module's LM and tokenizer, for the core
        evaluation harness on the plain text env (greedy unless ``options``
        say otherwise); it builds the same prompts as the token view."""
        from omnigym.policies.lm.agent import LMAgent
        # The model is this module's (its LoRA adapter, if any, already applied).
        merged = {**dataclasses.asdict(self.lm_config), "lora": None, "temperature": 0.0, **options}
        merged.pop("model")
        return LMAgent(model=self.lm, tokenizer=self.tokenizer, **merged)

