"""Tools, the per-episode tool context, and the registry that runs tool calls.

``ToolRegistry.call`` is the one place a model's call meets real code, so it
never raises: unknown tools, arguments that do not match the tool's JSON
schema, ``ToolError`` raised by a tool (a user-facing problem such as "no such
memory key") and any other exception (a bug, or a hostile input we did not
foresee) all come back as ``ToolResult(ok=False, content=<short reason>)``
that the environment shows to the model.  Results are cut to
``max_result_chars`` so one call cannot flood the context window.

The tools that need episode state get it from a ``ToolContext``: memory, the
search index and corpus (duck-typed: ``index.search(query, k)`` returning hits
with ``doc_id``, ``title``, ``snippet``; ``corpus.doc(id_or_title)`` returning a
document with ``id``, ``title``, ``text``, ``links`` or None), the evidence
trail (doc ids retrieved or opened), the python tool and the final answer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from .calculator import CalculatorError, evaluate, format_number

MAX_RESULT_CHARS = 4000
MAX_MEMORY_KEYS = 100
MAX_KEY_CHARS = 100
MAX_VALUE_CHARS = 4000
MAX_ANSWER_CHARS = 4000


class ToolError(Exception):
    """Raised by a tool function for an error the model should see verbatim."""


@dataclass
class ToolResult:
    ok: bool
    content: str


@dataclass
class ToolContext:
    """Per-episode state the tools read and write."""

    memory: dict[str, str] = field(default_factory=dict)
    index: Any = None  # search index: .search(query, k) -> hits
    corpus: Any = None  # .doc(id_or_title) -> document or None
    evidence: list[str] = field(default_factory=list)  # doc ids seen, in order, no duplicates
    python: Any = None  # PythonTool
    answer: str | None = None  # set by final_answer

    def copy(self) -> "ToolContext":
        """A branch of this context: memory and evidence are copied (the
        values are immutable strings), index, corpus and the python tool are
        shared; branch the python tool's files with its snapshot/restore."""
        return ToolContext(memory=dict(self.memory), index=self.index, corpus=self.corpus,
                           evidence=list(self.evidence), python=self.python, answer=self.answer)

    def add_evidence(self, doc_id) -> None:
        doc_id = str(doc_id)
        if doc_id not in self.evidence:
            self.evidence.append(doc_id)


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict  # JSON schema of the arguments: type object, additionalProperties false
    fn: Callable[[dict, ToolContext], str]

    def spec(self) -> dict:
        """OpenAI function-calling form (also what chat templates' ``tools=`` take)."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description,
                             "parameters": self.parameters}}


# ------------------------------------------------------------------ helpers
def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... truncated {len(text) - limit} more chars]"


def _schema(properties: dict, required=()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


_JSON_TYPES = {"object": dict, "string": str, "boolean": bool, "array": list}


def _json_type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), type(value).__name__)


def _is_type(value, t: str) -> bool:
    if t == "integer":  # JSON Schema: 3.0 is an integer, true is not
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "null":
        return value is None
    return isinstance(value, _JSON_TYPES.get(t, ()))


def _check_value(name: str, value, schema: dict) -> str | None:
    """The first problem with one argument, or None (the subset of JSON Schema
    the built-in tools use: type, enum, minLength/maxLength, minimum/maximum)."""
    t = schema.get("type")
    if t is not None and not _is_type(value, t):
        return f"argument '{name}' must be {'an' if t[0] in 'aeiou' else 'a'} {t}, got {_json_type_name(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"argument '{name}' must be one of {', '.join(map(str, schema['enum']))}"
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"argument '{name}' is too long ({len(value)} chars > {schema['maxLength']})"
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"argument '{name}' must not be empty" if schema["minLength"] == 1 \
                else f"argument '{name}' is too short (< {schema['minLength']} chars)"
    elif _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"argument '{name}' must be >= {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"argument '{name}' must be <= {schema['maximum']}"
    return None


def validate_arguments(arguments, schema: dict) -> str | None:
    """None if ``arguments`` fit ``schema``, else a short message naming the
    argument.  Written for the flat object schemas of tools; the messages are
    the same whether or not the ``jsonschema`` library double-checks below."""
    if not isinstance(arguments, dict):
        return f"arguments must be an object, got {_json_type_name(arguments)}"
    props = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in arguments:
            return f"missing required argument '{key}'"
    for key, value in arguments.items():
        if key not in props:
            if schema.get("additionalProperties", True) is False:
                allowed = ", ".join(props) or "none"
                return f"unexpected argument '{_clip(str(key), 40)}' (allowed: {allowed})"
            continue
        problem = _check_value(str(key), value, props[key])
        if problem:
            return problem
    return None


try:  # the full validator, when installed, catches schema features the subset misses
    import jsonschema as _jsonschema
except ImportError:  # pragma: no cover - the subset above is enough for the built-in tools
    _jsonschema = None


def _full_validator(schema: dict):
    if _jsonschema is None:
        return None
    return _jsonschema.Draft202012Validator(schema)


# ------------------------------------------------------------------ registry
class ToolRegistry:
    """Named tools; ``call`` runs one with validated arguments and never raises."""

    def __init__(self, tools, max_result_chars: int = MAX_RESULT_CHARS):
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"duplicate tool name {tool.name!r}")
            self._tools[tool.name] = tool
        self.max_result_chars = max_result_chars
        self._validators = {name: _full_validator(t.parameters) for name, t in self._tools.items()}

    @property
    def names(self) -> list:
        return list(self._tools)

    def __contains__(self, name) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool:
        return self._tools[name]

    def specs(self) -> list:
        return [t.spec() for t in self._tools.values()]

    def subset(self, names) -> "ToolRegistry":
        missing = [n for n in names if n not in self._tools]
        if missing:
            raise KeyError(f"unknown tools {missing}; available: {', '.join(self._tools)}")
        return ToolRegistry([self._tools[n] for n in names], self.max_result_chars)

    def call(self, name, arguments, ctx: ToolContext) -> ToolResult:
        try:
            return self._call(name, arguments, ctx)
        except Exception as exc:  # never raise into the environment; last resort
            return ToolResult(False, _clip(f"tool call failed: {type(exc).__name__}", 300))

    def _call(self, name, arguments, ctx) -> ToolResult:
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            shown = _clip(name, 60) if isinstance(name, str) else type(name).__name__
            return ToolResult(False, f"unknown tool '{shown}'; available: {', '.join(self._tools)}")
        problem = validate_arguments(arguments, tool.parameters)
        validator = self._validators.get(tool.name)
        if problem is None and validator is not None:
            err = next(iter(validator.iter_errors(arguments)), None)  # anything the subset missed
            if err is not None:
                where = "/".join(map(str, err.absolute_path)) or "arguments"
                problem = f"invalid argument '{_clip(where, 40)}': {err.validator} check failed"
        if problem is not None:
            return ToolResult(False, f"{tool.name}: {problem}")
        try:
            out = tool.fn(arguments, ctx)
        except ToolError as exc:
            return ToolResult(False, _truncate(f"{tool.name}: {exc}", self.max_result_chars))
        except Exception as exc:  # a bug or an unforeseen input: report it, keep the episode going
            msg = _clip(str(exc), 200)
            return ToolResult(False, f"tool '{tool.name}' failed: {type(exc).__name__}: {msg}")
        return ToolResult(True, _truncate(out if isinstance(out, str) else str(out), self.max_result_chars))


# ------------------------------------------------------------------ built-in tools
def calculator_tool() -> Tool:
    def run(args, ctx):
        try:
            return format_number(evaluate(args["expression"]))
        except CalculatorError as exc:
            raise ToolError(str(exc)) from None

    return Tool(
        "calculator",
        "Evaluate an arithmetic expression exactly (Python syntax: + - * / // % **, parentheses; "
        "functions sqrt, log(x[, base]), log10, log2, exp, sin, cos, tan, abs, round(x[, n]), floor, "
        "ceil, min, max; constants pi, e). Example: (1.5e3 - 200) * sqrt(2).",
        _schema({"expression": {"type": "string", "description": "e.g. 2**10 / 3",
                                "minLength": 1, "maxLength": 500}}, ["expression"]),
        run)


def python_tool() -> Tool:
    def run(args, ctx):
        if ctx.python is None:
            raise ToolError("python is not available in this environment")
        return ctx.python.run(args["code"])

    return Tool(
        "python",
        "Run a Python 3 program in an isolated sandbox (no network; only the task's files in the "
        "working directory; a few seconds of CPU). Returns what it prints (stdout, then stderr). "
        "Each call is a fresh process: print what you need; files written persist between calls.",
        _schema({"code": {"type": "string", "description": "a complete Python program",
                          "minLength": 1, "maxLength": 20000}}, ["code"]),
        run)


def memory_tools() -> list:
    def set_(args, ctx):
        key, value = args["key"], args["value"]
        if key not in ctx.memory and len(ctx.memory) >= MAX_MEMORY_KEYS:
            raise ToolError(f"memory is full ({MAX_MEMORY_KEYS} keys); overwrite an existing key")
        ctx.memory[key] = value
        return f"stored '{key}' ({len(value)} chars)"

    def get(args, ctx):
        key = args["key"]
        if key not in ctx.memory:
            if not ctx.memory:
                raise ToolError(f"no memory key '{key}'; memory is empty")
            known = ", ".join(list(ctx.memory)[:20]) + (", ..." if len(ctx.memory) > 20 else "")
            raise ToolError(_clip(f"no memory key '{key}'; known keys: {known}", 500))
        return ctx.memory[key]

    def list_(args, ctx):
        if not ctx.memory:
            return "memory is empty"
        return "\n".join(f"- {k} ({len(v)} chars)" for k, v in ctx.memory.items())

    key = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS}
    return [
        Tool("memory_set", f"Store a note under a key (overwrites; at most {MAX_MEMORY_KEYS} keys).",
             _schema({"key": key, "value": {"type": "string", "maxLength": MAX_VALUE_CHARS}},
                     ["key", "value"]), set_),
        Tool("memory_get", "Read the note stored under a key.", _schema({"key": key}, ["key"]), get),
        Tool("memory_list", "List the stored keys and the sizes of their notes.", _schema({}), list_),
    ]


def _one_line(text, n: int) -> str:
    return _clip(" ".join(str(text).split()), n)


def search_tools() -> list:
    def search(args, ctx):
        if ctx.index is None:
            raise ToolError("search is not available in this environment")
        k = int(args.get("k", 5))
        hits = list(ctx.index.search(args["query"], k))[:k]
        if not hits:
            return "no results"
        lines = []
        for i, hit in enumerate(hits, 1):
            ctx.add_evidence(hit.doc_id)
            lines.append(f"{i}. {_one_line(hit.title, 200)} ({hit.doc_id}): {_one_line(hit.snippet, 300)}")
        return "\n".join(lines)

    def open_(args, ctx):
        if ctx.corpus is None:
            raise ToolError("open is not available in this environment")
        title = args["title"].strip()
        doc = ctx.corpus.doc(title)
        if doc is None:
            close = _close_titles(title, ctx)
            hint = f"; did you mean: {', '.join(close)}?" if close else "; use search to find titles"
            raise ToolError(f"no document titled '{title}'" + hint)
        ctx.add_evidence(doc.id)
        links = list(getattr(doc, "links", None) or [])
        links_line = _clip("Links: " + ", ".join(map(str, links)), 600) if links else ""
        # cut the body, not the links: the registry would otherwise truncate the tail
        room = MAX_RESULT_CHARS - len(doc.title) - len(links_line) - 100
        text = str(doc.text)
        if len(text) > room:
            text = text[:room] + f"\n[... {len(text) - room} more chars not shown]"
        return f"# {doc.title}\n{text}" + (f"\n{links_line}" if links_line else "")

    return [
        Tool("search", "Search the document collection; returns numbered hits "
                       "'<title> (<doc id>): <snippet>'.",
             _schema({"query": {"type": "string", "minLength": 1, "maxLength": 500},
                      "k": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5,
                            "description": "number of results (1-10, default 5)"}},
                     ["query"]), search),
        Tool("open", "Open a document by its title or doc id; returns its text and links.",
             _schema({"title": {"type": "string", "minLength": 1, "maxLength": 300}}, ["title"]),
             open_),
    ]


def _corpus_titles(corpus):
    """The corpus's titles if it lists them cheaply: a ``titles`` list (or a
    no-argument method returning one), else the ``title`` of each entry of
    ``documents``; None when neither exists."""
    titles = getattr(corpus, "titles", None)
    if callable(titles):
        try:
            titles = titles()
        except TypeError:  # e.g. titles(kind): not a listing of everything
            titles = None
    if titles is None and getattr(corpus, "documents", None) is not None:
        titles = [d.title for d in corpus.documents]
    return titles


def _close_titles(title: str, ctx: ToolContext) -> list:
    """Up to 3 titles near ``title``: difflib over the corpus titles (when
    there are few enough for that to be cheap: ~5 ms for 2000), else (no
    titles, or none close) the index's top hits for the title as a query.
    Suggestions are a nicety: any failure gives []."""
    try:
        titles = _corpus_titles(ctx.corpus)
        if titles is not None and len(titles) <= 20000:
            found = difflib.get_close_matches(title, [str(t) for t in titles], n=3, cutoff=0.6)
            if found:
                return [_clip(t, 80) for t in found]
    except Exception:
        pass
    try:
        if ctx.index is not None:
            return [_clip(str(h.title), 80) for h in list(ctx.index.search(title, 3))[:3]]
    except Exception:
        pass
    return []


def final_answer_tool() -> Tool:
    def run(args, ctx):
        ctx.answer = args["answer"]
        return "answer recorded"

    return Tool("final_answer", "Submit your final answer; this ends the episode.",
                _schema({"answer": {"type": "string", "minLength": 1, "maxLength": MAX_ANSWER_CHARS}},
                        ["answer"]), run)


def default_registry() -> ToolRegistry:
    """Every built-in tool."""
    return ToolRegistry([calculator_tool(), python_tool(), *memory_tools(), *search_tools(),
                         final_answer_tool()])
