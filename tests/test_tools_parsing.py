"""Tools family: parsing raw model outputs into tool calls / answers / errors,
in every open model family's native format (real outputs of each family are
in tests/test_tool_call_corpus.py), and a seeded fuzz of parse -> registry.call
(neither may ever raise)."""

import json
import random
import string
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from omnigym import info_keys as K
from omnigym.environments.tools.parsing import MAX_CALLS, ParsedOutput, ToolCall, parse_model_output
from omnigym.environments.tools.tools import MAX_RESULT_CHARS, ToolContext, ToolResult, default_registry
from omnigym.registry import make
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
    # a JSON call inside prose is still a call (Llama 3.x writes text around it)
    (f"{SEARCH} and then I will answer", calls(call("search", query="capital of France", k=3))),
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


DS = dict(calls="<｜tool▁calls▁begin｜>", call="<｜tool▁call▁begin｜>", sep="<｜tool▁sep｜>", end="<｜tool▁call▁end｜>",
          calls_end="<｜tool▁calls▁end｜>")
CALC = call("calculator", expression="2**10")
TOOLS = default_registry().specs()


@pytest.mark.parametrize("text, expected", [
    # --- end of turn, role headers, reasoning
    ("Paris<|eot_id|>whatever follows is not this turn", answer("Paris")),
    ("<|im_start|>assistant\n<tool_call>\n{'name': 'calculator', 'arguments': {'expression': '2**10'}}\n</tool_call>"
     "<|im_end|>\n<|im_start|>user\nhi", calls(CALC)),
    ('<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "calculator", "parameters": {"expression": "2**10"}}'
     "<|eot_id|>", calls(CALC)),
    ("The tag </s> stays when prose follows it", answer("The tag </s> stays when prose follows it")),
    ("[THINK]still thinking",
     error("unterminated <think> block: close it with </think>, then give a tool call or an answer")),
    ("<|START_THINKING|>plan<|END_THINKING|><|START_RESPONSE|>Paris<|END_RESPONSE|>", answer("Paris")),
    # --- JSON shapes
    ('{"tool_call": {"name": "calculator", "arguments": {"expression": "2**10"}}}', calls(CALC)),
    ('{"function": "calculator", "arguments": {"expression": "2**10"}}', calls(CALC)),
    ("{'name': 'calculator', 'arguments': {'expression': '2**10'}}", calls(CALC)),  # Python dict, no tags
    ('I know {"name": "Ada", "born": 1815} already.', answer('I know {"name": "Ada", "born": 1815} already.')),
    ('<tool_call>{"name": "memory_list"} and then more words</tool_call>',
     error("tool call 1: unexpected text after the call at char 24; put only the JSON call inside "
           "<tool_call></tool_call>")),
    ("<tool_call>{'name': 'x', 'arguments': {1: 2}}</tool_call>",
     error("tool call 1: invalid JSON at char 1: Expecting property name enclosed in double quotes")),
    # --- pythonic and Llama built-ins
    ("calculator(expression='2**10')", calls(CALC)),  # no brackets: still a call
    ("sqrt(2)", answer("sqrt(2)")),  # positional: an expression, not a call
    ("[calculator('2**10')]", error("tool call 1: pass the arguments of calculator by name: calculator(arg=value)")),
    ("[calculator(expression=x)]",
     error("tool call 1: argument 'expression' of calculator must be a literal (string, number, True/False/None, "
           "list or dict)")),
    ("[calculator(expression='1'), 3]", error("tool call 1: expected a list of calls [name(arg=value), ...]")),
    ("<|python_tag|>", error('empty <|python_tag|>; write <|python_tag|>{"name": ..., "parameters": {...}}')),
    ("<|python_tag|>print(2**10)", calls(call("python", code="print(2**10)"))),
    # --- Mistral, DeepSeek, Qwen3-Coder, harmony
    ("[TOOL_CALLS]", error('tool call 1: nothing after [TOOL_CALLS]; write [TOOL_CALLS][{"name": ..., "arguments": '
                           '{...}}] or [TOOL_CALLS]name[ARGS]{...}')),
    ('[TOOL_CALLS]calculator[ARGS]{"expression": "2**10"}[TOOL_CALLS]memory_list[ARGS]{}',
     calls(CALC, call("memory_list"))),
    (f"{DS['calls']}{DS['call']}calculator{DS['end']}{DS['calls_end']}",
     error(f"tool call 1: expected {DS['call']}function{DS['sep']}NAME\\n```json\\n{{...}}\\n```{DS['end']}")),
    (f'{DS["calls"]}{DS["call"]}function{DS["sep"]}calculator\n```json\n{{"expression": "2**10"}}\n```',
     calls(CALC)),  # stopped at EOS before the end tokens
    ("<tool_call>\n<function=calculator>\n<parameter=>\n1\n</parameter>\n</function>\n</tool_call>",
     error("tool call 1: a parameter needs a name: <parameter=NAME>value</parameter>")),
    ("<parameter=expression>2</parameter>",
     error("found <parameter= but no complete tool call; write <function=NAME><parameter=KEY>value</parameter>"
           "</function>")),
    ("<|channel|>analysis<|message|>Need the tool.<|end|><|start|>assistant<|channel|>commentary to=python"
     "<|message|>print(2**10)<|call|>", calls(call("python", code="print(2**10)"))),
    ("<|channel|>analysis<|message|>thinking only",
     error("no tool call and no final message; end with <|channel|>final<|message|>your answer")),
    # --- limits
    ("[" + ", ".join(["memory_list()"] * (MAX_CALLS + 1)) + "]", error(f"too many tool calls (more than {MAX_CALLS})")),
    ("[" + "f" * 201 + "(a=1)]", error("tool call 1: tool name too long (201 chars)")),
])
def test_native_formats(text, expected):
    assert parse_model_output(text) == expected


def test_xml_values_are_typed_by_the_tool_schema():
    xml = ("<tool_call>\n<function=search>\n<parameter=query>\n2024\n</parameter>\n<parameter=k>\n3\n</parameter>\n"
           "</function>\n</tool_call>")
    # without schemas a value is read as JSON when it is JSON ...
    assert parse_model_output(xml) == calls(call("search", query=2024, k=3))
    # ... with the tools on offer each value gets its parameter's type
    assert parse_model_output(xml, tools=TOOLS) == calls(call("search", query="2024", k=3))
    # a value that does not fit its type stays text (the registry then names the problem)
    bad = xml.replace("\n3\n", "\nthree\n")
    assert parse_model_output(bad, tools=TOOLS) == calls(call("search", query="2024", k="three"))
    # tool specs of any shape are accepted, and junk specs are ignored rather than raised on
    bare = [{"name": "search", "parameters": {"properties": {"query": {"type": "string"}}}}]
    assert parse_model_output(xml, tools=bare).calls[0].arguments["query"] == "2024"
    for junk in ([None, 3, "x", {"function": "search"}, {"name": "search", "parameters": []}], {"a": 1}, "search"):
        assert parse_model_output(xml, tools=junk).calls[0].name == "search"


@pytest.mark.parametrize("render", [
    lambda e: f'<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{e}"}}}}\n</tool_call>',
    lambda e: f"<tool_call>\n<function=calculator>\n<parameter=expression>\n{e}\n</parameter>\n</function>\n"
              "</tool_call>",
    lambda e: f'{{"name": "calculator", "parameters": {{"expression": "{e}"}}}}<|eot_id|>',
    lambda e: f'<|python_tag|>{{"name": "calculator", "parameters": {{"expression": "{e}"}}}}<|eom_id|>',
    lambda e: f"[calculator(expression='{e}')]<|eot_id|>",
    lambda e: f'[TOOL_CALLS]calculator[ARGS]{{"expression": "{e}"}}</s>',
    lambda e: f'{DS["calls"]}{DS["call"]}function{DS["sep"]}calculator\n```json\n{{"expression": "{e}"}}\n```'
              f'{DS["end"]}{DS["calls_end"]}<｜end▁of▁sentence｜>',
    lambda e: f'<function=calculator>{{"expression": "{e}"}}</function><|eom_id|>',
], ids=["qwen", "qwen3-coder", "llama3-json", "python-tag", "pythonic", "mistral", "deepseek", "function-tag"])
def test_native_calls_drive_the_env(render):
    """An env step reads every native format: the calculator runs, no invalid action."""
    env = make("tools/Arithmetic-v0")
    _, info = env.reset(seed=0)
    expression = info[K.INSTRUCTION].split("What is ")[1].split("?")[0]
    # with the env's tool specs a Qwen3-Coder value such as "12" keeps the string type the calculator wants
    parsed = parse_model_output(render(expression), tools=info[K.TOOLS])
    assert parsed.calls == (call("calculator", expression=expression),)
    obs, _, _, _, info = env.step(render(expression))
    assert "[tool calculator]" in obs and info[K.INVALID_ACTION] is False, obs
    env.close()


def test_limits():
    assert parse_model_output("x" * 50, max_chars=10) == error("output too long (50 chars > 10)")
    many = "".join('<tool_call>{"name": "memory_list"}</tool_call>' for _ in range(MAX_CALLS + 1))
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
    # every native format's markers, repeated up to the length limit
    units = ["[TOOL_CALLS]", "[TOOL_CALLS]a[ARGS]{", "<function=a>", "<function=a>{", "<parameter=a>", "[a(", "x [a(b=",
             "[a(b=[", '{"name": ', "{'name': [", '{"type": {"a": ', "<|python_tag|>", "<|python_tag|>{", DS["calls"],
             DS["call"] + "f" + DS["sep"] + "a\n", "<|tool_call_begin|>",
             "<|tool_call_begin|>a<|tool_call_argument_begin|>{",
             "<|channel|>", "<|channel|>x to=functions.a<|message|>{", "<|python_start|>[a(b=1)", "</s>", "[THINK]",
             "```json\n{", "<tool_call><function=a><parameter=b>"]
    for unit in units:
        text = unit * (20000 // len(unit))
        t = time.perf_counter()
        out = parse_model_output(text)
        assert time.perf_counter() - t < 0.2, unit
        assert sum([bool(out.calls), out.answer is not None, out.error is not None]) == 1, unit


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
             'Final answer:', 'Answer:', 'NaN', 'Infinity', '"\\ud800"', "'", '[TOOL_CALLS]', '[ARGS]',
             '<function=search>', '</function>', '<parameter=query>', '</parameter>', '<|python_tag|>', '[search(',
             'query=', ')', 'True', 'None', DS["calls"], DS["call"], DS["sep"], DS["end"], '<|eot_id|>', '</s>',
             '<|im_end|>', '<|tool_call_begin|>', '<|channel|>', 'to=functions.search', '<|message|>', '[THINK]']


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
    fmt = rng.randrange(13)
    if fmt >= 6:
        return _render_native(fmt, name, args)
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


def _render_native(fmt, name, args):
    """One call as a family writes it natively (Qwen3-Coder, Mistral, Llama, DeepSeek, Hermes)."""
    if fmt == 6:
        params = "".join(f"<parameter={k}>\n{v if isinstance(v, str) else json.dumps(v)}\n</parameter>\n"
                         for k, v in args.items())
        return f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>"
    if fmt == 7:
        return f"[TOOL_CALLS]{name}[ARGS]{json.dumps(args)}</s>"
    if fmt == 8:
        return f"[{name}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")]<|eot_id|>"
    if fmt == 9:
        return (f'{DS["calls"]}{DS["call"]}function{DS["sep"]}{name}\n```json\n{json.dumps(args)}\n```'
                f'{DS["end"]}{DS["calls_end"]}')
    if fmt == 10:
        return "<|python_tag|>" + json.dumps({"name": name, "parameters": args}) + "<|eom_id|>"
    if fmt == 11:
        return "<tool_call>\n" + repr({"name": name, "arguments": args}) + "\n</tool_call><|im_end|>"
    return f"<function={name}>{json.dumps(args)}</function>"


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
