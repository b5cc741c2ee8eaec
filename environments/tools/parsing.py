"""Raw model output -> tool calls, a final answer, or an error the model can fix.

Formats understood (see ``parse_model_output``):

* Qwen / Hermes tags: one or more ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  blocks anywhere in the text (the text around them is ignored), plus an
  unterminated last ``<tool_call>`` block (models often stop at EOS before
  writing the closing tag).
* Bare JSON, the whole output (surrounding whitespace or a single ```json
  fenced block allowed): ``{"name": ..., "arguments": {...}}``; OpenAI style
  ``{"type": "function", "function": {"name": ..., "arguments": "<json string>"}}``;
  ``{"tool_calls": [...]}``; or a list of calls.  ``"parameters"`` (Llama 3.1)
  is an alias of ``"arguments"``; string arguments are decoded as JSON.
  Broken JSON that was evidently meant as a call (it starts like an object
  with a string key, ``{"...``, or mentions ``"name"``) is an error, not an
  answer: a truncated call must not end an episode as a garbage answer.
* Anything else that is non-empty text is a plain answer (a leading
  "Final answer:" / "Answer:" is stripped).

Reasoning is not action: complete ``<think>...</think>`` blocks are removed
first, and when the output contains only a closing ``</think>`` (chat
templates that open the thinking block in the prompt) everything before it
is dropped.

The parser is total: for any input (any string, None, bytes, ...) it returns
a ``ParsedOutput`` with exactly one of ``calls`` (non-empty), ``answer`` or
``error`` set, and error messages are short and never echo large inputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_CALLS = 32  # more calls in one turn is a runaway generation, not a plan
MAX_NAME_CHARS = 200
MAX_ERROR_CHARS = 300

_TOOL_CALL_OPEN = re.compile(r"<tool_call>", re.IGNORECASE)
_TOOL_CALL_CLOSE = re.compile(r"</tool_call>", re.IGNORECASE)
_TOOL_CALL_TAG = re.compile(r"<(/?)tool_call>", re.IGNORECASE)
_THINK_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.IGNORECASE | re.DOTALL)
_FENCE_OPEN = re.compile(r"\A```[ \t]*(?:json)?[ \t]*(?:\n|\Z)", re.IGNORECASE)
# broken JSON that starts like an object with a string key is a (truncated) call, not prose
_JSON_OBJECT_START = re.compile(r'\A\[?\s*\{\s*"')
_ANSWER_PREFIX = re.compile(r"\A(?:final[ \t]+answer|answer)[ \t]*:\s*", re.IGNORECASE)
# keys that mark a JSON object as meant to be a tool call
_CALL_KEYS = ("name", "function", "arguments", "parameters", "tool_calls")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict


@dataclass(frozen=True)
class ParsedOutput:
    """Exactly one of: ``calls`` non-empty, ``answer`` set, ``error`` set."""

    calls: tuple = ()
    answer: str | None = None
    error: str | None = None


class _Bad(Exception):
    """A parse error whose message is meant for the model."""


def _error(msg: str) -> ParsedOutput:
    if len(msg) > MAX_ERROR_CHARS:
        msg = msg[:MAX_ERROR_CHARS - 3] + "..."
    return ParsedOutput(error=msg)


def parse_model_output(text, max_chars: int = 20000) -> ParsedOutput:
    """Parse one model output; never raises (see the module docstring)."""
    try:
        return _parse(text, max_chars)
    except _Bad as exc:
        return _error(str(exc))
    except RecursionError:
        return _error("JSON nested too deeply")
    except Exception as exc:  # the contract is "never raises": report, don't crash the env
        return _error(f"could not parse output ({type(exc).__name__})")


def _parse(text, max_chars: int) -> ParsedOutput:
    if not isinstance(text, str):
        return _error(f"output must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        return _error(f"output too long ({len(text)} chars > {max_chars})")
    text = _drop_thinking(text)
    if not text.strip():
        return _error("empty output")
    if _TOOL_CALL_OPEN.search(text):
        return ParsedOutput(calls=_tagged_calls(text))
    if _TOOL_CALL_CLOSE.search(text):
        raise _Bad("found </tool_call> without an opening <tool_call>")
    calls = _bare_json_calls(text.strip())
    if calls is not None:
        return ParsedOutput(calls=calls)
    answer = _ANSWER_PREFIX.sub("", text.strip(), count=1).strip()
    if not answer:
        return _error("empty answer")
    return ParsedOutput(answer=answer)


def _drop_thinking(text: str) -> str:
    # Tags are paired in one linear pass (a regex like <think>.*?</think> is
    # quadratic on a degenerate output that repeats "<think>" thousands of times).
    kept, pos, open_at = [], 0, None
    for m in _THINK_TAG.finditer(text):
        if m.group(1):  # </think>
            if open_at is not None:
                kept.append(text[pos:open_at])  # drop the <think>...</think> block
                open_at = None
            else:
                kept = []  # "<think>" was in the prompt: keep only what follows
            pos = m.end()
        elif open_at is None:
            open_at = m.start()
    if open_at is not None and not ("".join(kept) + text[pos:open_at]).strip():
        # the reasoning never ended (token limit hit while thinking): not an answer
        raise _Bad("unterminated <think> block: close it with </think>, then give a tool call or an answer")
    kept.append(text[pos:])  # (a "<think>" after real content is kept as literal text)
    return "".join(kept)


def _tagged_calls(text: str) -> tuple:
    """Every <tool_call> block, including an unterminated last one."""
    blocks, open_at = [], None
    for m in _TOOL_CALL_TAG.finditer(text):  # linear pairing, as in _drop_thinking
        if m.group(1):  # </tool_call>; a stray one (no open block) is ignored
            if open_at is not None:
                blocks.append(text[open_at:m.start()])
                open_at = None
        elif open_at is None:
            open_at = m.end()
        else:
            raise _Bad(f"tool call {len(blocks) + 1}: <tool_call> inside <tool_call>; "
                       "close each block with </tool_call>")
    if open_at is not None:  # stopped at EOS before </tool_call>
        blocks.append(text[open_at:])
    calls = []
    for i, block in enumerate(blocks, 1):
        where = f"tool call {i}: "
        body = _unfence(block.strip())
        if not body:
            raise _Bad(where + "empty <tool_call> block; put a JSON object with 'name' and 'arguments' inside")
        obj = _loads(body, where)
        items = obj if isinstance(obj, list) else [obj]
        if not items:
            raise _Bad(where + "empty list of calls")
        for item in items:
            calls.append(_to_call(item, where))
            if len(calls) > MAX_CALLS:
                raise _Bad(f"too many tool calls (more than {MAX_CALLS})")
    return tuple(calls)


def _bare_json_calls(text: str):
    """Calls if the whole output is JSON meant as a call; None if it is text."""
    body = _unfence(text)
    if not body or body[0] not in "{[":
        return None
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        if _looks_like_call(body):
            raise _Bad(_json_error(exc)) from None  # an attempted call: say what is wrong
        return None
    except RecursionError:
        if _looks_like_call(body):
            raise
        return None
    if isinstance(obj, dict):
        if not any(k in obj for k in _CALL_KEYS):
            return None  # a JSON object as an answer
        if "tool_calls" in obj:
            items = obj["tool_calls"]
            if not isinstance(items, list) or not items:
                raise _Bad("'tool_calls' must be a non-empty list of calls")
            return _calls_from_list(items)
        return (_to_call(obj, ""),)
    if isinstance(obj, list) and any(isinstance(x, dict) and any(k in x for k in _CALL_KEYS) for x in obj):
        return _calls_from_list(obj)
    return None  # JSON scalars, lists of numbers ...: an answer


def _looks_like_call(body: str) -> bool:
    return bool(_JSON_OBJECT_START.match(body)) or '"name"' in body or '"function"' in body


def _calls_from_list(items: list) -> tuple:
    if len(items) > MAX_CALLS:
        raise _Bad(f"too many tool calls ({len(items)} > {MAX_CALLS})")
    return tuple(_to_call(item, f"tool call {i}: ") for i, item in enumerate(items, 1))


def _to_call(obj, where: str) -> ToolCall:
    if not isinstance(obj, dict):
        raise _Bad(where + f"a tool call must be a JSON object, got {_json_type(obj)}")
    inner = obj
    if isinstance(obj.get("function"), dict):  # OpenAI: {"type": "function", "function": {...}}
        inner = obj["function"]
    name = inner.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Bad(where + "tool call needs a string 'name'")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise _Bad(where + f"tool name too long ({len(name)} chars)")
    if "arguments" in inner:
        args = inner["arguments"]
    else:
        args = inner.get("parameters")  # Llama 3.1 style; absent -> no arguments
    if args is None:
        args = {}
    elif isinstance(args, str):  # OpenAI encodes arguments as a JSON string
        args = _loads(args, where + "'arguments' string: ") if args.strip() else {}
    if not isinstance(args, dict):
        raise _Bad(where + f"'arguments' must be an object, got {_json_type(args)}")
    return ToolCall(name=name, arguments=args)


def _loads(body: str, where: str):
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise _Bad(where + _json_error(exc)) from None


def _json_error(exc: json.JSONDecodeError) -> str:
    return f"invalid JSON at char {exc.pos}: {exc.msg}"


def _unfence(text: str) -> str:
    m = _FENCE.match(text)
    if m:
        return m.group(1).strip()
    m = _FENCE_OPEN.match(text)  # an opening fence only: the model stopped at EOS
    return text[m.end():].strip() if m else text


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)
