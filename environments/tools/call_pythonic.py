"""Llama's Python-flavoured tool calls: pythonic lists and ``<|python_tag|>``.

Llama 3.2/4 write ``[get_weather(city='Paris'), search(q="x")]``; Llama 3.x
puts JSON calls, built-in calls (``brave_search.call(query="...")``) or
plain code after ``<|python_tag|>``.  All of it is read with ``ast`` and a
literal-only walker: nothing the model wrote is ever evaluated.
"""

from __future__ import annotations

import ast
import re

from .call_values import (
    MAX_FAILED_CANDIDATES, PYTHON_SYNTAX_ERRORS, CallError, NotLiteral, ToolCall, bracket_end, calls_in, check_count,
    check_name, literal, parse_python, value_sequence,
)

PYTHON_TAG = re.compile(r"<\|python_tag\|>|<\|python_start\|>")
PYTHONIC_START = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(")
_PYTHONIC_ATTEMPT = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(\s*(?:\)|[A-Za-z_]\w*\s*=)")
BARE_CALL_START = re.compile(r"\A[A-Za-z_][\w.]*\s*\(")


def python_tag_calls(text: str, schemas: dict) -> list:
    """What follows each ``<|python_tag|>`` (Llama 3.x) or ``<|python_start|>``
    (Llama 4): JSON calls (``;``-separated), a pythonic list, built-in calls
    such as ``brave_search.call(query="...")``, or else code for ``python``."""
    calls = []
    for part in PYTHON_TAG.split(text)[1:]:
        body = part.split("<|python_end|>", 1)[0].strip()
        if not body:
            continue
        where = f"tool call {len(calls) + 1}: "
        if PYTHONIC_START.match(body):
            calls += pythonic_calls(body, whole=True)
        elif body[0] in "{[":
            calls += calls_in(value_sequence(body, where), where)
        else:
            calls += statement_calls(body) or [ToolCall("python", {"code": body})]
        check_count(calls)
    if not calls:
        raise CallError('empty <|python_tag|>; write <|python_tag|>{"name": ..., "parameters": {...}}')
    return calls


def pythonic_calls(text: str, whole: bool) -> list:
    """Calls in ``[f(a=1), g(b="x")]`` lists, read with ``ast`` (never run).
    ``whole``: the text starts with the list, so anything unreadable is an
    error; inside prose only lists that look like calls (``[f(`` then ``)``
    or ``name=``) are read, and positional ``[f(x)]`` stays prose."""
    calls, pos, failed = [], 0, 0
    first = len(text) - len(text.lstrip())  # where a list that is the whole output starts
    for m in PYTHONIC_START.finditer(text):
        if m.start() < pos:
            continue
        strict = whole and m.start() == first
        attempt = strict or _PYTHONIC_ATTEMPT.match(text, m.start())
        end = bracket_end(text, m.start())
        try:
            if end is None:
                raise CallError(f"tool call {len(calls) + 1}: unclosed call list; write [name(arg=value), ...]")
            found = _call_list(text[m.start():end], len(calls), strict)
        except CallError:
            if attempt:
                raise
            found = None
        if found:
            check_count(calls + found)
            calls += found
            pos = end
        else:
            failed += 1
            if failed > MAX_FAILED_CANDIDATES:
                break
    return calls


def _call_list(source: str, done: int, strict: bool):
    try:
        node = parse_python(source, "eval").body
    except PYTHON_SYNTAX_ERRORS as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise CallError(f"tool call {done + 1}: could not read the call list ({reason}); "
                        "write [name(arg=value), ...]") from None
    if not isinstance(node, ast.List) or not node.elts or not all(isinstance(e, ast.Call) for e in node.elts):
        raise CallError(f"tool call {done + 1}: expected a list of calls [name(arg=value), ...]")
    calls = [_call_from_node(e, f"tool call {done + i}: ", strict) for i, e in enumerate(node.elts, 1)]
    return None if None in calls else calls


def _call_from_node(node: ast.Call, where: str, strict: bool):
    name = _dotted(node.func)
    if name is None:
        raise CallError(where + "call a tool by its name: name(arg=value)")
    name = name.removesuffix(".call")  # Llama built-in tools: brave_search.call(query="...")
    if node.args or any(k.arg is None for k in node.keywords):
        if not strict:
            return None
        raise CallError(where + f"pass the arguments of {name} by name: {name}(arg=value)")
    args = {}
    for kw in node.keywords:
        try:
            args[kw.arg] = literal(kw.value)
        except NotLiteral:
            raise CallError(where + f"argument '{kw.arg}' of {name} must be a literal "
                                    "(string, number, True/False/None, list or dict)") from None
    return ToolCall(check_name(name, where), args)


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id] + parts[::-1])


def statement_calls(source: str):
    """``brave_search.call(query="x")`` or ``f(a=1); g(b=2)`` as calls, or
    None when the source is anything else (then it is code, or prose)."""
    try:
        statements = parse_python(source, "exec").body
    except PYTHON_SYNTAX_ERRORS:
        return None
    calls = []
    for i, stmt in enumerate(statements, 1):
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not isinstance(call, ast.Call) or _dotted(call.func) is None:
            return None
        if not call.keywords and not _dotted(call.func).endswith(".call"):
            return None  # print(x), main(): code, not a tool call
        try:
            found = _call_from_node(call, f"tool call {i}: ", strict=False)
        except CallError:
            return None
        if found is None:
            return None
        calls.append(found)
    return calls or None
