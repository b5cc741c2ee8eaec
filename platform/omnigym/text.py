"""Text observations and actions: one charset and one way to fit text into it.

Every text family uses ``text_space`` for its ``gymnasium.spaces.Text`` and
``fit_text`` for what it emits, so observations always lie in the space
(``check_env`` and RLlib's space checks hold) whatever a command printed or
a scene file contained.
"""
from __future__ import annotations

import re
import string

import gymnasium as gym

TEXT_CHARSET = string.printable
_OUTSIDE = re.compile(f"[^{re.escape(TEXT_CHARSET)}]")


def text_space(max_length: int) -> gym.spaces.Text:
    return gym.spaces.Text(max_length, min_length=0, charset=TEXT_CHARSET)


def fit_text(text: str, max_length: int) -> str:
    """Characters outside the charset become '?'; then cut to ``max_length``."""
    return _OUTSIDE.sub("?", text)[:max_length]
