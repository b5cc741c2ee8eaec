"""Conversations in, token ids out; response ids in, action text out.

The prompt is the model's own chat template applied to the episode's
messages (``omnigym.conversation``: each step's ``info["turn"]``) and the
family's tool specs (``info["tools"]``), ending with the generation prompt:

- the system message is always kept;
- of the rest, only the last ``history_turns`` exchanges stay (an exchange
  is what the environment said and the assistant's reply to it), plus what
  the environment said since the last reply -- the memory window of
  verl-agent. A window always starts with what the environment said, so
  templates that want a user message after the system message are happy;
- a prompt longer than ``max_prompt_tokens`` drops its oldest exchanges
  first; if the system message and the latest observation alone are still
  too long, tokens are cut from the left of what follows the system
  message (the system message and the generation prompt stay whole).

Prompts are rendered as text, then encoded without added special tokens,
so the ids are exactly the template's (no doubled BOS).
"""
from __future__ import annotations

from dataclasses import dataclass


def pad(rows: list[list[int]], pad_id: int, left: bool, device=None):
    """``(ids, mask)`` long tensors ``[B, max_len]``: rows right-aligned
    (``left`` padding, for prompts that generation continues) or left-aligned."""
    import torch
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, span] = torch.as_tensor(row, dtype=torch.long)
            mask[i, span] = 1
    return ids.to(device), mask.to(device)


def left_pad(rows: list[list[int]], pad_id: int, device=None):
    return pad(rows, pad_id, left=True, device=device)


def right_pad(rows: list[list[int]], pad_id: int, device=None):
    return pad(rows, pad_id, left=False, device=device)


def eos_ids(model, tokenizer) -> set[int]:
    """Every id that ends a reply: the tokenizer's eos and the model's
    generation config's (a list for some models, e.g. Llama 3's <|eot_id|>)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    ids.update(extra if isinstance(extra, (list, tuple)) else [extra] if extra is not None else [])
    return ids


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)


def response_text(tokenizer, ids: list[int], stop: list[str] = (), keep_special: bool = False) -> str:
    """The text of a reply's ids, cut before the first stop string. Special
    tokens are dropped unless ``keep_special`` (tool families: a parser may
    need ``<|python_tag|>`` or ``[TOOL_CALLS]``); the final eos always goes."""
    ids = list(ids)
    if ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    text = tokenizer.decode(ids, skip_special_tokens=not keep_special)
    return cut_at_stop(text, list(stop))[0]


@dataclass
class Prompt:
    ids: list[int]
    messages: list[dict]       # the messages the ids render (after the history window)
    truncated: bool            # tokens were cut from the left to fit max_prompt_tokens


class LMProcessor:
    """Chat-template prompts with a history window (see the module docstring)."""

    def __init__(self, tokenizer, history_turns: int = 4, max_prompt_tokens: int = 2048):
        if tokenizer.chat_template is None:
            raise ValueError("the tokenizer has no chat template; the LM policy builds prompts with it")
        self.tokenizer = tokenizer
        self.history_turns = history_turns
        self.max_prompt_tokens = max_prompt_tokens

    def window(self, messages: list[dict], history_turns: int | None = None) -> list[dict]:
        """The system message(s) and the last ``history_turns`` exchanges."""
        keep = self.history_turns if history_turns is None else history_turns
        system = [m for m in messages if m.get("role") == "system"]
        rest = [m for m in messages if m.get("role") != "system"]
        replies = [i for i, m in enumerate(rest) if m.get("role") == "assistant"]
        if len(replies) > keep:
            # Start right after the reply that precedes the kept ones: with what the env said.
            rest = rest[replies[len(replies) - keep - 1] + 1:]
        return system + rest

    def render(self, messages: list[dict], tools: list[dict] | None = None,
               generation_prompt: bool = True) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                                  add_generation_prompt=generation_prompt)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def prompt(self, messages: list[dict], tools: list[dict] | None = None) -> Prompt:
        """The ids of the prompt that asks for the next reply."""
        replies = sum(m.get("role") == "assistant" for m in messages)
        keep = min(self.history_turns, replies)
        while True:
            window = self.window(messages, keep)
            ids = self.render(window, tools)
            if len(ids) <= self.max_prompt_tokens or keep == 0:
                break
            keep -= 1   # drop the oldest exchange still in the window
        if len(ids) <= self.max_prompt_tokens:
            return Prompt(ids, window, truncated=False)
        return Prompt(self._cut_left(ids, window, tools), window, truncated=True)

    def _cut_left(self, ids: list[int], window: list[dict], tools) -> list[int]:
        system = [m for m in window if m.get("role") == "system"]
        try:
            head = self.render(system, tools, generation_prompt=False) if system else []
        except Exception:   # a template that refuses a lone system message
            head = None
        # The system block's ids begin the full prompt for the templates we know; check, never assume.
        if head is None or ids[:len(head)] != head:
            raise ValueError(f"the prompt takes {len(ids)} tokens, more than max_prompt_tokens="
                             f"{self.max_prompt_tokens}, even without history; raise max_prompt_tokens")
        room = self.max_prompt_tokens - len(head)
        if room < 8:
            raise ValueError(f"the system message alone takes {len(head)} tokens, more than max_prompt_tokens="
                             f"{self.max_prompt_tokens} allows; raise max_prompt_tokens")
        return head + ids[-room:]

    def batch(self, conversations: list[list[dict]], tools: list[list[dict] | None] | None = None) -> list[Prompt]:
        tools = tools or [None] * len(conversations)
        return [self.prompt(m, t) for m, t in zip(conversations, tools)]
