"""Readers for the native tool-call formats of open model families.

One function per format.  Each takes the model's text (end-of-turn tokens
and reasoning already removed by ``parsing``) plus the known tools'
parameter schemas, and returns the calls the text holds as ``ToolCall``s,
or raises ``CallError`` with a short message that says what was wrong and
which form was expected.  ``parsing.parse_model_output`` decides which
reader a text goes to.

Every reader is linear in the text (no regex that can backtrack over the
whole output, no retry from every position), because a model stuck in a
loop will sooner or later emit thousands of copies of the same marker.
"""

from __future__ import annotations

import re

from .call_values import (
    MAX_FAILED_CANDIDATES, CallError, ToolCall, calls_from_value, calls_in, check_count, check_name, is_call_object, json_type,
    load_value, typed_value, unfence, value_sequence,
)


def _object_arguments(text: str, where: str, what: str) -> dict:
    """One JSON object of arguments filling ``text`` (fences allowed)."""
    text = unfence(text.strip())
    if not text:
        return {}
    try:
        value, end = load_value(text)
    except CallError as exc:
        raise CallError(f"{where}{what}: {exc}") from None
    if not isinstance(value, dict):
        raise CallError(f"{where}{what} must be a JSON object, got {json_type(value)}")
    if text[end:].strip():
        raise CallError(f"{where}unexpected text after the arguments of {what}")
    return value


# ------------------------------------------------------------------ Qwen / Hermes: <tool_call>
_TOOL_CALL_TAG = re.compile(r"<(/?)tool_call>", re.IGNORECASE)


def tagged_calls(text: str, schemas: dict) -> list:
    """Every ``<tool_call>`` block (an unterminated last one too): JSON or
    Python-dict calls (several per block allowed), or Qwen3-Coder's
    ``<function=NAME><parameter=K>V</parameter></function>``."""
    blocks, open_at = [], None
    for m in _TOOL_CALL_TAG.finditer(text):  # paired in one linear pass
        if m.group(1):  # </tool_call>; a stray one (no open block) is ignored
            if open_at is not None:
                blocks.append(text[open_at:m.start()])
                open_at = None
        elif open_at is None:
            open_at = m.end()
        else:
            raise CallError(f"tool call {len(blocks) + 1}: <tool_call> inside <tool_call>; "
                            "close each block with </tool_call>")
    if open_at is not None:  # stopped at EOS before </tool_call>
        blocks.append(text[open_at:])
    calls = []
    for i, block in enumerate(blocks, 1):
        where = f"tool call {i}: "
        body = unfence(block.strip())
        if not body:
            raise CallError(where + "empty <tool_call> block; put a JSON object with 'name' and 'arguments' inside")
        if body.startswith("<function"):
            calls += function_tag_calls(body, schemas, where)
        else:
            calls += calls_in(value_sequence(body, where, strict_tail=True), where)
        check_count(calls)
    return calls


# ------------------------------------------------------------------ <function=NAME> (Llama 3.1, Qwen3-Coder)
# names stop at "<" and are bounded, so a run of unclosed "<function=" cannot make the search quadratic
FUNCTION_OPEN = re.compile(r"""<function(?:=([^<>\n]{0,300})|\s+name\s*=\s*["']([^"'<>\n]{0,300})["']\s*)>""")
_PARAMETER_OPEN = re.compile(r"""<parameter(?:=([^<>\n]{0,300})"""
                             r"""|\s+name\s*=\s*["']([^"'<>\n]{0,300})["'][^<>\n]{0,300})>""")


def function_tag_calls(text: str, schemas: dict, where: str = "") -> list:
    """``<function=NAME>{json}</function>`` or ``<function=NAME><parameter=K>V
    </parameter>...</function>``; also ``<function name="NAME">``."""
    opens = list(FUNCTION_OPEN.finditer(text))
    if not opens:
        raise CallError(where + "expected <function=NAME>{...}</function>")
    calls = []
    for i, m in enumerate(opens):
        label = where or f"tool call {i + 1}: "
        body = text[m.end():opens[i + 1].start() if i + 1 < len(opens) else len(text)]
        body = body.split("</function>", 1)[0]
        name = check_name(m.group(1) if m.group(1) is not None else m.group(2), label)
        if _PARAMETER_OPEN.search(body):
            args = xml_parameters(body, schemas.get(name, {}), label)
        elif body.strip() and body.strip()[0] not in "{[":
            raise CallError(label + f"the arguments of <function={name}> must be a JSON object "
                                    "or <parameter=NAME>value</parameter> tags")
        else:
            args = _object_arguments(body, label, f"<function={name}>")
        calls.append(ToolCall(name, args))
        check_count(calls)
    return calls


def xml_parameters(body: str, props: dict, where: str) -> dict:
    """``<parameter=K>\\nV\\n</parameter>`` tags as arguments; a missing
    ``</parameter>`` ends at the next tag.  Values are typed by ``props``."""
    opens = list(_PARAMETER_OPEN.finditer(body))
    args = {}
    for i, m in enumerate(opens):
        raw = body[m.end():opens[i + 1].start() if i + 1 < len(opens) else len(body)]
        raw = raw.split("</parameter>", 1)[0]
        raw = raw[1:] if raw.startswith("\n") else raw  # the template writes one newline each side
        raw = raw[:-1] if raw.endswith("\n") else raw
        key = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
        if not key:
            raise CallError(where + "a parameter needs a name: <parameter=NAME>value</parameter>")
        args[key] = typed_value(raw, props.get(key) if isinstance(props, dict) else None)
    return args


# ------------------------------------------------------------------ Mistral: [TOOL_CALLS]
_MISTRAL_NAME = re.compile(r"([A-Za-z_][\w.\-]*)[ \t]*(?:\[CALL_ID\][^\[{]*)?(?:\[ARGS\])?")
_MISTRAL_FORMS = "[TOOL_CALLS][{\"name\": ..., \"arguments\": {...}}] or [TOOL_CALLS]name[ARGS]{...}"


def mistral_calls(text: str, schemas: dict) -> list:
    """Pre-v11 ``[TOOL_CALLS] [{...}, ...]``; v11+ ``[TOOL_CALLS]name[ARGS]{...}``
    (also ``name{...}``, ``name[CALL_ID]id[ARGS]{...}``), one per marker.
    Text before the first marker, or after a JSON list, is prose."""
    calls = []
    for segment in text.split("[TOOL_CALLS]")[1:]:
        where = f"tool call {len(calls) + 1}: "
        body = segment.strip()
        if not body:
            raise CallError(where + f"nothing after [TOOL_CALLS]; write {_MISTRAL_FORMS}")
        if body[0] in "[{":
            calls += calls_in(value_sequence(body, where), where)
            continue
        m = _MISTRAL_NAME.match(body)
        if not m:
            raise CallError(where + f"expected {_MISTRAL_FORMS}")
        rest = body[m.end():].strip()
        if not rest:
            calls.append(ToolCall(check_name(m.group(1), where), {}))
            continue
        if rest[0] not in "{[\"'":
            raise CallError(where + f"expected {_MISTRAL_FORMS}")
        try:
            value, end = load_value(rest)
        except CallError as exc:
            raise CallError(where + f"the arguments of {m.group(1)} must be a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise CallError(where + f"the arguments of {m.group(1)} must be a JSON object, got {json_type(value)}")
        calls.append(ToolCall(check_name(m.group(1), where), value))
    return calls


# ------------------------------------------------------------------ DeepSeek V3 / R1 / V3.1
DS_CALLS_BEGIN, DS_CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
DS_CALL_BEGIN, DS_CALL_END, DS_SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
DS_CALLS_SHORT = "<｜tool▁calls｜>"  # written by some R1 distills instead of the begin token
DEEPSEEK_MARKER = re.compile("|".join(map(re.escape, (DS_CALLS_BEGIN, DS_CALL_BEGIN, DS_CALLS_SHORT, DS_SEP))))


def deepseek_calls(text: str, schemas: dict) -> list:
    """V3/R1 ``<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\\n```json\\n{...}\\n```<｜tool▁call▁end｜>``,
    V3.1 ``<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>``."""
    region = text[DEEPSEEK_MARKER.search(text).start():].split(DS_CALLS_END, 1)[0]
    calls = []
    for piece in region.split(DS_CALL_BEGIN):
        piece = piece.split(DS_CALL_END, 1)[0].replace(DS_CALLS_BEGIN, "").replace(DS_CALLS_SHORT, "")
        if not piece.strip():
            continue
        where = f"tool call {len(calls) + 1}: "
        if DS_SEP not in piece:
            raise CallError(where + f"expected {DS_CALL_BEGIN}function{DS_SEP}NAME\\n```json\\n{{...}}\\n```"
                                    f"{DS_CALL_END}")
        kind, rest = piece.split(DS_SEP, 1)
        rest = rest.lstrip()
        if rest[:1] in ("{", "["):  # V3.1: the name comes before the separator
            name, args_text = kind, rest
        else:
            name, _, args_text = rest.partition("\n")
        name = check_name(name, where)
        calls.append(ToolCall(name, _object_arguments(args_text, where, f"the arguments of {name}")))
    if not calls:
        raise CallError(f"found DeepSeek tool-call tokens but no call; write {DS_CALLS_BEGIN}{DS_CALL_BEGIN}"
                        f"function{DS_SEP}NAME\\n```json\\n{{...}}\\n```{DS_CALL_END}{DS_CALLS_END}")
    return calls


# ------------------------------------------------------------------ Kimi K2
KIMI_MARKER = re.compile(r"<\|tool_calls_section_begin\|>|<\|tool_call_begin\|>")
_KIMI_BEGIN, _KIMI_ARGS, _KIMI_END = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"
_KIMI_ID = re.compile(r"(?:functions\.)?(.*?)(?::\d+)?")


def kimi_calls(text: str, schemas: dict) -> list:
    """``<|tool_call_begin|>functions.NAME:0<|tool_call_argument_begin|>{...}<|tool_call_end|>``."""
    calls, pos = [], 0
    while (begin := text.find(_KIMI_BEGIN, pos)) >= 0:
        where = f"tool call {len(calls) + 1}: "
        args_at = text.find(_KIMI_ARGS, begin)
        if args_at < 0:
            raise CallError(where + f"expected {_KIMI_BEGIN}functions.NAME:0{_KIMI_ARGS}{{...}}{_KIMI_END}")
        ends = [i for i in (text.find(_KIMI_END, args_at), text.find("<|tool_calls_section_end|>", args_at)) if i >= 0]
        pos = min(ends) if ends else len(text)
        name = check_name(_KIMI_ID.fullmatch(text[begin + len(_KIMI_BEGIN):args_at].strip()).group(1), where)
        calls.append(ToolCall(name, _object_arguments(text[args_at + len(_KIMI_ARGS):pos], where,
                                                      f"the arguments of {name}")))
    if not calls:
        raise CallError(f"found a Kimi tool-call section but no call; write "
                        f"{_KIMI_BEGIN}functions.NAME:0{_KIMI_ARGS}{{...}}{_KIMI_END}")
    return calls


# ------------------------------------------------------------------ gpt-oss (harmony)
HARMONY_MARKER = "<|channel|>"
_HARMONY_MESSAGE = "<|message|>"
_HARMONY_STOP = re.compile(r"<\|(?:call|end|return|start)\|>")
_HARMONY_RECIPIENT = re.compile(r"\bto=([\w.\-]+)")


def harmony_message(text: str):
    """``(calls, final answer or None)`` of a harmony output: messages sent
    ``to=functions.NAME`` (``to=python`` carries code) are calls, the
    ``final`` channel is the answer, ``analysis`` is reasoning."""
    calls, final, pos = [], None, 0
    while (at := text.find(_HARMONY_MESSAGE, pos)) >= 0:
        header = text[pos:at]  # e.g. <|start|>assistant<|channel|>commentary to=functions.x <|constrain|>json
        stop = _HARMONY_STOP.search(text, at)
        pos = stop.start() if stop else len(text)
        body = text[at + len(_HARMONY_MESSAGE):pos]
        recipient = _HARMONY_RECIPIENT.search(header)
        if recipient:
            where = f"tool call {len(calls) + 1}: "
            name = check_name(recipient.group(1).removeprefix("functions."), where)
            args = {"code": body.strip("\n")} if name == "python" else \
                _object_arguments(body, where, f"the arguments of {name}")
            calls.append(ToolCall(name, args))
        elif re.search(r"\bfinal\b", header):
            final = body
    return calls, final


# ------------------------------------------------------------------ JSON calls inside prose
_JSON_CALL_START = re.compile(r"""\{\s*(["'])(name|function|arguments|parameters|tool_calls|tool_call|"""
                              r"""tool_name|tool_call_id|function_call|type)\1\s*:""")
_STRONG_KEYS = {"name", "function", "tool_calls", "tool_call", "tool_name", "function_call"}


def embedded_json_calls(text: str) -> list:
    """JSON calls anywhere in the text: after prose, in a fenced block, in
    ad-hoc wrapper tags (``<tools>``, ``<response>``), several separated by
    ``;``.  A broken one that starts like a call is an error, not prose."""
    calls, pos, failed = [], 0, 0
    for m in _JSON_CALL_START.finditer(text):
        start = _list_start(text, m.start())  # [{"name": ...}, ...]: read the whole list
        if start < pos:
            continue
        try:
            value, end = load_value(text, start, base=start)
        except CallError:
            if m.group(2) in _STRONG_KEYS or '"name"' in text[start:start + 300]:
                raise
            failed += 1
            if failed > MAX_FAILED_CANDIDATES:
                break
            continue
        pos = end
        if is_call_object(value, strict=True):
            calls += calls_from_value(value, f"tool call {len(calls) + 1}: " if calls else "")
            check_count(calls)
    return calls


def _list_start(text: str, brace: int) -> int:
    """Where a JSON list opens just before ``text[brace]`` (whitespace
    between allowed), else ``brace`` itself."""
    i = brace - 1
    while i >= 0 and brace - i < 40 and text[i] in " \t\r\n":
        i -= 1
    return i if i >= 0 and text[i] == "[" else brace
