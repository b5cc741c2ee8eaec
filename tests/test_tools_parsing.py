"""Tools family: parsing raw model outputs into tool calls / answers / errors,
and a seeded fuzz of parse -> registry.call (neither may ever raise)."""

import json
import random
import string
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from omnigym.environments.tools.parsing import MAX_CALLS, ParsedOutput, ToolCall, parse_model_output
from omnigym.environments.tools.tools import MAX_RESULT_CHARS, ToolContext, ToolResult, default_registry
from omnigym.sandbox import available_backends


def call(name, **arguments):
    return ToolCall(name, arguments)


def calls(*cs):
    return ParsedOutput(calls=tuple(cs))


def answer(text):
    return ParsedOutput(answer=text)


def error(msg):
    return ParsedOutput(error=msg)


SEARCH = '{"name": "search", "arguments": {"query": "capital of France", "k": 3}}'


@pytest.mark.parametrize("text, expected", [
    # --- Qwen / Hermes tags
    (f"<tool_call>\n{SEARCH}\n</tool_call>", calls(call("search", query="capital of France", k=3))),
    (f"I should look this up first.\n<tool_call>\n{SEARCH}\n</tool_call>\nthen I will answer",
     calls(call("search", query="capital of France", k=3))),
    ('<tool_call>{"name": "memory_list", "arguments": {}}</tool_call>\n'
     '<tool_call>{"name": "calculator", "arguments": {"expression": "2**10"}}</tool_call>',
     calls(call("memory_list"), call("calculator", expression="2**10"))),
    (f"<tool_call>\n{SEARCH}", calls(call("search", query="capital of France", k=3))),  # stopped at EOS
    (f'<tool_call>{SEARCH}</tool_call><tool_call>{{"name": "open", "arguments": {{"title": "Paris"}}}}',
     calls(call("search", query="capital of France", k=3), call("open", title="Paris"))),
    (f"<TOOL_CALL>{SEARCH}</TOOL_CALL>", calls(call("search", query="capital of France", k=3))),
    (f"<tool_call>\n```json\n{SEARCH}\n```\n</tool_call>", calls(call("search", query="capital of France", k=3))),
    ('<tool_call>{"name": "memory_list"}</tool_call>', calls(call("memory_list"))),  # no arguments
    ('<tool_call>{"name": "final_answer", "arguments": "{\\"answer\\": \\"Paris\\"}"}</tool_call>',
     calls(call("final_answer", answer="Paris"))),
    ("<think>The user wants the capital.\n<tool_call>{oops</tool_call> is the format</think>\n"
     f"<tool_call>{SEARCH}</tool_call>", calls(call("search", query="capital of France", k=3))),
    (f"reasoning that began in the prompt...</think>\n\n<tool_call>{SEARCH}</tool_call>",
     calls(call("search", query="capital of France", k=3))),
    # --- bare JSON
    (SEARCH, calls(call("search", query="capital of France", k=3))),
    (f"\n\n  {SEARCH}  \n", calls(call("search", query="capital of France", k=3))),
    (f"```json\n{SEARCH}\n```", calls(call("search", query="capital of France", k=3))),
    (f"```\n{SEARCH}\n```", calls(call("search", query="capital of France", k=3))),
    (f"```json\n{SEARCH}", calls(call("search", query="capital of France", k=3))),  # stopped at EOS
    ('{"name": "calculator", "parameters": {"expression": "1+1"}}', calls(call("calculator", expression="1+1"))),
    ('{"type": "function", "function": {"name": "calculator", "arguments": "{\\"expression\\": \\"3*3\\"}"}}',
     calls(call("calculator", expression="3*3"))),
    ('{"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "memory_list", "arguments": "{}"}},'
     ' {"type": "function", "function": {"name": "open", "arguments": {"title": "Paris"}}}]}',
     calls(call("memory_list"), call("open", title="Paris"))),
    ('[{"name": "memory_list", "arguments": {}}, {"name": "open", "parameters": {"title": "Paris"}}]',
     calls(call("memory_list"), call("open", title="Paris"))),
    ('{"name": "memory_list", "arguments": ""}', calls(call("memory_list"))),
    ('{"name": "memory_list", "arguments": null}', calls(call("memory_list"))),
    # --- plain answers
    ("Paris", answer("Paris")),
    ("  The capital of France is Paris.\n", answer("The capital of France is Paris.")),
    ("Final answer: Paris", answer("Paris")),
    ("FINAL ANSWER:\n  Paris ", answer("Paris")),
    ("answer: 42", answer("42")),
    ("<think>easy</think>\n\nParis", answer("Paris")),
    ('{"city": "Paris"}', answer('{"city": "Paris"}')),  # JSON, but not a call
    ("[1, 2, 3]", answer("[1, 2, 3]")),
    ("```python\nprint(1)\n```", answer("```python\nprint(1)\n```")),
    ("{x | x > 0} is the set of positive numbers", answer("{x | x > 0} is the set of positive numbers")),
    ("I would call <tool_caller> here", answer("I would call <tool_caller> here")),
    # --- errors
    ('<tool_call>{"name": "search", "arguments": {"query" "x"}}</tool_call>',
     error("tool call 1: invalid JSON at char 41: Expecting ':' delimiter")),
    (f'<tool_call>{SEARCH}</tool_call><tool_call>{{"name": "open", "arguments": {{"title": "Paris"}}</tool_call>',
     error("tool call 2: invalid JSON at char 48: Expecting ',' delimiter")),
    ('<tool_call>{"arguments": {}}</tool_call>', error("tool call 1: tool call needs a string 'name'")),
    ('<tool_call>{"name": 7, "arguments": {}}</tool_call>', error("tool call 1: tool call needs a string 'name'")),
    ('<tool_call>{"name": "search", "arguments": [1]}</tool_call>',
     error("tool call 1: 'arguments' must be an object, got array")),
    ('<tool_call>{"name": "search", "arguments": "query=x"}</tool_call>',
     error("tool call 1: 'arguments' string: invalid JSON at char 0: Expecting value")),
    ('<tool_call>{"name": "search", "arguments": "[1]"}</tool_call>',
     error("tool call 1: 'arguments' must be an object, got array")),
    ("<tool_call>", error("tool call 1: empty <tool_call> block; put a JSON object with 'name' and 'arguments' inside")),
    ("<tool_call>search capital</tool_call>", error("tool call 1: invalid JSON at char 0: Expecting value")),
    ('<tool_call>"search"</tool_call>', error("tool call 1: a tool call must be a JSON object, got string")),
    ('<tool_call>{"name": "a"}<tool_call>{"name": "b"}</tool_call>',
     error("tool call 1: <tool_call> inside <tool_call>; close each block with </tool_call>")),
    (f"{SEARCH}</tool_call>", error("found </tool_call> without an opening <tool_call>")),
    ('{"name": "search", "arguments": {"query": "x"}', error("invalid JSON at char 46: Expecting ',' delimiter")),
    (f"{SEARCH} and then I will answer", error("invalid JSON at char 72: Extra data")),
    ('{"city": "Par', error("invalid JSON at char 9: Unterminated string starting at")),  # truncated
    ('{"name": "search", "arguments": 5}', error("'arguments' must be an object, got number")),
    ('{"tool_calls": []}', error("'tool_calls' must be a non-empty list of calls")),
    ('[{"name": "memory_list"}, 3]', error("tool call 2: a tool call must be a JSON object, got number")),
    ("", error("empty output")),
    (" \n\t ", error("empty output")),
    ("Answer:", error("empty answer")),
    ("<think>hmm, let me", error("unterminated <think> block: close it with </think>, then give a tool call or an answer")),
    ("<think>all thinking</think>", error("empty output")),
    (None, error("output must be a string, got NoneType")),
    (b'{"name": "x"}', error("output must be a string, got bytes")),
    (42, error("output must be a string, got int")),
    (["a"], error("output must be a string, got list")),
    ("x" * 20001, error("output too long (20001 chars > 20000)")),
    ("[" * 3000 + '"name"' + "]" * 3000, error("JSON nested too deeply")),
])
def test_formats(text, expected):
    assert parse_model_output(text) == expected


def test_limits():
    assert parse_model_output("x" * 50, max_chars=10) == error("output too long (50 chars > 10)")
    many = "".join(f'<tool_call>{{"name": "memory_list"}}</tool_call>' for _ in range(MAX_CALLS + 1))
    assert parse_model_output(many) == error(f"too many tool calls (more than {MAX_CALLS})")
    big = json.dumps({"name": "search", "arguments": {"query": "q" * 1_000_000}})
    assert parse_model_output(big).error == f"output too long ({len(big)} chars > 20000)"
    parsed = parse_model_output(big, max_chars=2_000_000)
    assert parsed.calls[0].arguments["query"] == "q" * 1_000_000
    # errors never echo what they complain about
    bad = '<tool_call>{"name": "' + "n" * 100_000 + '", "arguments": {"q": }}</tool_call>'
    assert len(parse_model_output(bad, max_chars=10**6).error) < 300


def test_degenerate_repetition_is_fast():
    # a model stuck repeating a tag must not make the parser quadratic
    for text in ("<think>" * 2800, "<tool_call>" * 1800, "x</think>" * 2200, "<tool_call>{" * 1600):
        t = time.perf_counter()
        out = parse_model_output(text)
        assert time.perf_counter() - t < 0.2 and out.error, out


# ------------------------------------------------------------------ fuzzing
TOOL_NAMES = ["calculator", "python", "memory_set", "memory_get", "memory_list", "search", "open",
              "final_answer"]
PY_SNIPPETS = ["print(1 + 1)", "import os\nprint(sorted(os.listdir('.')))", "print(open('data.csv').read())",
               "1/0", "import sys; sys.exit(2)", "print('x' * 50000)", "open('out.txt', 'w').write('hi')",
               "import socket; socket.socket().connect(('1.1.1.1', 80))", "print(input())", "print('\\ud800')"]
EXPRESSIONS = ["1+2", "2**10", "9**9**9", "__import__('os')", "sqrt(-1)", "1/0", "(" * 300, "x", "log(8, 2)",
               "10**10**10", "round(1, -10**9)", "1e999", "().__class__", "lambda: 0", "2^3"]
JUNK_VALUES = [None, True, 0, -1, 3.5, 1e308, "", "x", [], [1, "a"], {}, {"a": {"b": []}}, "\x00", "\ud800"]
FRAGMENTS = ['{', '}', '[', ']', '"', ':', ',', '"name"', '"arguments"', '"parameters"', '"function"',
             '"tool_calls"', '"type"', '"search"', '"query"', '"x"', '1', '-0.5e3', 'null', 'true', '\\',
             '\\u00', '<tool_call>', '</tool_call>', '<think>', '</think>', '```json', '```', '\n', ' ',
             'Final answer:', 'Answer:', 'NaN', 'Infinity', '"\\ud800"']


def _valid_arguments(rng, name):
    if name == "calculator":
        return {"expression": rng.choice(EXPRESSIONS)}
    if name == "python":
        return {"code": rng.choice(PY_SNIPPETS)}
    if name == "memory_set":
        return {"key": rng.choice(["a", "b", "k" * rng.randint(1, 150)]), "value": "v" * rng.randint(0, 5000)}
    if name == "memory_get":
        return {"key": rng.choice(["a", "b", "zz"])}
    if name == "memory_list":
        return {}
    if name == "search":
        return {"query": rng.choice(["capital", "paris", "zebra", ""]), "k": rng.choice([1, 5, 10, 0, 11, 2.0])}
    if name == "open":
        return {"title": rng.choice(["Paris", "d1", "Franse", "nothing"])}
    return {"answer": rng.choice(["Paris", "", "42"])}


def _render(rng, name, args):
    """One call in one of the supported formats."""
    fmt = rng.randrange(6)
    if fmt == 0:
        return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"
    if fmt == 1:
        return json.dumps({"name": name, "arguments": args})
    if fmt == 2:
        return json.dumps({"name": name, "parameters": args})
    if fmt == 3:
        return json.dumps({"type": "function", "function": {"name": name, "arguments": json.dumps(args)}})
    if fmt == 4:
        return "```json\n" + json.dumps({"name": name, "arguments": args}) + "\n```"
    return "<think>ok</think><tool_call>" + json.dumps({"name": name, "arguments": args})


def _valid(rng):
    name = rng.choice(TOOL_NAMES)
    return _render(rng, name, _valid_arguments(rng, name))


def _nested(depth):
    """A call whose arguments hold a list nested ``depth`` deep."""
    return '{"name": "search", "arguments": {"query": "q", "deep": ' + "[" * depth + "]" * depth + "}}"


def fuzz_outputs(seed=0, n=10_000):
    """(text, max_chars) pairs: a seeded mix of valid, broken and hostile outputs."""
    rng = random.Random(seed)
    out = []
    # every truncation of a few valid calls (the model stopped anywhere)
    for _ in range(8):
        text = _valid(rng)
        out += [(text[:i], 20000) for i in range(len(text) + 1)]
    kinds = ["mutate", "wrong_types", "unknown_tool", "deep", "bytes", "unicode", "fragments", "tags",
             "multi", "answer", "mutate", "fragments"]
    while len(out) < n - 20:
        kind = rng.choice(kinds)
        if kind == "mutate":  # random edits of a valid call
            chars = list(_valid(rng))
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(chars))
                op = rng.randrange(3)
                if op == 0:
                    del chars[i]
                elif op == 1:
                    chars.insert(i, rng.choice('{}[]",:\\ <>/' + string.ascii_letters))
                else:
                    chars[i] = rng.choice(string.printable)
            text = "".join(chars)
        elif kind == "wrong_types":
            name = rng.choice(TOOL_NAMES + JUNK_VALUES)
            args = rng.choice(JUNK_VALUES + [_valid_arguments(rng, rng.choice(TOOL_NAMES))])
            key = rng.choice(["arguments", "parameters", "args"])
            obj = {"name": name, key: args} if rng.random() < 0.8 else {key: args}
            text = rng.choice(["<tool_call>{}</tool_call>", "{}", "```json\n{}\n```"]).format(json.dumps(obj))
        elif kind == "unknown_tool":
            name = rng.choice(["calc", "Search", "python3", "rm -rf /", "", " ", "x" * 300, "\u202e", "final answer"])
            text = _render(rng, name, {"query": "q"})
        elif kind == "deep":
            depth = rng.choice([10, 100, 500, 1000, 5000])
            text = rng.choice(["<tool_call>{}</tool_call>", "{}"]).format(_nested(depth)) if rng.random() < 0.7 \
                else "[" * depth
        elif kind == "bytes":
            raw = rng.randbytes(rng.randint(0, 300))
            text = raw.decode(rng.choice(["utf-8", "latin-1"]),
                              errors=rng.choice(["replace", "ignore", "surrogateescape"]))
        elif kind == "unicode":
            text = "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(0, 100)))
        elif kind == "fragments":
            text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 40)))
        elif kind == "tags":
            tag = rng.choice(["<tool_call>", "</tool_call>", "<tool_call></tool_call>", "<think>", "</think>",
                              "<tool_call>\n\n</tool_call>", "<tool_call>null</tool_call>",
                              "<tool_call>[]</tool_call>"])
            text = rng.choice(["", "Let me think. ", "Answer: "]) + tag * rng.randint(1, 3) + rng.choice(["", " done"])
        elif kind == "multi":  # several calls, tagged (sometimes mixed formats) or as a JSON list
            names = rng.choices(TOOL_NAMES, k=rng.randint(2, 40))
            if rng.random() < 0.5:
                text = "\n".join(_render(rng, nm, _valid_arguments(rng, nm)) for nm in names)
            else:
                text = json.dumps([{"name": nm, "arguments": _valid_arguments(rng, nm)} for nm in names])
        else:
            text = rng.choice(["", "Final answer: ", "answer:", "  "]) + rng.choice(
                ["Paris", "42", "I don't know.", "{not json}", "[1, 2]", '{"city": "Paris"}', "\n\n"])
        out.append((text, 20000))
    # huge arguments (1 MB strings), let through the length check so the registry sees them
    for i in range(10):
        name = rng.choice(TOOL_NAMES)
        args = {k: "A" * 1_000_000 for k in (_valid_arguments(rng, name) or {"a": 0})}
        out.append((_render(rng, name, args), 3_000_000))
    out += [(v, 20000) for v in (None, b"<tool_call>", 5, 3.5, ["x"], {"name": "x"}, object(), bytearray(b"x"),
                                 True, ("a",))]
    return out[:n]


class FakeIndex:
    def search(self, query, k):
        if "zebra" in query:
            return []
        return [SimpleNamespace(doc_id=f"d{i}", title=f"Doc {i}", snippet="some text", score=1.0) for i in range(k)]


class FakeCorpus:
    titles = ["Paris", "France"]

    def doc(self, key):
        if key in ("Paris", "d0"):
            return SimpleNamespace(id="d0", title="Paris", kind="article", text="Paris is a city.", links=["France"])
        return None


def test_fuzz_parse_and_call():
    outputs = fuzz_outputs()
    assert len(outputs) == 10_000
    reg = default_registry()
    ctx = ToolContext(index=FakeIndex(), corpus=FakeCorpus())
    py_ctx = None
    if available_backends():
        from omnigym.environments.tools.python_tool import PythonTool

        py_ctx = ToolContext(index=ctx.index, corpus=ctx.corpus,
                             python=PythonTool({"data.csv": "a\n1\n"}, timeout_s=2.0))
    python_budget = 20  # real sandboxed runs; other python calls see "not available"
    stats, results = Counter(), Counter()
    t0 = time.perf_counter()
    try:
        for text, max_chars in outputs:
            parsed = parse_model_output(text, max_chars=max_chars)
            assert isinstance(parsed, ParsedOutput)
            kinds = [bool(parsed.calls), parsed.answer is not None, parsed.error is not None]
            assert sum(kinds) == 1, (text, parsed)
            if parsed.error is not None:
                stats["error"] += 1
                assert isinstance(parsed.error, str) and 0 < len(parsed.error) < 300
            elif parsed.answer is not None:
                stats["answer"] += 1
                assert isinstance(parsed.answer, str) and parsed.answer and parsed.answer == parsed.answer.strip()
            else:
                stats["calls"] += 1
                assert len(parsed.calls) <= MAX_CALLS
                for c in parsed.calls:
                    assert isinstance(c, ToolCall) and isinstance(c.name, str) and isinstance(c.arguments, dict)
                    use = ctx
                    if c.name == "python" and python_budget > 0 and py_ctx is not None:
                        use, python_budget = py_ctx, python_budget - 1
                    r = reg.call(c.name, c.arguments, use)
                    assert isinstance(r, ToolResult) and isinstance(r.ok, bool) and isinstance(r.content, str)
                    assert len(r.content) <= MAX_RESULT_CHARS + 100
                    results[(c.name if c.name in reg else "<unknown>", r.ok)] += 1
    finally:
        if py_ctx is not None:
            py_ctx.python.close()
    elapsed = time.perf_counter() - t0
    print(f"\nfuzz: {len(outputs)} outputs in {elapsed:.1f}s: {dict(stats)}; python runs: {20 - python_budget}")
    print("tool results (name, ok): " + ", ".join(f"{k}={v}" for k, v in sorted(results.items())))
    # the mix really exercises every outcome
    assert min(stats["calls"], stats["answer"], stats["error"]) > 500, stats
    assert results[("calculator", True)] and results[("calculator", False)] and results[("<unknown>", False)]
    if py_ctx is not None:
        assert python_budget == 0
