"""The values inside tool calls: JSON, Python literals, and call objects.

Models write call bodies as strict JSON (Qwen, Llama, Mistral), as Python
literals (Hermes-style ``{'name': 'x', 'arguments': {'k': True}}``, the
arguments of pythonic calls), or as bare text typed by the tool's schema
(Qwen3-Coder's ``<parameter=k>v</parameter>``).  Everything here reads text
without executing it: Python literals go through ``ast`` and a walker that
accepts constants, lists, tuples and dicts only.

``CallError`` carries a short message meant for the model; the format readers
(``call_formats``, ``call_pythonic``) raise it and ``parsing`` turns it into
``ParsedOutput.error``.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass

MAX_CALLS = 32  # more calls in one turn is a runaway generation, not a plan
MAX_NAME_CHARS = 200
MAX_FAILED_CANDIDATES = 20  # broken look-alike calls tried inside prose before giving up (keeps scans linear)
# keys that mark a JSON object as meant to be a tool call
CALL_KEYS = ("name", "function", "arguments", "parameters", "tool_calls", "function_call", "tool_call",
             "tool_name")
_NAME_KEYS = ("name", "tool_name")
_WRAPPER_KEYS = ("function", "function_call", "tool_call")  # {"function": {"name": ..., "arguments": ...}}
_LITERAL_NAMES = {"True": True, "true": True, "False": False, "false": False, "None": None, "null": None}
_DECODER = json.JSONDecoder()
_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.IGNORECASE | re.DOTALL)
_FENCE_OPEN = re.compile(r"\A```[ \t]*(?:json)?[ \t]*(?:\n|\Z)", re.IGNORECASE)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict


class CallError(Exception):
    """A tool call that cannot be read; the message is meant for the model."""


class NotLiteral(Exception):
    """The source is valid Python but not a literal value (a name, a call, ...)."""


# ------------------------------------------------------------------ reading values
def load_value(text: str, pos: int = 0, base: int = 0):
    """``(value, end)`` of the JSON value, or else the Python literal, that
    starts at ``text[pos]``.  Errors name the position relative to ``base``."""
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        error = exc
    except RecursionError:
        raise CallError("JSON nested too deeply") from None
    if text[pos:pos + 1] in ("{", "["):
        end = bracket_end(text, pos)
        if end is not None:
            try:
                return python_literal(text[pos:end]), end
            except NotLiteral:
                pass
    raise CallError(f"invalid JSON at char {error.pos - base}: {error.msg}") from None


def unfence(text: str) -> str:
    """The inside of a ```json fenced block (also one the model never closed)."""
    m = _FENCE.match(text)
    if m:
        return m.group(1).strip()
    m = _FENCE_OPEN.match(text)
    return text[m.end():].strip() if m else text


PYTHON_SYNTAX_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def parse_python(source: str, mode: str):
    """``ast.parse`` without the warnings it prints for model-written code
    (invalid escapes such as ``"\\d"``); raises ``PYTHON_SYNTAX_ERRORS``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode=mode)


def python_literal(source: str):
    """The value of a Python literal (``True``/``None`` and JSON's
    ``true``/``null`` both accepted); raises ``NotLiteral`` for anything else."""
    try:
        tree = parse_python(source.strip(), "eval")
    except PYTHON_SYNTAX_ERRORS:
        raise NotLiteral from None
    return literal(tree.body)


def literal(node):
    """Walk one ``ast`` node that must be a literal value (never evaluated)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        out = {}
        for k, v in zip(node.keys, node.values):
            key = literal(k) if k is not None else None
            if not isinstance(key, str):
                raise NotLiteral
            out[key] = literal(v)
        return out
    raise NotLiteral


def bracket_end(text: str, pos: int):
    """Index just past the bracket that closes the one at ``text[pos]``
    (strings in either quote skipped), or None; one linear pass."""
    closers = {"(": ")", "[": "]", "{": "}"}
    stack, quote, i, n = [], None, pos, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c in closers:
            stack.append(closers[c])
        elif c in ")]}":
            if not stack or stack.pop() != c:
                return None
            if not stack:
                return i + 1
        i += 1
    return None


_SEPARATORS = re.compile(r"[\s,;]*")


def value_sequence(text: str, where: str, strict_tail: bool = False) -> list:
    """The JSON (or Python-literal) values at the start of ``text``, separated
    by commas, semicolons or whitespace.  Text after them is an error when
    ``strict_tail`` (inside ``<tool_call>`` tags), else ignored (prose)."""
    values, pos = [], 0
    while True:
        try:
            value, pos = load_value(text, pos)
        except CallError as exc:
            raise CallError(where + str(exc)) from None
        values.append(value)
        pos = _SEPARATORS.match(text, pos).end()
        if pos >= len(text) or text[pos] not in "{[":
            break
    if strict_tail and pos < len(text):
        raise CallError(where + f"unexpected text after the call at char {pos}; "
                                "put only the JSON call inside <tool_call></tool_call>")
    return values


def calls_in(values: list, where: str) -> list:
    return [call for value in values for call in calls_from_value(value, where)]


def check_count(calls: list) -> list:
    """Stop reading a runaway output as soon as it holds too many calls."""
    if len(calls) > MAX_CALLS:
        raise CallError(f"too many tool calls (more than {MAX_CALLS})")
    return calls


# ------------------------------------------------------------------ call objects
def is_call_object(value, strict: bool = False) -> bool:
    """Whether a parsed value is meant as a call (or a list of calls).
    ``strict`` (JSON found inside prose) also wants the arguments key, so a
    JSON answer such as ``{"name": "Ada", "born": 1815}`` stays an answer."""
    if isinstance(value, list):
        return any(is_call_object(v, strict) for v in value)
    if not isinstance(value, dict):
        return False
    if any(isinstance(value.get(k), dict) for k in _WRAPPER_KEYS) or isinstance(value.get("tool_calls"), list):
        return True
    if not strict:
        return any(k in value for k in CALL_KEYS)
    has_name = any(isinstance(value.get(k), str) for k in _NAME_KEYS + ("function",))
    return has_name and ("arguments" in value or "parameters" in value)


def calls_from_value(value, where: str = "") -> list:
    """The calls in one parsed value: a call object, ``{"tool_calls": [...]}``
    or a list of calls."""
    if isinstance(value, dict) and "tool_calls" in value:
        items = value["tool_calls"]
        if not isinstance(items, list) or not items:
            raise CallError(where + "'tool_calls' must be a non-empty list of calls")
        value = items
    if isinstance(value, list):
        if not value:
            raise CallError(where + "empty list of calls")
        return [to_call(item, where or f"tool call {i}: ") for i, item in enumerate(value, 1)]
    return [to_call(value, where)]


def to_call(obj, where: str = "") -> ToolCall:
    if not isinstance(obj, dict):
        raise CallError(where + f"a tool call must be a JSON object, got {json_type(obj)}")
    inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), obj)
    name = next((inner[k] for k in _NAME_KEYS if k in inner), inner.get("function"))
    if not isinstance(name, str) or not name.strip():
        raise CallError(where + "tool call needs a string 'name'")
    if "arguments" in inner:
        args = inner["arguments"]
    else:
        args = inner.get("parameters")  # Llama 3.x, Cohere; absent -> no arguments
    return ToolCall(check_name(name, where), check_arguments(args, where))


def check_name(name: str, where: str = "") -> str:
    name = name.strip()
    if not name:
        raise CallError(where + "tool call needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise CallError(where + f"tool name too long ({len(name)} chars)")
    return name


def check_arguments(args, where: str = "") -> dict:
    if args is None:
        return {}
    if isinstance(args, str):  # OpenAI encodes arguments as a JSON string
        if not args.strip():
            return {}
        try:
            args, end = load_value(args.strip())
        except CallError as exc:
            raise CallError(where + f"'arguments' string: {exc}") from None
        if not isinstance(args, dict):
            raise CallError(where + f"'arguments' must be an object, got {json_type(args)}")
        return args
    if not isinstance(args, dict):
        raise CallError(where + f"'arguments' must be an object, got {json_type(args)}")
    return args


def json_type(value) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)


# ------------------------------------------------------------------ values typed by a schema
def typed_value(raw: str, schema: dict | None):
    """A ``<parameter=k>`` value, typed by the parameter's JSON schema when
    the tool's schema is known, else read as JSON when it is JSON (``42``,
    ``true``, ``{"a": 1}``) and kept as text otherwise."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    text = raw.strip()
    if kind in ("string", "str", "text"):
        return raw
    if kind in ("boolean", "bool"):
        return {"true": True, "false": False}.get(text.lower(), raw)
    if kind in ("integer", "int", "number", "float", "object", "dict", "array", "list", "null"):
        wanted = {"integer": int, "int": int, "number": (int, float), "float": (int, float), "object": dict,
                  "dict": dict, "array": list, "list": list, "null": type(None)}[kind]
        value = _maybe_value(text)
        ok = isinstance(value, wanted) and not isinstance(value, bool) or (kind == "null" and value is None)
        return value if ok else raw
    value = _maybe_value(text)
    return raw if value is _MISSING else value


_MISSING = object()


def _maybe_value(text: str):
    try:
        value, end = load_value(text)
    except CallError:
        return _MISSING
    return value if end == len(text) else _MISSING


def schemas_by_tool(tools) -> dict:
    """``{tool name: {parameter: schema}}`` from OpenAI-style tool specs
    (``{"type": "function", "function": {...}}`` or the bare function dict);
    malformed entries are skipped."""
    out = {}
    for tool in tools if isinstance(tools, (list, tuple)) else ():
        spec = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            params = spec.get("parameters")
            props = params.get("properties") if isinstance(params, dict) else None
            out[spec["name"]] = props if isinstance(props, dict) else {}
    return out
