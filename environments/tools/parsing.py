"""Raw model output -> tool calls, a final answer, or an error the model can fix.

Any open model may drive the tools family, and each family writes tool calls
in its own native format, so ``parse_model_output`` reads all of them (one
reader per format in ``call_formats``):

* Qwen2.5/Qwen3, Hermes, SmolLM3, QwQ: ``<tool_call>{"name": ..., "arguments":
  {...}}</tool_call>`` blocks anywhere in the text, Python-dict quoting
  inside the tags (``{'name': 'x', 'arguments': {'k': True}}``), several
  objects in one block, an unterminated last block (stopped at EOS);
* Qwen3-Coder: ``<tool_call><function=NAME><parameter=K>V</parameter>
  </function></tool_call>`` (tags optional): values are typed by the tool's
  JSON schema when ``tools`` are given, else read as JSON when they are JSON;
* Llama 3.1 custom tools / Functionary: ``<function=NAME>{...}</function>``
  (and ``<function name="NAME">``);
* Llama 3.x: JSON with ``"parameters"``; ``<|python_tag|>`` followed by JSON
  calls (``;``-separated), a built-in call ``brave_search.call(query="...")``,
  or code, which is a call of the ``python`` tool;
* Llama 3.2/4: pythonic lists ``[f(a=1), g(b="x")]`` (read with ``ast``,
  never evaluated), alone, after ``<|python_start|>`` or inside prose;
* Mistral: ``[TOOL_CALLS][{...}]`` and ``[TOOL_CALLS]name[ARGS]{...}`` (also
  ``name{...}`` and ``name[CALL_ID]id[ARGS]{...}``);
* DeepSeek V3/R1 ``<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME`` + fenced
  JSON, and V3.1 ``<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}``;
* Kimi K2 ``<|tool_call_begin|>functions.NAME:0<|tool_call_argument_begin|>``
  and gpt-oss ``<|channel|>commentary to=functions.NAME ...<|message|>{...}``;
* OpenAI-style JSON (``{"type": "function", "function": ...}``, ``{"tool_calls":
  [...]}``, the legacy ``{"function_call": {"name", "arguments"}}`` message)
  and Cohere's ``tool_name``/``parameters``: the whole output, or anywhere in
  prose, in a fenced block after prose, several separated by ``;``.

Before reading: the output is cut at its first end-of-turn token
(``<|eot_id|>``, ``<|eom_id|>``, ``<|im_end|>``, ``</s>``, ...), since what
follows is not this turn; a leading role header is dropped; and reasoning is
removed (``<think>...</think>``, Magistral's ``[THINK]``, Cohere's
``<|START_THINKING|>``; when only the closing tag is there, the template
opened the block in the prompt and everything before it is reasoning).

Outcomes: a text that holds a call is never read as an answer -- it gives
calls, or an error naming what was wrong and the form expected; plain prose
is an answer (a leading "Final answer:" / "Answer:" is stripped).  The parser
is total: for any input (any string, None, bytes, ...) it returns a
``ParsedOutput`` with exactly one of ``calls`` (non-empty), ``answer`` or
``error`` set, and error messages are short and never echo large inputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .call_formats import (
    DEEPSEEK_MARKER, FUNCTION_OPEN, HARMONY_MARKER, KIMI_MARKER, deepseek_calls, embedded_json_calls,
    function_tag_calls, harmony_message, kimi_calls, mistral_calls, tagged_calls,
)
from .call_pythonic import (
    BARE_CALL_START, PYTHON_TAG, PYTHONIC_START, python_tag_calls, pythonic_calls, statement_calls,
)
from .call_values import (
    MAX_CALLS, CallError, NotLiteral, ToolCall, calls_from_value, check_count, is_call_object, python_literal,
    schemas_by_tool, unfence,
)

__all__ = ["MAX_CALLS", "MAX_ERROR_CHARS", "ParsedOutput", "ToolCall", "parse_model_output"]

MAX_ERROR_CHARS = 300

# End of the model's turn: nothing after it was written in this turn.  "</s>" is
# also an HTML tag, so it ends the turn only when markup or nothing follows it.
_END_OF_TURN = re.compile(r"<\|eot_id\|>|<\|eom_id\|>|<\|im_end\|>|<\|eot\|>|<\|end\|>|<\|endoftext\|>"
                          r"|<｜end▁of▁sentence｜>|<end_of_turn>|<\|END_OF_TURN_TOKEN\|>|<\|return\|>"
                          r"|</s>(?=\s*(?:\Z|<|\[))")
_ROLE_HEADER = re.compile(r"\A\s*(?:<\|begin_of_text\|>|<s>)?\s*(?:<\|im_start\|>assistant|<\|assistant\|>"
                          r"|<\|start_header_id\|>assistant<\|end_header_id\|>"
                          r"|<\|header_start\|>assistant<\|header_end\|>)?[ \t]*\n*")
# <think> (Qwen3, DeepSeek R1, SmolLM3), Cohere's <|START_THINKING|>, Magistral's [THINK];
# the second pattern only runs on texts holding "THINK]" (one literal first char keeps the scan fast)
_THINK_TAG = re.compile(r"<(?:(?P<close>/think|\|END_THINKING\|)|think|\|START_THINKING\|)>", re.IGNORECASE)
_THINK_TAG_ANY = re.compile(r"<(?:(?P<close>/think|\|END_THINKING\|)|think|\|START_THINKING\|)>"
                            r"|\[(?:(?P<close_>/THINK)|THINK)\]", re.IGNORECASE)
_ANSWER_DECORATION = re.compile(r"<\|START_RESPONSE\|>|<\|END_RESPONSE\|>")
_ANSWER_PREFIX = re.compile(r"\A(?:final[ \t]+answer|answer)[ \t]*:\s*", re.IGNORECASE)
# broken JSON that starts like an object with a string key is a (truncated) call, not prose
_JSON_OBJECT_START = re.compile(r'\A\[?\s*\{\s*"')
# leftovers of a call format that no reader could turn into a call
_CALL_MARKER = re.compile(r"</?function[=\s>]|<parameter[=\s]|\[ARGS\]|<\|tool_calls?_[a-z_]*\|>|<\|START_ACTION\|>"
                          r"|<\|python_end\|>", re.IGNORECASE)
_TOOL_CALL_CLOSE = re.compile(r"</tool_call>", re.IGNORECASE)
_FORMATS = (  # (where a format's marker is, its reader); the earliest marker in the text wins
    (DEEPSEEK_MARKER, deepseek_calls),
    (KIMI_MARKER, kimi_calls),
    (re.compile(r"\[TOOL_CALLS\]"), mistral_calls),
    (re.compile(r"<tool_call>", re.IGNORECASE), tagged_calls),
    (FUNCTION_OPEN, function_tag_calls),
    (PYTHON_TAG, python_tag_calls),
)


@dataclass(frozen=True)
class ParsedOutput:
    """Exactly one of: ``calls`` non-empty, ``answer`` set, ``error`` set."""

    calls: tuple = ()
    answer: str | None = None
    error: str | None = None


def _error(msg: str) -> ParsedOutput:
    if len(msg) > MAX_ERROR_CHARS:
        msg = msg[:MAX_ERROR_CHARS - 3] + "..."
    return ParsedOutput(error=msg)


def parse_model_output(text, max_chars: int = 20000, tools=None) -> ParsedOutput:
    """Parse one model output; never raises (see the module docstring).

    ``tools``: the OpenAI-style specs of the tools on offer (what chat
    templates take); they type Qwen3-Coder's ``<parameter>`` values."""
    try:
        return _parse(text, max_chars, tools)
    except CallError as exc:
        return _error(str(exc))
    except RecursionError:
        return _error("JSON nested too deeply")
    except Exception as exc:  # the contract is "never raises": report, don't crash the env
        return _error(f"could not parse output ({type(exc).__name__})")


def _parse(text, max_chars: int, tools) -> ParsedOutput:
    if not isinstance(text, str):
        return _error(f"output must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        return _error(f"output too long ({len(text)} chars > {max_chars})")
    if HARMONY_MARKER in text:  # before the cut below: harmony ends its reasoning with <|end|>
        calls, final = harmony_message(text)
        if calls:
            return _calls(calls)
        if final is None:
            raise CallError("no tool call and no final message; end with <|channel|>final<|message|>your answer")
        text = final
    text = _drop_thinking(_this_turn(text))
    if not text.strip():
        return _error("empty output")
    calls = _read_calls(text, schemas_by_tool(tools) if tools else {})
    if calls:
        return _calls(calls)
    marker = _CALL_MARKER.search(text)
    if marker:
        found = marker.group(0).strip()
        raise CallError(f"found {found} but no complete tool call; write {_expected_form(found)}")
    answer = _ANSWER_PREFIX.sub("", _ANSWER_DECORATION.sub("", text).strip(), count=1).strip()
    if not answer:
        return _error("empty answer")
    return ParsedOutput(answer=answer)


def _expected_form(marker: str) -> str:
    """The complete call of the format a stray marker belongs to."""
    if marker.startswith("<|tool_call"):
        return "<|tool_call_begin|>functions.NAME:0<|tool_call_argument_begin|>{...}<|tool_call_end|>"
    if marker == "[ARGS]":
        return "[TOOL_CALLS]NAME[ARGS]{...}"
    if marker.lower().startswith(("<function", "</function", "<parameter")):
        return "<function=NAME><parameter=KEY>value</parameter></function>"
    if marker == "<|START_ACTION|>":
        return '<|START_ACTION|>[{"tool_name": ..., "parameters": {...}}]<|END_ACTION|>'
    if marker == "<|python_end|>":
        return "<|python_start|>[name(arg=value)]<|python_end|>"
    return '<tool_call>{"name": ..., "arguments": {...}}</tool_call>'


def _calls(calls: list) -> ParsedOutput:
    return ParsedOutput(calls=tuple(check_count(calls)))


def _this_turn(text: str) -> str:
    end = _END_OF_TURN.search(text)
    return _ROLE_HEADER.sub("", text[:end.start()] if end else text, count=1)


def _drop_thinking(text: str) -> str:
    # Tags are paired in one linear pass (a regex like <think>.*?</think> is
    # quadratic on a degenerate output that repeats "<think>" thousands of times).
    kept, pos, open_at = [], 0, None
    tags = _THINK_TAG_ANY if "THINK]" in text else _THINK_TAG
    for m in tags.finditer(text):
        if m.group("close") or m.lastgroup == "close_":
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
        raise CallError("unterminated <think> block: close it with </think>, then give a tool call or an answer")
    kept.append(text[pos:])  # (a "<think>" after real content is kept as literal text)
    return "".join(kept)


def _read_calls(text: str, schemas: dict) -> list:
    """The calls in a text, read by the format whose marker comes first;
    without a marker, JSON or pythonic calls; [] for plain prose."""
    found = [(m.start(), reader) for marker, reader in _FORMATS if (m := marker.search(text))]
    if found:
        return min(found, key=lambda f: f[0])[1](text, schemas)
    if _TOOL_CALL_CLOSE.search(text):
        raise CallError("found </tool_call> without an opening <tool_call>")
    return _unmarked_calls(text)


def _unmarked_calls(text: str) -> list:
    body = unfence(text.strip())
    if PYTHONIC_START.match(body):
        return pythonic_calls(body, whole=True)
    json_error = None
    if body[:1] in ("{", "["):
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            json_error = exc
        except RecursionError:
            if _looks_like_call(body):
                raise
            return []
        else:  # the whole output is JSON: a call, or a JSON answer
            return calls_from_value(value) if is_call_object(value) else []
    calls = embedded_json_calls(text) or pythonic_calls(text, whole=False)
    if not calls and BARE_CALL_START.match(body):
        calls = statement_calls(body) or []  # get_weather(city="Paris") without the list brackets
    if calls or json_error is None:
        return calls
    try:  # Hermes-style Python dict without the tags: {'name': 'x', 'arguments': {...}}
        value = python_literal(body)
    except NotLiteral:
        value = None
    if is_call_object(value):
        return calls_from_value(value)
    if _looks_like_call(body):
        raise CallError(f"invalid JSON at char {json_error.pos}: {json_error.msg}")  # an attempted call
    return []


def _looks_like_call(body: str) -> bool:
    return bool(_JSON_OBJECT_START.match(body)) or '"name"' in body or '"function"' in body
