"""Options of the LM policy (``--policy lm``, ``LMAgent(**options)``)."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields

DTYPES = ("float32", "bfloat16", "float16")
MODES = ("generate", "score", "admissible")
SCORE_NORMS = ("mean", "sum")


@dataclass
class LMConfig:
    """How the LM policy loads its model, builds prompts and picks actions."""

    model: str | None = None          # a local Hugging Face causal-LM folder; None = SmolLM2-135M-Instruct
    dtype: str = "float32"            # float32 | bfloat16 | float16 (bf16 is ~15x slower on most CPUs)
    device: str = "auto"              # auto (cuda when present, else cpu) | cpu | cuda | cuda:N
    lora: str | None = None           # a LoRA adapter folder (peft) applied on top of the model
    history_turns: int = 4            # past (observation, action) exchanges kept in the prompt
    max_prompt_tokens: int = 2048     # longer prompts lose their oldest messages, the system message stays
    max_new_tokens: int = 64
    temperature: float = 0.0          # 0 = greedy; mode=score: 0 = argmax, >0 = sample softmax(score / T)
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)   # generation ends after any of these strings
    mode: str = "generate"            # generate: the text is the action; score: rank the admissible actions;
                                      # admissible: generate, only the admissible actions' tokens (constrained.py)
    max_candidates: int = 64          # mode=admissible, RLlib token view: admissible actions kept per step
    score_norm: str = "mean"          # mode=score: rank by mean (length-normalised) or sum log-likelihood
    seed: int = 0
    max_batch_tokens: int = 65536     # batch x (prompt + new tokens) per forward pass: the memory guard
    name: str = "lm"                  # the agent's name in reports

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.score_norm not in SCORE_NORMS:
            raise ValueError(f"score_norm must be one of {', '.join(SCORE_NORMS)}, got {self.score_norm!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        for key in ("history_turns", "max_prompt_tokens", "max_new_tokens", "max_batch_tokens"):
            if getattr(self, key) < (0 if key == "history_turns" else 1):
                raise ValueError(f"{key} must be {'0' if key == 'history_turns' else '1'} or more, "
                                 f"got {getattr(self, key)}")
        if isinstance(self.stop, str):   # --policy-kwarg stop='\n' gives one string
            self.stop = [self.stop]

    @classmethod
    def from_options(cls, **options) -> "LMConfig":
        """The config from keyword options; an unknown key names the closest one."""
        known = [f.name for f in fields(cls)]
        for key in options:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"options: {', '.join(known)}"
                raise ValueError(f"the lm policy has no option {key!r}; {hint}")
        return cls(**options)
