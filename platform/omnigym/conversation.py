"""One conversation convention for every text family.

Each step of a text env returns the *new* observation text, and
``info["turn"]`` holds the messages that step added to the conversation, as
``{"role", "content"}`` dicts in the chat-template format:

- on ``reset``: a ``system`` message (how to act, with the instruction) and
  the first ``user`` message (the first observation);
- on ``step``: the ``assistant`` message (the action as text; parsed
  ``tool_calls`` where the family has tools), then what the environment said
  back: ``tool`` results (``name``, ``content``) and/or a ``user`` message.

Families with tools also put their OpenAI-style specs in ``info["tools"]`` on
reset (they are constant for the episode, so recording them once keeps
episodes linear in length). The whole chat is never stored: ``chat(episode)``
builds it from the turns, for any family, and so does every consumer
(``export_chat_jsonl``, SFT, LM agents) -- one code path.

Text envs that do not emit turns still work: their turns are derived from the
observations and actions (``user`` = observation, ``assistant`` = action).
"""
from __future__ import annotations

from omnigym.info_keys import TOOLS, TURN  # noqa: F401  (re-exported: the keys this module fills)


def system(content: str) -> dict:
    return {"role": "system", "content": content}


def user(content: str) -> dict:
    return {"role": "user", "content": content}


def assistant(content: str, tool_calls: list[dict] | None = None) -> dict:
    msg = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = [{"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                             for c in tool_calls]
    return msg


def tool(name: str, content: str) -> dict:
    return {"role": "tool", "name": name, "content": content}


def action_text(action) -> str:
    """An action as the assistant's words (bytes decoded; anything else repr'd)."""
    if isinstance(action, (bytes, bytearray)):
        return bytes(action).decode("utf-8", "replace")
    return action if isinstance(action, str) else repr(action)


def turns(observations: list, actions: list, infos: list) -> list[list[dict]]:
    """The turn of every step (index 0 = reset), from ``info["turn"]`` or,
    where an env emits none, from the observation and the action."""
    out = []
    for t, info in enumerate(infos):
        turn = (info or {}).get(TURN)
        if isinstance(turn, list):
            out.append(turn)
        elif t == 0:
            out.append([user(observations[0])] if isinstance(observations[0], str) else [])
        else:
            obs = observations[t]
            out.append([assistant(action_text(actions[t - 1]))] + ([user(obs)] if isinstance(obs, str) else []))
    return out


def chat(episode, system_prompt: str | None = None, keep_last_observation: bool = False) -> dict:
    """``{"messages": [...], "tools": [...]}`` for one episode: every turn in
    order. ``system_prompt`` replaces the env's system message (or adds one).
    What follows the last assistant message is dropped unless
    ``keep_last_observation`` (no reply follows it, so nothing learns from it)."""
    messages = [m for turn in turns(episode.observations, episode.actions, episode.infos) for m in turn]
    if system_prompt is not None:
        messages = [system(system_prompt)] + [m for m in messages if m.get("role") != "system"]
    if not keep_last_observation and episode.actions:
        last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
        messages = messages[:last + 1]
    tools = (episode.infos[0] or {}).get(TOOLS) if episode.infos else None
    return {"messages": messages, "tools": list(tools or [])}

