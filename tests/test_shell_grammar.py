"""Shell argument grammars: the generated files, the masks, and random walks run against the real utilities."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from omnigym.environments.shell import generate_grammars as gen
from omnigym.environments.shell.grammar import (
    EXECUTE, STOP, GrammarError, GrammarState, Token, available_utilities, grammar_dir, load_grammar,
    vocabulary_for,
)

# The working directory every command runs in: regular files, a directory with a file, an empty directory.
FIXTURE = {"a.txt": "apple 1\nbanana 2\ncherry 3\n", "b.txt": "apple 1\nbanana 5\nlemon 7\n",
           "notes.log": "line one\nline two\n\tindented line\n", "d/x.txt": "x\n", "empty/": None}
FILES = ["a.txt", "b.txt", "notes.log", "d/", "empty/"]

# What a utility prints when the command line itself is wrong (as opposed to, say, a missing file).
USAGE_ERRORS = ("Try '", "Usage:", "invalid option", "unrecognized option", "missing operand", "extra operand",
                "requires an argument", "invalid argument", "ambiguous argument", "missing file operand",
                "are incompatible", "mutually exclusive", "paths must precede", "unknown predicate",
                "invalid expression", "invalid number", "invalid field", "out of range", "only one type of list",
                "meaningful only", "meaningless", "not supported when", "must be")

WALKS_PER_UTILITY = 12


def _make_fixture(root: Path) -> None:
    for name, content in FIXTURE.items():
        p = root / name
        if content is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)


def _fresh_dir(base: Path) -> Path:
    work = base / "w"
    if work.exists():
        for p in [work, *work.rglob("*")]:          # a walk may have run chmod 000
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(work)
    work.mkdir()
    _make_fixture(work)
    return work


def _run(cmd: list[str], base: Path) -> tuple[int, str]:
    work = _fresh_dir(base)
    p = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(base)})
    return p.returncode, p.stderr.decode("utf-8", "replace")


def _usage_error(rc: int, err: str) -> str | None:
    if rc == 2:
        return "exit status 2"
    hit = [m for m in USAGE_ERRORS if m in err]
    return f"stderr mentions {hit}" if hit else None


def _installed_matches(util: str) -> bool:
    if shutil.which(util) is None:
        return False
    out = subprocess.run([util, "--version"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    first = out.stdout.splitlines()[0].strip() if out.stdout else ""
    return first == load_grammar(util).source.get("version")


def _walk(state: GrammarState, vocab: list[Token], rng: random.Random, max_len: int = 8,
          cap: int = 30) -> bool:
    """Append random allowed tokens; execute once allowed (surely after max_len). False if never complete."""
    ex, stop = len(vocab) - 2, len(vocab) - 1
    assert vocab[ex].kind == "execute" and vocab[stop].kind == "stop"
    while len(state.tokens) < cap:
        mask = state.valid_next()
        assert mask[stop], "stop must always be allowed"
        if mask[ex] and (len(state.tokens) >= max_len or rng.random() < 0.3):
            state.push(ex)
            return True
        mask[ex] = mask[stop] = False
        choices = np.flatnonzero(mask)
        if len(choices) == 0:
            assert state.is_complete(), f"dead end: {state.command}"
            state.push(ex)
            return True
        if len(state.tokens) >= max_len:      # prefer tokens that complete the command
            done = [i for i in choices if state.copy().push(int(i)).is_complete()]
            choices = done or choices
        state.push(int(rng.choice(choices)))
    return False


# --------------------------------------------------------------------------- generated files

def test_every_grammar_loads_and_records_its_source():
    utils = available_utilities()
    assert len(utils) >= 20
    assert set(utils) == set(gen.UTILITIES)
    for u in utils:
        g = load_grammar(u)
        assert g.utility == u
        assert g.data["generated_by"] == gen.GENERATED_BY
        assert g.source["version"] and g.source["docs"][0] == f"{u} --help"
        assert g.alternatives, u
        ids = [o.id for o in g.options]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        vocab = vocabulary_for(u, FILES)
        texts = [t.text for t in vocab]
        assert len(texts) == len(set(texts))
        assert vocab[-2].kind == "execute" and vocab[-1].kind == "stop"


def test_grammar_files_are_canonical_json():
    for p in sorted(grammar_dir().glob("*.json")):
        text = p.read_text()
        assert text == gen.render(json.loads(text)), p.name


def test_check_mode_passes_on_this_machine():
    missing = [u for u in gen.UTILITIES if not _installed_matches(u)]
    if missing:
        pytest.skip(f"installed tools differ from the ones the grammars were generated from: {missing}")
    used_man = any(any(d.startswith("man ") for d in load_grammar(u).source["docs"]) for u in gen.UTILITIES)
    has_man = subprocess.run(["man", "--nh", "--nj", "-P", "cat", "ls"], capture_output=True,
                             env={**os.environ, "LC_ALL": "C"}).returncode == 0 if shutil.which("man") else False
    if used_man != has_man:
        pytest.skip("man pages are installed here but were not when the grammars were generated, or vice versa")
    r = subprocess.run([sys.executable, "-m", "omnigym.environments.shell.generate_grammars", "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_mode_detects_a_stale_file(tmp_path):
    if not _installed_matches("cat"):
        pytest.skip("cat differs from the generating machine's")
    shutil.copy(grammar_dir() / "cat.json", tmp_path / "cat.json")
    assert gen.main(["--check", "--only", "cat", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "cat.json").read_text())
    data["options"] = data["options"][1:]
    (tmp_path / "cat.json").write_text(gen.render(data))
    assert gen.main(["--check", "--only", "cat", "--out", str(tmp_path)]) == 1


def test_derivation_examples():
    ls = load_grammar("ls")
    assert ls.option("sort").arg.type == "CHOICE" and "size" in ls.option("sort").arg.choices
    assert ls.option("color").arg.required is False                  # --color[=WHEN]
    assert ls.option("width").arg.type == "NUM"
    assert "-p" in ls.option("p").flags and "--indicator-style=slash" in ls.option("p").flags
    head = load_grammar("head")
    assert head.option("lines").arg.type == "NUM_OR_NEG"              # -n, --lines=[-]NUM
    assert load_grammar("tail").option("lines").arg.type == "NUM_OR_POS"
    assert load_grammar("sort").option("output").arg.type == "OUTFILE"
    assert load_grammar("fold").option("width").arg.min == 1          # fold -w 0 is refused
    assert not any(o.id == "M" for o in load_grammar("cut").options)  # '-M' of cut's range table is no option
    assert load_grammar("seq").options_first and load_grammar("tr").options_first
    assert not load_grammar("cat").options_first
    cp = load_grammar("cp")
    assert {tuple(e.name for e in a.sequence) for a in cp.alternatives} == {
        ("SOURCE", "DEST"), ("SOURCE", "DIRECTORY"), ("SOURCE",)}
    assert load_grammar("grep").data["overrides"] and load_grammar("find").style == "find"


# --------------------------------------------------------------------------- masks

def _state(util: str, tokens: list[str], aliases: bool = True) -> tuple[GrammarState, list[Token]]:
    vocab = vocabulary_for(util, FILES, include_aliases=aliases)
    st = GrammarState(util, vocab)
    for t in tokens:
        st.push(t)
    return st, vocab


def _allowed_texts(util: str, tokens: list[str]) -> set[str]:
    st, vocab = _state(util, tokens)
    return {vocab[i].text for i in np.flatnonzero(st.valid_next())}


@pytest.mark.parametrize("util,prefix,forbidden,allowed", [
    ("ls", ["-a"], ["-a", "--all"], ["-l", "a.txt", "d", EXECUTE]),                  # no repeat of -a
    ("ls", ["--"], ["-l", "--", "--sort"], ["a.txt", "d", EXECUTE]),                  # no option after --
    ("ls", ["--sort"], ["a.txt", "-l", "3", EXECUTE], ["size", "time", STOP]),        # choice value
    ("head", ["-n"], ["a.txt", "-v", "--", EXECUTE, "abc"], ["3", "-1", STOP]),       # NUM value
    ("fold", ["-w"], ["0"], ["1", "10"]),
    ("cut", [], [EXECUTE], ["-f", "-b"]),
    ("cut", ["-b", "1-2"], ["-f", "-c", "-d"], ["a.txt", EXECUTE]),                   # one list only
    ("comm", ["a.txt"], [EXECUTE], ["b.txt"]),
    ("cp", ["a.txt"], [EXECUTE], ["d", "new.txt"]),
    ("cp", ["-t", "d"], [EXECUTE, "-T"], ["a.txt"]),
    ("grep", [], [EXECUTE], ["foo", "-e", "a.txt"]),
    ("grep", ["a.txt"], [EXECUTE, "abc"], ["-e", "-f", "b.txt"]),                    # a.txt is a FILE: -e must follow
    ("grep", ["-e", "foo"], ["abc"], ["a.txt", EXECUTE, "-e", "d"]),  # d needs -r later
    ("grep", ["-e", "foo", "d"], [EXECUTE], ["-r", "-R"]),
    ("grep", ["-r", "foo"], [], ["d", "a.txt", EXECUTE]),
    ("seq", ["1"], ["-w", "-s", "--"], ["2", EXECUTE]),                              # options before operands
    ("seq", ["1", "0"], ["3"], [EXECUTE]),                                          # INCREMENT must not be 0
    ("tr", ["-d", "abc"], ["hello", "-s"], [EXECUTE]),
    ("tr", ["abc"], [EXECUTE], ["hello"]),
    ("echo", ["hello"], ["-n", "-e"], ["abc", EXECUTE]),
    ("rm", [], [EXECUTE], ["-f", "a.txt"]),
    ("rm", ["-f"], [], [EXECUTE, "a.txt"]),
    ("md5sum", ["--status"], ["--tag", "-t"], ["-c"]),
    ("sort", ["-c", "a.txt"], ["b.txt", "-o"], [EXECUTE]),
    ("find", [], ["-o", ")", "-a"], ["d", "-name", "!", "(", EXECUTE]),
    ("find", ["-name", "*.txt"], ["a.txt", "d", "-maxdepth"], ["-o", "-type", EXECUTE]),
    ("find", ["!"], [EXECUTE, "-o", ")"], ["-empty", "("]),
    ("find", ["(", "-empty"], [EXECUTE], [")", "-o"]),
    ("find", ["-type"], ["x", "a.txt", "-name"], ["f", "d", "l"]),
])
def test_mask_examples(util, prefix, forbidden, allowed):
    ok = _allowed_texts(util, prefix)
    assert not set(forbidden) & ok, f"{util} {prefix}: {sorted(set(forbidden) & ok)} should be forbidden"
    assert set(allowed) <= ok, f"{util} {prefix}: {sorted(set(allowed) - ok)} should be allowed"


@pytest.mark.parametrize("cmd", [
    ["head", "-n", "a.txt"], ["cut", "a.txt"], ["cut", "-b", "1", "-f", "1", "a.txt"], ["comm", "a.txt"],
    ["cp", "a.txt"], ["seq", "1", "-w"], ["tr", "-d", "abc", "hello"], ["fold", "-w", "0", "a.txt"],
    ["ls", "--sort", "a.txt"], ["md5sum", "--status", "a.txt"], ["rm"], ["grep"], ["find", "-o"],
    ["find", "-name", "a", "a.txt"], ["ls", "-l", "--bogus-option"],
])
def test_commands_the_masks_forbid_do_fail(cmd, tmp_path):
    """The restrictions are real: a few commands off the grammar, run for real, are usage errors."""
    util = cmd[0]
    if not _installed_matches(util):
        pytest.skip(f"{util} differs from the generating machine's")
    vocab = vocabulary_for(util, FILES, include_aliases=True)
    st = GrammarState(util, vocab)
    with pytest.raises(GrammarError):
        for t in cmd[1:]:
            st.push(t)
        st.push(EXECUTE)
    rc, err = _run(cmd, tmp_path)
    assert rc != 0 and _usage_error(rc, err), (cmd, rc, err)


def test_push_rejects_what_the_mask_forbids():
    st, vocab = _state("head", ["-n"])
    with pytest.raises(GrammarError):
        st.copy().push("a.txt")
    st.push("3")
    with pytest.raises(GrammarError):
        st.copy().push("-n")               # -n is not repeatable
    st.push("a.txt").push(EXECUTE)
    assert st.command == ["head", "-n", "3", "a.txt"] and st.finished == "execute"
    assert not st.valid_next().any()
    with pytest.raises(GrammarError):
        st.push("b.txt")


def test_allowed_by_kind():
    st, _ = _state("head", ["-n"])
    assert st.allowed("NUM") and st.allowed("value") and st.allowed("stop")
    assert not st.allowed("option") and not st.allowed("FILE") and not st.allowed("execute")
    st.push("3")
    assert st.allowed("option") and st.allowed("FILE") and st.allowed("execute") and not st.allowed("NUM")
    # without a vocabulary the answers come from the types alone
    bare = GrammarState("head")
    bare.push("-n")
    assert bare.allowed("NUM") and not bare.allowed("FILE") and not bare.allowed("option")
    f = GrammarState("find", vocabulary_for("find", FILES))
    assert f.allowed("primary") and f.allowed("execute")            # bare 'find' lists the current directory
    f.push("!")
    assert not f.allowed("execute") and f.allowed("primary")


def test_vocabulary_for():
    vocab = vocabulary_for("ls", ["a.txt", "sub/"], numbers=(1, 2), patterns=("x*",))
    by = {t.text: t for t in vocab}
    assert by["-l"].kind == "option" and by["--sort"].option == "sort"
    assert by["size"].kind == "value" and by["size"].value_type == "CHOICE"
    assert by["--color=never"].kind == "option"             # optional argument: attached form
    assert by["a.txt"].value_type == "FILE" and by["sub"].value_type == "DIR"
    assert by["1"].value_type == "NUM" and "--help" not in by
    assert by["--"].kind == "end_of_options"
    assert "--all" not in by and "--all" in {t.text for t in vocabulary_for("ls", ["a.txt"], include_aliases=True)}
    # pruned to the value types the grammar can use: cat takes files only
    cat = vocabulary_for("cat", ["a.txt"])
    assert {t.value_type for t in cat if t.kind == "value"} == {"FILE"}
    find = vocabulary_for("find", FILES)
    kinds = {t.kind for t in find}
    assert {"primary", "operator", "option", "value"} <= kinds and "--" not in {t.text for t in find}


# --------------------------------------------------------------------------- random walks, run for real

@pytest.mark.parametrize("util", gen.UTILITIES)
def test_random_walks_are_accepted_by_the_utility(util, tmp_path):
    """Commands built only from allowed tokens are never usage errors of the real utility."""
    if not _installed_matches(util):
        pytest.skip(f"{util} differs from the generating machine's")
    rng = random.Random(zlib.crc32(util.encode()))
    g = load_grammar(util)
    vocabs = [vocabulary_for(util, FILES), vocabulary_for(util, FILES, include_aliases=True)]
    done, failures = 0, []
    for k in range(WALKS_PER_UTILITY):
        vocab = vocabs[k % 2]
        st = GrammarState(g, vocab)
        if not _walk(st, vocab, rng):
            continue
        done += 1
        rc, err = _run(st.command, tmp_path)
        why = _usage_error(rc, err)
        if why and not (util == "base64" and "invalid input" in err):   # base64 -d of non-base64 data
            failures.append(f"{st.command}: {why}: {err.strip()[:200]}")
    assert done >= WALKS_PER_UTILITY * 3 // 4, f"only {done} walks completed"
    assert not failures, "\n".join(failures)


def test_mask_speed_report():
    """Prints the mean time of valid_next on fresh states (not an assertion)."""
    files = [f"f{i}.txt" for i in range(40)] + [f"dir{i}/" for i in range(10)]
    rng = random.Random(0)
    lines = []
    for util in ("ls", "grep", "cp", "sort", "find"):
        vocab = vocabulary_for(util, files, numbers=range(20), include_aliases=True)
        g = load_grammar(util)
        total = n = 0
        for _ in range(50):
            st = GrammarState(g, vocab)
            for _ in range(rng.randrange(6)):
                m = st.valid_next()
                m[-2:] = False
                if not m.any():
                    break
                st.push(int(rng.choice(np.flatnonzero(m))))
            g._index(vocab).mask_cache.clear()
            st._mask_cache = None
            t = time.perf_counter()
            st.valid_next()
            total += time.perf_counter() - t
            n += 1
        lines.append(f"{util}: {len(vocab)} tokens, {total / n * 1e6:.1f} us per mask")
    print("\n" + "\n".join(lines))
