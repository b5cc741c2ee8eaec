"""Tools family: the registry, the built-in tools, the calculator and the
sandboxed python tool.  Parsing (and the fuzzing of parse + call) is in
test_tools_parsing.py."""

import builtins
import json
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from omnigym.environments.tools.calculator import CalculatorError, evaluate, format_number
from omnigym.environments.tools.tools import (MAX_RESULT_CHARS, Tool, ToolContext, ToolError,
                                              ToolRegistry, ToolResult, calculator_tool,
                                              default_registry, validate_arguments)
from omnigym.sandbox import SandboxConfig, SandboxUnavailable, available_backends

needs_sandbox = pytest.mark.skipif(not available_backends(), reason="neither bubblewrap nor unshare works here")
REPO = Path(__file__).resolve().parents[1]


class FakeIndex:
    """Stand-in for the BM25 index (only the tool plumbing is tested here)."""

    def __init__(self, docs):
        self.docs = docs

    def search(self, query, k):
        words = set(query.lower().split())
        hits = [SimpleNamespace(doc_id=d.id, title=d.title, snippet=d.text[:40], score=1.0)
                for d in self.docs if words & set(d.text.lower().split())]
        return hits[:k]


class FakeCorpus:
    def __init__(self, docs):
        self.by_key = {d.id: d for d in docs} | {d.title: d for d in docs}
        self.titles = [d.title for d in docs]

    def doc(self, key):
        return self.by_key.get(key)


DOCS = [SimpleNamespace(id=f"d{i}", title=t, kind="article", text=x, links=ls) for i, (t, x, ls) in enumerate([
    ("Paris", "Paris is the capital of France.", ["France"]),
    ("France", "France is a country in Europe. Its capital is Paris.", ["Paris", "Europe"]),
    ("Europe", "Europe is a continent.", []),
])]


@pytest.fixture
def ctx():
    return ToolContext(index=FakeIndex(DOCS), corpus=FakeCorpus(DOCS))


@pytest.fixture(scope="module")
def reg():
    return default_registry()


# ------------------------------------------------------------------ specs
def test_specs_are_openai_function_specs(reg):
    assert reg.names == ["calculator", "python", "memory_set", "memory_get", "memory_list",
                         "search", "open", "final_answer"]
    specs = reg.specs()
    json.dumps(specs)  # chat templates serialise them
    jsonschema = pytest.importorskip("jsonschema")
    for spec in specs:
        assert set(spec) == {"type", "function"} and spec["type"] == "function"
        fn = spec["function"]
        assert set(fn) == {"name", "description", "parameters"}
        assert fn["name"].isidentifier() and fn["description"]
        params = fn["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert set(params["required"]) <= set(params["properties"])
        jsonschema.Draft202012Validator.check_schema(params)


def test_subset_and_unknown_tool(reg, ctx):
    sub = reg.subset(["calculator", "final_answer"])
    assert sub.names == ["calculator", "final_answer"] and len(sub.specs()) == 2
    r = sub.call("python", {"code": "print(1)"}, ctx)
    assert r == ToolResult(False, "unknown tool 'python'; available: calculator, final_answer")
    assert not sub.call("x" * 100_000, {}, ctx).ok and len(sub.call("x" * 100_000, {}, ctx).content) < 200
    assert not sub.call(None, {}, ctx).ok
    with pytest.raises(KeyError):
        reg.subset(["nope"])
    with pytest.raises(ValueError):
        ToolRegistry([calculator_tool(), calculator_tool()])


@pytest.mark.parametrize("name, args, expected", [
    ("calculator", {}, "calculator: missing required argument 'expression'"),
    ("calculator", {"expression": "1", "x": 2}, "calculator: unexpected argument 'x' (allowed: expression)"),
    ("calculator", {"expression": 5}, "calculator: argument 'expression' must be a string, got integer"),
    ("calculator", {"expression": "1" * 1_000_000},
     "calculator: argument 'expression' is too long (1000000 chars > 500)"),
    ("calculator", {"expression": ""}, "calculator: argument 'expression' must not be empty"),
    ("search", {"query": "paris", "k": 0}, "search: argument 'k' must be >= 1"),
    ("search", {"query": "paris", "k": 11}, "search: argument 'k' must be <= 10"),
    ("search", {"query": "paris", "k": True}, "search: argument 'k' must be an integer, got boolean"),
    ("search", {"query": "paris", "k": "3"}, "search: argument 'k' must be an integer, got string"),
    ("memory_list", {"a": 1}, "memory_list: unexpected argument 'a' (allowed: none)"),
    ("memory_set", [1], "memory_set: arguments must be an object, got array"),
    ("final_answer", {"answer": None}, "final_answer: argument 'answer' must be a string, got null"),
])
def test_argument_validation(reg, ctx, name, args, expected):
    r = reg.call(name, args, ctx)
    assert r == ToolResult(False, expected)


def test_subset_validator_without_jsonschema():
    # the built-in validator alone (what runs when jsonschema is not installed)
    schema = {"type": "object", "properties": {"mode": {"type": "string", "enum": ["a", "b"]},
                                               "x": {"type": "number"}},
              "required": ["mode"], "additionalProperties": False}
    assert validate_arguments({"mode": "a", "x": 1.5}, schema) is None
    assert validate_arguments({"mode": "a", "x": 2}, schema) is None
    assert validate_arguments({"mode": "c"}, schema) == "argument 'mode' must be one of a, b"
    assert validate_arguments({"mode": "a", "x": "1"}, schema) == "argument 'x' must be a number, got string"
    assert validate_arguments("x", schema) == "arguments must be an object, got string"


def test_tool_errors_exceptions_and_truncation(ctx):
    def user_error(args, ctx):
        raise ToolError("that is not allowed")

    def bug(args, ctx):
        raise RuntimeError("boom " * 1000)

    empty = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    reg = ToolRegistry([Tool("user_error", "d", empty, user_error), Tool("bug", "d", empty, bug),
                        Tool("long", "d", empty, lambda a, c: "y" * 10_000),
                        Tool("number", "d", empty, lambda a, c: 42)])
    assert reg.call("user_error", {}, ctx) == ToolResult(False, "user_error: that is not allowed")
    r = reg.call("bug", {}, ctx)
    assert not r.ok and r.content.startswith("tool 'bug' failed: RuntimeError: boom boom") and len(r.content) < 300
    r = reg.call("long", {}, ctx)
    assert r.ok and len(r.content) < MAX_RESULT_CHARS + 100 and r.content.endswith("[... truncated 6000 more chars]")
    assert reg.call("number", {}, ctx) == ToolResult(True, "42")


# ------------------------------------------------------------------ calculator
@pytest.mark.parametrize("expr, value", [
    ("1 + 2 * 3", "7"), ("2**10", "1024"), ("7 // 2", "3"), ("7 / 2", "3.5"), ("-7 % 3", "2"),
    ("1_000_000 * 3", "3000000"), ("(1 + 2) * -3", "-9"), ("+5", "5"), ("2 ** -1", "0.5"),
    ("sqrt(16)", "4"), ("sqrt(2)", "1.41421356237"), ("log(8, 2)", "3"), ("log(e)", "1"),
    ("log10(1000)", "3"), ("exp(0)", "1"), ("sin(0)", "0"), ("cos(pi)", "-1"), ("tan(0)", "0"),
    ("abs(-2.5)", "2.5"), ("round(2.567, 2)", "2.57"), ("round(2.5)", "2"), ("floor(-1.5)", "-2"),
    ("ceil(1.2)", "2"), ("min(3, 1, 2)", "1"), ("max(3, 1.5)", "3"), ("pi", "3.14159265359"),
    ("0.1 + 0.2", "0.3"), ("1 / 3", "0.333333333333"), ("1e20 * 10", "1e+21"), ("2**100", str(2**100)),
    ("-0.0", "0"),
])
def test_calculator_values(expr, value):
    assert format_number(evaluate(expr)) == value


@pytest.mark.parametrize("expr, message", [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__('os').system('echo hacked')", "attribute access is not allowed"),
    ("(1).__class__", "attribute access is not allowed"),
    ("math.sqrt(4)", "attribute access is not allowed"),
    ("lambda: 1", "unsupported syntax: Lambda"),
    ("x + 1", "unknown name 'x'"),
    ("open", "unknown name 'open'"),
    ("[1, 2][0]", "unsupported syntax"),
    ("'a' * 3", "only numbers are allowed"),
    ("True + 1", "only numbers are allowed"),
    ("9**9**9", "result too large"), ("10**10**10", "result too large"), ("2**4000", "result too large"),
    ("2.0**5000", "result too large"), ("exp(1000)", "result too large"), ("1e999", "not finite"),
    ("round(1, -10**9)", "round(x, n)"), ("(-8) ** 0.5", "not a real number"),
    ("1 / 0", "division by zero"), ("5 % 0", "division by zero"), ("sqrt(-1)", "math domain error in sqrt()"),
    ("log(0)", "math domain error in log()"), ("2 ^ 3", "use **"), ("1,234", "tuples are not supported"),
    ("1 +", "syntax error"), ("", "empty expression"), ("1" * 501, "expression too long"),
    ("-" * 300 + "1", "expression too complex"), ("+".join(["1"] * 200), "expression too complex"),
    ("(" * 240 + "1" + ")" * 240, "too many nested parentheses"), ("max(1)", "takes 2 to 50 argument(s)"),
    ("sqrt(x=4)", "positional numbers only"), ("1 < 2", "comparisons are not supported"),
    ("[x for x in ()]", "unsupported syntax"), ("f'{1}'", "unsupported syntax: JoinedStr"),
])
def test_calculator_refusals(monkeypatch, expr, message):
    def forbidden(*a, **k):
        raise AssertionError("the calculator must never call eval/exec")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    t = time.perf_counter()
    with pytest.raises(CalculatorError) as info:
        evaluate(expr)
    assert time.perf_counter() - t < 0.5  # refused up front, never computed
    assert message in str(info.value) and len(str(info.value)) < 300


def test_calculator_tool(reg, ctx):
    assert reg.call("calculator", {"expression": "(1.5e3 - 200) * 2"}, ctx) == ToolResult(True, "2600")
    r = reg.call("calculator", {"expression": "9**9**9"}, ctx)
    assert not r.ok and r.content.startswith("calculator: result too large")
    with pytest.raises(CalculatorError):
        evaluate(None)


# ------------------------------------------------------------------ memory, answer, search, open
def test_memory_tools(reg, ctx):
    assert reg.call("memory_list", {}, ctx).content == "memory is empty"
    assert reg.call("memory_get", {"key": "a"}, ctx) == ToolResult(False, "memory_get: no memory key 'a'; memory is empty")
    assert reg.call("memory_set", {"key": "city", "value": "Paris"}, ctx) == ToolResult(True, "stored 'city' (5 chars)")
    assert reg.call("memory_set", {"key": "n", "value": "42"}, ctx).ok
    assert reg.call("memory_get", {"key": "city"}, ctx) == ToolResult(True, "Paris")
    assert reg.call("memory_list", {}, ctx).content == "- city (5 chars)\n- n (2 chars)"
    assert reg.call("memory_get", {"key": "x"}, ctx).content == "memory_get: no memory key 'x'; known keys: city, n"
    assert not reg.call("memory_set", {"key": "k" * 101, "value": "v"}, ctx).ok
    assert "too long" in reg.call("memory_set", {"key": "k", "value": "v" * 5000}, ctx).content

    branch = ctx.copy()
    reg.call("memory_set", {"key": "city", "value": "Lyon"}, branch)
    assert ctx.memory["city"] == "Paris" and branch.memory["city"] == "Lyon"
    assert branch.index is ctx.index and branch.corpus is ctx.corpus

    for i in range(98):
        assert reg.call("memory_set", {"key": f"k{i}", "value": "v"}, ctx).ok
    r = reg.call("memory_set", {"key": "one-too-many", "value": "v"}, ctx)
    assert r == ToolResult(False, "memory_set: memory is full (100 keys); overwrite an existing key")
    assert reg.call("memory_set", {"key": "k0", "value": "w"}, ctx).ok  # overwriting still works
    r = reg.call("memory_get", {"key": "zz"}, ctx)
    assert not r.ok and r.content.endswith(", ...") and len(r.content) < 600


def test_final_answer(reg, ctx):
    assert reg.call("final_answer", {"answer": "Paris"}, ctx) == ToolResult(True, "answer recorded")
    assert ctx.answer == "Paris"
    assert not reg.call("final_answer", {"answer": ""}, ctx).ok


def test_search_and_open(reg, ctx):
    r = reg.call("search", {"query": "capital", "k": 5}, ctx)
    assert r.ok and r.content.splitlines() == [
        "1. Paris (d0): Paris is the capital of France.",
        "2. France (d1): France is a country in Europe. Its capit",
    ]
    assert ctx.evidence == ["d0", "d1"]
    assert reg.call("search", {"query": "capital", "k": 1.0}, ctx).content.count("\n") == 0  # 1.0 is an integer
    assert reg.call("search", {"query": "zebra"}, ctx) == ToolResult(True, "no results")

    r = reg.call("open", {"title": "Europe"}, ctx)
    assert r == ToolResult(True, "# Europe\nEurope is a continent.")
    assert reg.call("open", {"title": "d1"}, ctx).content == \
        "# France\nFrance is a country in Europe. Its capital is Paris.\nLinks: Paris, Europe"
    assert ctx.evidence == ["d0", "d1", "d2"]  # in order, no duplicates
    r = reg.call("open", {"title": "Franse"}, ctx)
    assert r == ToolResult(False, "open: no document titled 'Franse'; did you mean: France?")

    bare = ToolContext()
    assert reg.call("search", {"query": "x"}, bare) == ToolResult(False, "search: search is not available in this environment")
    assert not reg.call("open", {"title": "x"}, bare).ok
    assert reg.call("python", {"code": "print(1)"}, bare) == ToolResult(False, "python: python is not available in this environment")


def test_open_suggests_from_the_index_when_the_corpus_lists_no_titles(reg):
    class NoTitles:
        def doc(self, key):
            return None

    ctx = ToolContext(index=FakeIndex(DOCS), corpus=NoTitles())
    r = reg.call("open", {"title": "capital"}, ctx)
    assert r == ToolResult(False, "open: no document titled 'capital'; did you mean: Paris, France?")
    assert ctx.evidence == []  # suggestions are not evidence
    r = reg.call("open", {"title": "zebra"}, ToolContext(corpus=NoTitles()))
    assert r == ToolResult(False, "open: no document titled 'zebra'; use search to find titles")

    class ListsDocuments(NoTitles):  # the real Corpus: .documents, and titles(kind) needs a kind
        documents = DOCS

        def titles(self, kind):
            return []

    r = reg.call("open", {"title": "Europa"}, ToolContext(corpus=ListsDocuments()))
    assert r == ToolResult(False, "open: no document titled 'Europa'; did you mean: Europe?")


def test_open_truncates_long_documents_but_keeps_links(reg):
    doc = SimpleNamespace(id="big", title="Big", kind="article", text="word " * 5000, links=["Paris"])
    ctx = ToolContext(corpus=FakeCorpus([doc]))
    r = reg.call("open", {"title": "Big"}, ctx)
    assert r.ok and len(r.content) <= MAX_RESULT_CHARS and r.content.endswith("more chars not shown]\nLinks: Paris")


# ------------------------------------------------------------------ python tool
@pytest.fixture(scope="module")
def py():
    from omnigym.environments.tools.python_tool import PythonTool

    if not available_backends():
        pytest.skip("neither bubblewrap nor unshare works here")
    tool = PythonTool({"data.csv": "item,price\napple,1.5\npear,2\nfig,3.25\n", "sub/notes.txt": "hi\n"},
                      timeout_s=2.0)
    yield tool
    tool.close()


@needs_sandbox
def test_python_computes(py):
    py.reset()
    reg = default_registry()
    code = "import csv\nrows = list(csv.DictReader(open('data.csv')))\nprint(sum(float(r['price']) for r in rows))\n"
    assert reg.call("python", {"code": code}, ToolContext(python=py)) == ToolResult(True, "6.75")
    out = py.run("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
    assert out == "out\nerr\nexit code 3"
    assert "ZeroDivisionError" in py.run("1/0")
    assert py.run("pass") == "(no output)"
    assert py.run("print('quote \" and \\' and $HOME `id`')") == "quote \" and ' and $HOME `id`"


@needs_sandbox
def test_python_has_no_network(py):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        for host, p in (("1.1.1.1", 80), ("127.0.0.1", port)):
            out = py.run(f"import socket\ns = socket.create_connection(({host!r}, {p}), timeout=1)\nprint('CONNECTED')")
            assert "CONNECTED" not in out and "exit code 1" in out
            assert "unreachable" in out or "refused" in out, out
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody from the sandbox reached the host's port
    finally:
        server.close()


@needs_sandbox
def test_python_cannot_read_host_files(py, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET\n")
    for path in (str(REPO / "README.md"), "/etc/shadow", str(secret)):
        out = py.run(f"print(open({path!r}).read())")
        assert "TOP-SECRET" not in out and ("No such file" in out or "Permission denied" in out), out
    out = py.run("import os\nprint(os.listdir('/root'))")
    assert "No such file" in out
    out = py.run("import os\nprint(sorted(os.listdir('/')))")
    assert "work" not in out and "home" not in out and "root" not in out


@needs_sandbox
def test_python_cannot_write_outside_scratch(py, tmp_path):
    py.reset()
    for path in ("/usr/pwned", "/etc/pwned", "/pwned", str(tmp_path / "pwned")):
        out = py.run(f"open({path!r}, 'w').write('x')")
        assert "exit code 1" in out and ("Read-only" in out or "No such file" in out or "Permission" in out), out
    assert list(tmp_path.iterdir()) == []
    marker = f"omnigym-python-tool-{time.time_ns()}"
    assert py.run(f"open('/tmp/{marker}', 'w').write('x'); open('out.txt', 'w').write('ok')") == "(no output)"
    assert not Path("/tmp", marker).exists()  # the sandbox's /tmp is private
    assert py.files()["out.txt"] == b"ok"


@needs_sandbox
def test_python_limits():
    from omnigym.environments.tools.python_tool import PythonTool

    with PythonTool(timeout_s=1.0, max_output_chars=1000) as tool:
        t = time.monotonic()
        out = tool.run("while True:\n    pass\n")
        assert time.monotonic() - t < 5
        assert "the program was killed" in out and ("timed out after 1 s" in out or "CPU time" in out)
        out = tool.run("print('x' * 10**5)")
        assert len(out) < 1100 and out.endswith("[... output truncated]")
        out = tool.run("print('x' * 10**7)")  # so much that the sandbox kills it
        assert len(out) < 1100 and out.endswith("[... output truncated]\ntoo much output: the program was killed")
        out = tool.run("print('x' * 5000)\nimport sys\nsys.stderr.write('e' * 5000)\n1/0")
        assert len(out) < 1100 and out.endswith("ZeroDivisionError: division by zero\nexit code 1")  # traceback kept
        assert "memory limit" in tool.run("x = bytearray(4 * 1024**3)")
        assert tool.run("print(1 + 1)") == "2"  # still usable afterwards


@needs_sandbox
def test_python_snapshot_restore_reset(py):
    py.reset()
    assert py.run("print(open('sub/notes.txt').read(), end='')") == "hi"
    py.run("open('sub/notes.txt', 'w').write('changed'); open('new.txt', 'w').write('n')")
    snap = py.snapshot()
    py.run("import os; os.remove('new.txt'); open('data.csv', 'w').write('')")
    assert "new.txt" not in py.files()
    py.restore(snap)
    files = py.files()
    assert files["new.txt"] == b"n" and files["sub/notes.txt"] == b"changed" and files["data.csv"].startswith(b"item")
    py.reset()
    assert "new.txt" not in py.files() and py.files()["sub/notes.txt"] == b"hi\n"
    py.reset({"other.txt": "5"})
    assert py.run("import os; print(sorted(os.listdir('.')))") == "['other.txt']"
    py.reset()
    assert set(py.files()) == {"other.txt"}  # the new files are now the initial ones


def test_python_tool_refuses_to_run_unsandboxed(monkeypatch):
    from omnigym.environments.tools.python_tool import PythonTool
    from omnigym.sandbox import backends

    with pytest.raises(SandboxUnavailable, match="never run unsandboxed"):
        PythonTool(config=SandboxConfig(backend="none", allow_unsandboxed_host_execution=True))
    monkeypatch.setattr(backends, "available_backends", lambda: [])
    with pytest.raises(SandboxUnavailable, match="no sandbox backend works here"):
        PythonTool()
