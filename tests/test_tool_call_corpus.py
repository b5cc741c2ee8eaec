"""Real tool-call outputs of open model families (tests/data/tool_calls/corpus.jsonl,
sources and licences in SOURCES.md) must parse to exactly the calls their
source expects; a text that holds a call is never read as an answer."""

import json
from collections import Counter
from pathlib import Path

import pytest

from omnigym.environments.tools.parsing import MAX_ERROR_CHARS, parse_model_output
from omnigym.environments.tools.tools import ToolContext, default_registry

DATA = Path(__file__).parent / "data" / "tool_calls"
ROWS = [json.loads(line) for line in (DATA / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line]
OUTCOMES = ("expected", "final_answer", "error")
LICENSES = {"Apache-2.0", "MIT", "CC-BY-4.0"}
# every native format the parser claims to read has rows here
FORMATS = {"hermes_json", "hermes_pydict", "hermes_variant", "qwen3_coder_xml", "llama3_json", "llama3_python_tag",
           "llama3_builtin", "function_tag", "pythonic", "mistral", "deepseek_v3", "deepseek_v31", "kimi_k2", "harmony",
           "cohere_action", "openai_json", "openai_function_call", "json_in_prose", "semicolon_separated",
           "final_answer"}


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_corpus_row(row):
    parsed = parse_model_output(row["text"], tools=row.get("tools"))
    if "expected" in row:
        assert parsed.answer is None, "a call was read as a final answer"
        assert parsed.error is None, parsed.error
        assert [{"name": c.name, "arguments": c.arguments} for c in parsed.calls] == row["expected"]
    elif "final_answer" in row:
        assert parsed.answer == row["final_answer"], parsed
    else:
        assert parsed.answer is None and not parsed.calls, parsed
        assert isinstance(parsed.error, str) and 0 < len(parsed.error) <= MAX_ERROR_CHARS


def test_rows_are_well_formed_and_cited():
    assert 60 <= len(ROWS) <= 100
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    sources_md = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    for r in ROWS:
        assert sum(k in r for k in OUTCOMES) == 1, r["id"]
        assert r["format"] in FORMATS, r["id"]
        assert isinstance(r["text"], str) and r["text"], r["id"]
        if r["source"] == "omnigym":  # adversarial rows of our own
            continue
        src = r["source"]
        assert src["license"] in LICENSES and len(src["commit"]) == 40 and src["path"], r["id"]
        assert src["repo"] in sources_md and src["path"] in sources_md, r["id"]
    assert set(Counter(r["format"] for r in ROWS)) == FORMATS
    # mostly real outputs; the corpus still exercises every outcome
    assert sum(r["source"] != "omnigym" for r in ROWS) >= 0.75 * len(ROWS)
    assert {k for r in ROWS for k in OUTCOMES if k in r} == set(OUTCOMES)


def test_parsed_corpus_calls_reach_the_registry_without_raising():
    """Calls read from any format are plain names and JSON-like arguments the
    registry can judge (unknown tools and bad arguments come back as results)."""
    registry = default_registry()
    for r in ROWS:
        for call in parse_model_output(r["text"], tools=r.get("tools")).calls:
            json.dumps(call.arguments)  # JSON-serialisable: it goes into the conversation turn
            result = registry.call(call.name, call.arguments, ToolContext())
            assert isinstance(result.ok, bool) and isinstance(result.content, str)
