"""Prompts shared by the LM tests (the tiny models themselves come from
``omnigym.policies.lm.model.tiny_lm``)."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # nothing is fetched: every model is built in-process

ARCHS = ("llama", "qwen2", "gpt2")


def chat(user_text: str, system_text: str = "You act in a home, one action per turn.") -> list[dict]:
    return [{"role": "system", "content": system_text}, {"role": "user", "content": user_text}]


def prompts_of_different_lengths(processor) -> list[list[int]]:
    """Three chat prompts whose lengths differ, so a batch of them is padded."""
    texts = ["Task: open the fridge.",
             "Task: heat the apple in the microwave.\nYou are in the kitchen, standing.",
             "Task: put the mug in the sink.\nYou see: <fridge> (7) (open); <microwave> (8) (closed, off); "
             "<sink> (11); <mug> (40) on <kitchentable> (12).\nRooms: <kitchen> (2), <bedroom> (4)."]
    return [p.ids for p in processor.batch([chat(t) for t in texts])]
