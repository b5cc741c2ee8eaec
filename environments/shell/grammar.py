"""Argument grammars for shell utilities, and masks over a typed argument vocabulary.

ShIOEnv-style command construction is an MDP: the state is a partially built
command (``[utility, arg1, ..., argk]``) and every action appends one argument.
A grammar derived from each utility's documentation (``--help``, the man page
and the utility's own argument diagnostics; see ``generate_grammars.py``) says
which next arguments are legal, so a policy can be masked to syntactically
valid commands.

Grammars live in ``omnigym/sim_assets/shell/grammars/<utility>.json``, one
per utility, written by ``generate_grammars.py``.  Top-level keys:

``schema_version`` (1), ``utility``, ``generated_by``, ``source``
    (``{"docs": [what was read or run], "version": first line of UTIL --version}``),
    ``usage`` (the usage lines read), ``style`` (``getopt`` or ``find``),
    ``options``, ``operands``, ``constraints``, ``expression`` (find only),
    ``derivation_notes`` (e.g. flags dropped because the binary rejects them)
    and ``overrides`` (notes of the hand-written corrections applied).

``options`` (sorted by ``id``)
    ``{"id", "flags", "arg", "repeatable", "info", "excluded", "description",
    "doc"}``.  ``flags`` holds every spelling, short ones first (``-n``,
    ``--lines``; a literal ``--check=quiet`` is a flag too); ``vocabulary_for``
    uses the first.  ``arg`` is ``null`` or ``{"type", "metavar", "required",
    "choices"?, "choices_from"?, "min_value"?}``: ``required: false`` means the
    value can only be attached (``--color=never``), ``choices`` a fixed word
    list (``choices_from``: argmatch / docs / override), ``min_value`` the
    smallest number accepted.  ``info`` marks ``--help``/``--version``;
    ``excluded`` (a reason, or ``null``) options are never offered by masks
    (e.g. ``tail -f``, which never returns).  ``doc``: help and/or man.

``operands.alternatives``
    The usage forms: ``{"usage", "sequence", "requires_all", "requires_any",
    "forbids"}``.  ``sequence`` is a list of ``{"name", "type", "min", "max"}``
    elements (``max`` ``null`` = unbounded).  A form applies when all options of
    ``requires_all``, at least one option of each ``requires_any`` group and
    none of ``forbids`` (option ids) are used.

``constraints``
    ``exclusive`` (groups of option ids, at most one of each group),
    ``required_one_of`` (groups, at least one of each before the command is
    complete), ``requires`` (``{id: [ids]}``: the command is complete only
    when every used option's requirements are used too), ``options_first``
    (no option after the first operand: seq, tr, basename, echo) and
    ``end_of_options`` (whether ``--`` ends the options).

``expression`` (find)
    ``options`` hold the leading options (``-H -L -P``), operands the start
    paths, and ``expression`` the primaries (``{"name", "category", "arg",
    "supported", "repeatable"}``; category ``global`` primaries such as
    ``-maxdepth`` must precede all tests) and ``operators`` (``unary``
    ``!``/``-not``, ``binary`` ``-a``/``-o``..., ``open`` ``(``, ``close`` ``)``).

Value types.  An option argument or operand has a *slot type*; a vocabulary
token has a *value type*; :data:`ACCEPTS` says which value types each slot
type accepts (``CHOICE`` slots accept a value token whose text is one of the
choices, whatever its value type).  Field and position slots (``NZNUM``,
``LIST``, ``NUMLIST``, ``KEYDEF``) refuse the number 0, and an argument with
``min_value`` refuses smaller numbers.

Masks.  :meth:`GrammarState.valid_next` allows: after an option that takes a
value, only values of its type (and ``<stop>``); otherwise options not yet used
(or repeatable), not excluded by a used option, and whose use still leaves a
way to complete the command; ``--`` once, and only if the options given are
enough to complete the command; operands that fit a usage form still open
(none starting with ``-`` before ``--``); no option after ``--`` or, for
options-first utilities, after the first operand; ``<execute>`` only when the
command is complete; ``<stop>`` always.  Masks are precomputed per (grammar,
vocabulary) and cached per state signature.

Usage::

    g = load_grammar("head")
    vocab = vocabulary_for("head", ["a.txt", "b.txt", "d/"])
    st = GrammarState(g, vocab)
    mask = st.valid_next()           # np.ndarray[bool], one entry per token
    st.push(vocab[int(np.flatnonzero(mask)[0])])
    st.command                       # ["head", ...]
"""
from __future__ import annotations

import functools
import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "ACCEPTS", "VALUE_TYPES", "SLOT_TYPES", "DEFAULT_VALUES", "EXECUTE", "STOP", "Token", "ArgSpec",
    "OptionSpec", "Grammar", "GrammarState", "GrammarError", "grammar_dir", "load_grammar",
    "available_utilities", "vocabulary_for", "classify_text",
]

SCHEMA_VERSION = 1

#: Types a vocabulary token can have (``Token.value_type`` of ``kind == "value"`` tokens).
VALUE_TYPES = (
    "FILE",       # an existing regular file
    "DIR",        # an existing directory
    "NAME",       # a path that does not exist yet
    "NUM",        # a non-negative integer: 0, 3
    "NEGNUM",     # -1 (head -n -1: all but the last line)
    "POSNUM",     # +2 (tail -n +2: from line 2)
    "SIZE",       # integer with a unit suffix: 1K
    "FSIZE",      # find -size argument: 1k, +1k, -10c
    "DURATION",   # seconds, possibly fractional: 0.5
    "NUMLIST",    # comma-separated numbers: 1,2
    "LIST",       # cut lists with ranges: 1-2  2-
    "KEYDEF",     # sort -k key definitions: 1,1  2n
    "CHAR",       # one character: , :
    "STRING",     # free text
    "PATTERN",    # a (basic or extended) regular expression, also valid as a fixed string
    "GLOB",       # a shell wildcard pattern: *.txt
    "MODE",       # chmod mode: 644  u+x
    "FORMAT",     # printf-like format with one conversion: %g
    "DATE",       # a date string for touch -d
    "TIMESTAMP",  # [[CC]YY]MMDDhhmm[.ss] for touch -t
    "CHOICE",     # a word from a fixed list (see Token / ACCEPTS)
)

_ALL_TEXT = frozenset(VALUE_TYPES) - {"NEGNUM"}

#: Slot type -> value types of the tokens it accepts.
ACCEPTS: dict[str, frozenset[str]] = {
    "FILE": frozenset({"FILE"}),
    "DIR": frozenset({"DIR"}),
    "PATH": frozenset({"FILE", "DIR"}),
    "NEWPATH": frozenset({"FILE", "DIR", "NAME"}),
    "OUTFILE": frozenset({"FILE", "NAME"}),
    "NUM": frozenset({"NUM"}),
    "NZNUM": frozenset({"NUM"}),          # NUM tokens other than zero (also for LIST, NUMLIST, KEYDEF)
    "NUM_OR_NEG": frozenset({"NUM", "NEGNUM"}),
    "NUM_OR_POS": frozenset({"NUM", "POSNUM"}),
    "FINDNUM": frozenset({"NUM", "NEGNUM", "POSNUM"}),
    "SIZE": frozenset({"NUM", "SIZE"}),
    "FINDSIZE": frozenset({"NUM", "FSIZE"}),
    "DURATION": frozenset({"NUM", "DURATION"}),
    "LIST": frozenset({"NUM", "NUMLIST", "LIST"}),
    "NUMLIST": frozenset({"NUM", "NUMLIST"}),
    "KEYDEF": frozenset({"NUM", "KEYDEF"}),
    "CHAR": frozenset({"CHAR"}),
    "STRING": _ALL_TEXT,
    "PATTERN": frozenset({"PATTERN", "STRING", "NUM", "CHAR"}),
    "GLOB": frozenset({"GLOB", "PATTERN", "STRING", "NUM", "CHAR", "FILE", "NAME"}),
    "MODE": frozenset({"MODE"}),
    "FORMAT": frozenset({"FORMAT"}),
    "DATE": frozenset({"DATE"}),
    "TIMESTAMP": frozenset({"TIMESTAMP"}),
    "CHOICE": frozenset(),                # by text, see _accepts
    "COMMAND": frozenset(),               # programs to run: never offered
}
SLOT_TYPES = tuple(sorted(ACCEPTS))

#: Default example values per value type (besides files, numbers and patterns).
DEFAULT_VALUES: dict[str, tuple[str, ...]] = {
    "NEGNUM": ("-1", "-2"),
    "POSNUM": ("+1", "+2"),
    "SIZE": ("1K", "1M"),
    "FSIZE": ("1k", "+1k", "-10c"),
    "DURATION": ("0.5",),
    "NUMLIST": ("1,2",),
    "LIST": ("1-2", "2-"),
    "KEYDEF": ("1,1", "2n"),
    "CHAR": (",", ":"),
    "STRING": ("abc", "hello"),
    "GLOB": ("*.txt", "a*"),
    "MODE": ("644", "755", "u+x", "go-w"),
    "FORMAT": ("%g", "%.2f"),
    "DATE": ("2020-01-01", "2021-06-30 12:00"),
    "TIMESTAMP": ("202001010000",),
}
DEFAULT_NUMBERS = (0, 1, 2, 3, 5, 10)
DEFAULT_PATTERNS = ("a", "foo", "[a-z]", "l.*e")
DEFAULT_NEW_NAMES = ("new.txt", "newdir")

EXECUTE = "<execute>"
STOP = "<stop>"


class GrammarError(ValueError):
    """A token the grammar does not allow at this point."""


@dataclass(frozen=True)
class Token:
    """One action of the command-construction MDP.

    ``kind`` is ``option`` (a flag; ``option`` names the option id, and a flag
    with an attached value such as ``--sort=size`` carries it), ``value`` (an
    option value or operand, typed by ``value_type``), ``end_of_options``
    (``--``), ``primary``/``operator`` (find expressions; ``option`` holds the
    primary's name), ``execute`` (run the command) or ``stop`` (give up).
    """

    text: str
    kind: str
    value_type: str | None = None
    option: str | None = None


# --------------------------------------------------------------------------- grammars

@dataclass(frozen=True)
class ArgSpec:
    type: str
    metavar: str
    required: bool
    choices: tuple[str, ...] | None
    min: int | None = None          # smallest accepted number (NUM / SIZE values)

    @classmethod
    def from_json(cls, d: dict | None) -> "ArgSpec | None":
        if d is None:
            return None
        ch = d.get("choices")
        return cls(d["type"], d.get("metavar", ""), bool(d.get("required", True)),
                   tuple(ch) if ch is not None else None, d.get("min_value"))


@dataclass(frozen=True)
class OptionSpec:
    id: str
    flags: tuple[str, ...]
    arg: ArgSpec | None
    repeatable: bool
    info: bool
    excluded: str | None
    description: str = ""


@dataclass(frozen=True)
class Element:
    name: str
    type: str
    min: int
    max: int | None


@dataclass(frozen=True)
class Alternative:
    usage: str
    sequence: tuple[Element, ...]
    requires_all: frozenset
    requires_any: tuple[frozenset, ...]     # each group needs one used option
    forbids: frozenset

    def requirements_met(self, used) -> bool:
        return self.requires_all <= used and all(grp & used for grp in self.requires_any)


@dataclass(frozen=True)
class Primary:
    name: str
    category: str          # global | test | action | positional
    arg: ArgSpec | None
    supported: bool
    repeatable: bool


class Grammar:
    """A parsed grammar file; see the module docstring for the schema."""

    def __init__(self, data: dict):
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported grammar schema {data.get('schema_version')!r}")
        self.data = data
        self.utility: str = data["utility"]
        self.style: str = data.get("style", "getopt")
        self.options: list[OptionSpec] = [
            OptionSpec(o["id"], tuple(o["flags"]), ArgSpec.from_json(o.get("arg")),
                       bool(o.get("repeatable", False)), bool(o.get("info", False)),
                       o.get("excluded"), o.get("description", ""))
            for o in data["options"]]
        self.option_index = {o.id: i for i, o in enumerate(self.options)}
        self.alternatives: list[Alternative] = []
        for a in data["operands"]["alternatives"]:
            seq = tuple(Element(e["name"], e["type"], int(e["min"]), e["max"]) for e in a["sequence"])
            self.alternatives.append(Alternative(
                a.get("usage", ""), seq, frozenset(a.get("requires_all", ())),
                tuple(frozenset(grp) for grp in a.get("requires_any", ())), frozenset(a.get("forbids", ()))))
        c = data.get("constraints", {})
        self.exclusive = [frozenset(g) for g in c.get("exclusive", ())]
        self.required_one_of = [frozenset(g) for g in c.get("required_one_of", ())]
        self.requires = {k: frozenset(v) for k, v in c.get("requires", {}).items()}
        self.options_first = bool(c.get("options_first", False))
        self.end_of_options = bool(c.get("end_of_options", True))
        known = set(self.option_index)
        for grp in [*self.exclusive, *self.required_one_of, *self.requires.values(),
                    *(a.requires_all | a.forbids for a in self.alternatives),
                    *(grp for a in self.alternatives for grp in a.requires_any)]:
            unknown = set(grp) - known
            if unknown:
                raise ValueError(f"{self.utility}: constraint names unknown options {sorted(unknown)}")
        # flag text -> option index
        self.flag_index: dict[str, int] = {}
        for i, o in enumerate(self.options):
            for f in o.flags:
                self.flag_index.setdefault(f, i)
        self.primaries: dict[str, Primary] = {}
        self.operators: dict[str, str] = {}
        expr = data.get("expression")
        if expr:
            for p in expr["primaries"]:
                self.primaries[p["name"]] = Primary(p["name"], p["category"], ArgSpec.from_json(p.get("arg")),
                                                    bool(p.get("supported", True)), bool(p.get("repeatable", True)))
            for role, names in expr["operators"].items():
                for n in names:
                    self.operators[n] = role
        for t in [*(o.arg.type for o in self.options if o.arg),
                  *(e.type for a in self.alternatives for e in a.sequence),
                  *(p.arg.type for p in self.primaries.values() if p.arg)]:
            if t not in ACCEPTS:
                raise ValueError(f"{self.utility}: unknown slot type {t!r}")
        self._index_cache: dict[int, tuple[object, "_Index"]] = {}

    def __repr__(self) -> str:
        return f"Grammar({self.utility!r}, {len(self.options)} options, style={self.style})"

    @property
    def source(self) -> dict:
        return self.data.get("source", {})

    def option(self, option_id: str) -> OptionSpec:
        return self.options[self.option_index[option_id]]

    def lookup_flag(self, text: str) -> tuple[int, str | None] | None:
        """``(option index, attached value or None)`` for an option word, or None."""
        i = self.flag_index.get(text)
        if i is not None:
            return i, None
        if text.startswith("--") and "=" in text:
            name, val = text.split("=", 1)
            i = self.flag_index.get(name)
            if i is not None and self.options[i].arg is not None:
                return i, val
        return None

    def _index(self, vocab: Sequence[Token]) -> "_Index":
        hit = self._index_cache.get(id(vocab))
        if hit is not None and hit[0] is vocab:
            return hit[1]
        idx = _Index(self, vocab)
        if len(self._index_cache) > 16:
            self._index_cache.clear()
        self._index_cache[id(vocab)] = (vocab, idx)
        return idx


def grammar_dir() -> Path:
    """Directory holding the generated ``<utility>.json`` grammars."""
    mod = importlib.import_module("omnigym.sim_assets.shell")
    return Path(mod.__file__).resolve().parent / "grammars"


def available_utilities() -> list[str]:
    """Utilities with a grammar file, sorted."""
    return sorted(p.stem for p in grammar_dir().glob("*.json"))


@functools.lru_cache(maxsize=None)
def load_grammar(util: str) -> Grammar:
    """The grammar of ``util`` (cached; treat it as read-only)."""
    path = grammar_dir() / f"{util}.json"
    if not path.is_file():
        raise KeyError(f"no grammar for {util!r}; available: {', '.join(available_utilities())}")
    return Grammar(json.loads(path.read_text()))


# --------------------------------------------------------------------------- typing of values

_NUM_RE = re.compile(r"^\d+$")
_MODE_RE = re.compile(r"^([0-7]{3,4}|[ugoa]*[-+=][rwxXst]*(,[ugoa]*[-+=][rwxXst]*)*)$")


def classify_text(text: str) -> str:
    """Best-guess value type of a free-text argument (used for texts outside the vocabulary)."""
    if _NUM_RE.match(text):
        return "NUM"
    if re.match(r"^-\d+$", text):
        return "NEGNUM"
    if re.match(r"^\+\d+$", text):
        return "POSNUM"
    if re.match(r"^\d+[KMGTPEZY]i?B?$", text):
        return "SIZE"
    if re.match(r"^\d+\.\d+$", text):
        return "DURATION"
    if re.match(r"^\d+(,\d+)+$", text):
        return "NUMLIST"
    if re.match(r"^\d+(,\d+|-\d*)+$", text):
        return "LIST"
    if _MODE_RE.match(text) and not _NUM_RE.match(text):
        return "MODE"
    if "%" in text:
        return "FORMAT"
    if len(text) == 1:
        return "CHAR"
    if any(c in text for c in "*?"):
        return "GLOB"
    return "STRING"


def _accepts(slot_type: str, choices: tuple[str, ...] | None, tok: Token, min_value: int | None = None) -> bool:
    if tok.kind != "value":
        return False
    if min_value is not None and tok.value_type in ("NUM", "SIZE"):
        m = re.match(r"\d+", tok.text)
        if m and int(m.group(0)) < min_value:
            return False
    if slot_type == "CHOICE" or choices is not None:
        return choices is not None and tok.text in choices
    if tok.value_type not in ACCEPTS[slot_type]:
        return False
    if slot_type in _ONE_BASED and tok.value_type == "NUM":
        return tok.text.strip("0") != ""
    return True


_ONE_BASED = frozenset({"NZNUM", "LIST", "NUMLIST", "KEYDEF"})   # 0 is not a valid field/position


# --------------------------------------------------------------------------- vocabulary

def vocabulary_for(util: str, fixture_files: Iterable[str], numbers: Iterable[int | str] = DEFAULT_NUMBERS,
                   patterns: Iterable[str] = DEFAULT_PATTERNS, *, directories: Iterable[str] = (),
                   new_names: Iterable[str] = DEFAULT_NEW_NAMES, values: dict[str, Iterable[str]] | None = None,
                   include_aliases: bool = False, include_info: bool = False,
                   prune: bool = True) -> list[Token]:
    """A typed argument vocabulary for ``util``.

    ``fixture_files`` are the names present in the working directory; a name
    ending in ``/`` (or listed in ``directories``) is a directory.  The result
    holds, in order: option flags (canonical spelling, plus ``--opt=WORD`` for
    long options whose optional value is a fixed choice; every spelling with
    ``include_aliases``), ``--`` where it ends options, the find primaries and
    operators, typed values (files, directories, new names, ``numbers``,
    ``patterns``, choice words and :data:`DEFAULT_VALUES`, overridable through
    ``values``), and finally ``<execute>`` and ``<stop>``.  With ``prune`` only
    value types some slot of the grammar accepts are included.  Texts are unique.
    """
    g = load_grammar(util)
    toks: list[Token] = []
    seen: set[str] = set()

    def add(tok: Token) -> None:
        if tok.text not in seen:
            seen.add(tok.text)
            toks.append(tok)

    for o in g.options:
        if o.excluded or (o.info and not include_info):
            continue
        flags = o.flags if include_aliases else o.flags[:1]
        for f in flags:
            add(Token(f, "option", option=o.id))
        if o.arg is not None and not o.arg.required and o.arg.choices:
            longs = [f for f in o.flags if f.startswith("--") and "=" not in f]
            for f in (longs if include_aliases else longs[:1]):
                for c in o.arg.choices:
                    add(Token(f"{f}={c}", "option", option=o.id))
    if g.style == "getopt" and g.end_of_options:
        add(Token("--", "end_of_options"))
    for p in g.primaries.values():
        if p.supported:
            add(Token(p.name, "primary", option=p.name))
    for name in g.operators:
        add(Token(name, "operator", option=name))

    # which value types / choice words can be used at all
    slots = [(o.arg.type, o.arg.choices) for o in g.options if o.arg and not o.excluded]
    slots += [(e.type, None) for a in g.alternatives for e in a.sequence]
    slots += [(p.arg.type, p.arg.choices) for p in g.primaries.values() if p.arg and p.supported]
    needed: set[str] = set()
    choice_words: list[str] = []
    for t, ch in slots:
        if ch is not None:
            choice_words.extend(ch)
        else:
            needed |= ACCEPTS[t]
    keep = (lambda vt: vt in needed) if prune else (lambda vt: True)

    dirs = {d.rstrip("/") for d in directories}
    vals = dict(DEFAULT_VALUES)
    vals.update({k: tuple(v) for k, v in (values or {}).items()})
    typed: list[tuple[str, str]] = []
    for f in fixture_files:
        name = f.rstrip("/") or f
        typed.append((name, "DIR" if (f.endswith("/") or name in dirs) else "FILE"))
    typed += [(d, "DIR") for d in sorted(dirs)]
    typed += [(n, "NAME") for n in new_names]
    typed += [(str(n), "NUM") for n in numbers]
    typed += [(p, "PATTERN") for p in patterns]
    for vt in VALUE_TYPES:
        typed += [(v, vt) for v in vals.get(vt, ())]
    for text, vt in typed:
        if keep(vt):
            add(Token(text, "value", value_type=vt))
    for w in choice_words:
        add(Token(w, "value", value_type="CHOICE"))
    add(Token(EXECUTE, "execute"))
    add(Token(STOP, "stop"))
    return toks


# --------------------------------------------------------------------------- precomputed masks

class _Index:
    """Masks of one grammar over one vocabulary, computed once."""

    def __init__(self, g: Grammar, vocab: Sequence[Token]):
        n = len(vocab)
        self.g, self.vocab, self.n = g, vocab, n
        self.text_index: dict[str, int] = {}
        for i, t in enumerate(vocab):
            self.text_index.setdefault(t.text, i)
        kinds = np.array([t.kind for t in vocab], dtype=object)
        self.zero = np.zeros(n, dtype=bool)
        self.stop = kinds == "stop"
        self.execute = kinds == "execute"
        self.dashdash = kinds == "end_of_options"
        self.dash = np.array([t.kind == "value" and t.text.startswith("-") for t in vocab], dtype=bool)
        self._slot_cache: dict[tuple, np.ndarray] = {}
        if g.style == "find":
            self._init_find(kinds)
        else:
            self._init_getopt()
        for o in g.options:               # warm the slot masks so no call pays for them later
            if o.arg is not None:
                self.slot(o.arg.type, o.arg.choices, o.arg.min)
        for a in g.alternatives:
            for e in a.sequence:
                self.slot(e.type)

    def kind_mask(self, kind: str) -> np.ndarray:
        key = ("kind", kind)
        m = self._slot_cache.get(key)
        if m is None:
            if kind in ("value", "operand"):
                m = np.array([t.kind == "value" for t in self.vocab], dtype=bool)
            elif kind in VALUE_TYPES:
                m = np.array([t.kind == "value" and t.value_type == kind for t in self.vocab], dtype=bool)
            else:
                m = np.array([t.kind == kind for t in self.vocab], dtype=bool)
            self._slot_cache[key] = m
        return m

    def slot(self, slot_type: str, choices: tuple[str, ...] | None = None, min_value: int | None = None) -> np.ndarray:
        key = (slot_type, choices, min_value)
        m = self._slot_cache.get(key)
        if m is None:
            m = np.array([_accepts(slot_type, choices, t, min_value) for t in self.vocab], dtype=bool)
            m.setflags(write=False)
            self._slot_cache[key] = m
        return m

    def _init_getopt(self) -> None:
        g, n = self.g, self.n
        nopt = len(g.options)
        self.tok_option = np.full(n, -1, dtype=np.int64)
        self.tok_pending = np.zeros(n, dtype=bool)       # flag whose value is the next token
        usable = np.zeros(n, dtype=bool)
        for i, t in enumerate(self.vocab):
            if t.kind != "option":
                continue
            hit = g.lookup_flag(t.text)
            if hit is None:
                continue
            j, val = hit
            o = g.options[j]
            self.tok_option[i] = j
            if o.excluded:
                continue
            if val is not None:          # --opt=value
                usable[i] = _accepts(o.arg.type, o.arg.choices, Token(val, "value", classify_text(val)), o.arg.min)
            elif o.arg is not None and o.arg.required:
                self.tok_pending[i] = True
                usable[i] = bool(self.slot(o.arg.type, o.arg.choices, o.arg.min).any())
            else:
                usable[i] = True
        self.option_tokens = [self.tok_option == j for j in range(nopt)]
        self.opt_base = usable
        # tokens disabled once option j is used: itself (unless repeatable) and exclusive partners
        self.disable = []
        for j, o in enumerate(g.options):
            m = np.zeros(n, dtype=bool) if o.repeatable else self.option_tokens[j].copy()
            for grp in g.exclusive:
                if o.id in grp:
                    for other in grp - {o.id}:
                        m |= self.option_tokens[g.option_index[other]]
            self.disable.append(m)
        # alternatives whose required options cannot be offered are dropped
        offered = {g.options[j].id for j in range(nopt) if (self.option_tokens[j] & usable).any()}
        self.offered = offered
        self.alt_ok = [a.requirements_met(offered) for a in g.alternatives]
        self.partners: dict[str, frozenset] = {}
        for grp in g.exclusive:
            for x in grp:
                self.partners[x] = self.partners.get(x, frozenset()) | (grp - {x})
        # options whose use can make the command impossible to complete: those usage forms name, those
        # with requirements, and those excluding an option something requires
        needed = {x for grp in g.required_one_of for x in grp} | {r for v in g.requires.values() for r in v}
        constrained = set(g.requires)
        for a, ok in zip(g.alternatives, self.alt_ok):
            if ok:
                named = a.forbids.union(a.requires_all, *a.requires_any)
                constrained |= named
                needed |= a.requires_all.union(*a.requires_any)
        constrained |= {x for x, p in self.partners.items() if p & needed}
        self.constrained = [(g.option_index[x], x, g.options[g.option_index[x]].repeatable)
                            for x in sorted(constrained) if x in offered]
        self.mask_cache: dict = {}

    def _init_find(self, kinds: np.ndarray) -> None:
        g, n = self.g, self.n
        self.leading = np.zeros(n, dtype=bool)
        self.tok_option = np.full(n, -1, dtype=np.int64)
        for i, t in enumerate(self.vocab):
            if t.kind == "option":
                hit = g.lookup_flag(t.text)
                if hit is not None and hit[1] is None and not g.options[hit[0]].excluded \
                        and g.options[hit[0]].arg is None:
                    self.leading[i] = True
                    self.tok_option[i] = hit[0]
        self.option_tokens = [self.tok_option == j for j in range(len(g.options))]
        self.primary_of: list[Primary | None] = []
        glob_m = np.zeros(n, dtype=bool)
        other_m = np.zeros(n, dtype=bool)
        self.primary_tokens: dict[str, np.ndarray] = {}
        for i, t in enumerate(self.vocab):
            p = g.primaries.get(t.text) if t.kind == "primary" else None
            if p is not None and p.supported and (p.arg is None or self.slot(p.arg.type, p.arg.choices).any()):
                (glob_m if p.category == "global" else other_m)[i] = True
                self.primary_tokens.setdefault(p.name, np.zeros(n, dtype=bool))[i] = True
                self.primary_of.append(p)
            else:
                self.primary_of.append(None)
        self.global_prim, self.other_prim = glob_m, other_m
        self.mask_cache: dict = {}
        ops = {role: np.array([t.kind == "operator" and g.operators.get(t.text) == role for t in self.vocab],
                              dtype=bool) for role in ("unary", "binary", "open", "close")}
        self.unary, self.binary, self.open, self.close = ops["unary"], ops["binary"], ops["open"], ops["close"]
        alt_types = {e.type for a in g.alternatives for e in a.sequence}
        paths = self.zero.copy()
        for t in alt_types:
            paths |= self.slot(t)
        bad = {"!", "(", ")", ","}
        self.paths = paths & ~self.dash & np.array([t.text not in bad for t in self.vocab], dtype=bool)


# --------------------------------------------------------------------------- states

class GrammarState:
    """A partial command under a grammar: ``push`` arguments, ask what may come next.

    ``vocabulary`` (a token list, typically from :func:`vocabulary_for`) is
    needed for :meth:`valid_next`; masks are precomputed per (grammar,
    vocabulary) so each call is a handful of vector ops.  Texts pushed that are
    not in the vocabulary are typed with :func:`classify_text`.
    """

    def __init__(self, grammar: Grammar | str, vocabulary: Sequence[Token] | None = None):
        self.grammar = load_grammar(grammar) if isinstance(grammar, str) else grammar
        self.vocabulary = vocabulary
        self.tokens: list[str] = []
        self.finished: str | None = None      # "execute" / "stop" once ended
        self._used: list[int] = []             # getopt: option indices in order; find: leading options
        self._used_ids: frozenset = frozenset()
        self._pending: ArgSpec | None = None
        self._pending_owner: str | None = None
        self._eoo = False
        self._operands: list[Token] = []
        self._alt_states = None
        # find
        self._phase = "start"                  # start | paths | expr
        self._depth = 0
        self._need_operand = False
        self._last_complete = False
        self._nonglobal_seen = False
        self._prims_used: list[str] = []
        self._mask_cache: np.ndarray | None = None
        self._mask_vocab = None
        if self.grammar.style != "find":
            self._alt_states = [_closure(a.sequence, {(0, 0)}) for a in self.grammar.alternatives]

    # ---------------------------------------------------------------- basics
    @property
    def command(self) -> list[str]:
        return [self.grammar.utility, *self.tokens]

    @property
    def used_options(self) -> frozenset:
        return self._used_ids

    @property
    def pending(self) -> ArgSpec | None:
        """The argument spec the next token must fill, or None."""
        return self._pending

    def copy(self) -> "GrammarState":
        new = object.__new__(GrammarState)
        new.__dict__.update(self.__dict__)
        new.tokens = list(self.tokens)
        new._used = list(self._used)
        new._operands = list(self._operands)
        new._prims_used = list(self._prims_used)
        if self._alt_states is not None:
            new._alt_states = list(self._alt_states)
        return new

    def _as_token(self, tok: Token | str | int) -> Token:
        if isinstance(tok, Token):
            return tok
        if isinstance(tok, (int, np.integer)):
            if self.vocabulary is None:
                raise ValueError("token index given but the state has no vocabulary")
            return self.vocabulary[int(tok)]
        if tok == EXECUTE:
            return Token(EXECUTE, "execute")
        if tok == STOP:
            return Token(STOP, "stop")
        if self.vocabulary is not None:
            i = self.grammar._index(self.vocabulary).text_index.get(tok)
            if i is not None:
                return self.vocabulary[i]
        g = self.grammar
        if g.style == "find":
            if tok in g.primaries:
                return Token(tok, "primary", option=tok)
            if tok in g.operators:
                return Token(tok, "operator", option=tok)
        if tok == "--" and g.style == "getopt" and g.end_of_options:
            return Token(tok, "end_of_options")
        if tok.startswith("-") and len(tok) > 1 and g.style == "getopt" and not _NUM_RE.match(tok[1:]):
            return Token(tok, "option")
        if tok.startswith("-") and len(tok) > 1 and g.style == "find" and g.lookup_flag(tok):
            return Token(tok, "option")
        return Token(tok, "value", value_type=classify_text(tok))

    # ---------------------------------------------------------------- queries
    def is_complete(self) -> bool:
        """Whether the command as built is a whole, valid invocation."""
        if self.finished or self._pending is not None:
            return False
        if self.grammar.style == "find":
            return not self._need_operand and self._depth == 0
        used = self.used_options
        g = self.grammar
        if any(not (grp & used) for grp in g.required_one_of):
            return False
        if any(not (g.requires.get(u, frozenset()) <= used) for u in used):
            return False
        for a, states in zip(g.alternatives, self._alt_states):
            if _alt_active(a, used) and a.requirements_met(used) and (len(a.sequence), 0) in states:
                return True
        return False

    def allowed(self, token_kind: str) -> bool:
        """Whether some token of this kind may come next.

        ``token_kind`` is a Token kind (``option``, ``value``, ``operand``,
        ``end_of_options``, ``primary``, ``operator``, ``execute``, ``stop``) or a
        value type (``FILE``, ``NUM``, ``CHOICE``...), meaning a value token of
        that type (for CHOICE: with some matching word).  With a bound
        vocabulary the answer is read off :meth:`valid_next` (so it is exact for
        that vocabulary); without one it is decided on types alone.
        """
        if self.finished:
            return False
        if token_kind == "stop":
            return True
        if token_kind == "execute":
            return self.is_complete()
        if self.vocabulary is not None:
            idx = self.grammar._index(self.vocabulary)
            return bool((self.valid_next() & idx.kind_mask(token_kind)).any())
        g = self.grammar
        if self._pending is not None:
            if token_kind == "value":
                return True
            if token_kind in ACCEPTS or token_kind in VALUE_TYPES:
                return _type_ok(self._pending, token_kind)
            return False
        if g.style == "find":
            if token_kind == "option":
                return self._phase == "start" and any(
                    not o.excluded and (o.repeatable or j not in self._used) for j, o in enumerate(g.options))
            if token_kind == "primary":
                return True
            if token_kind == "operator":
                return True
            if token_kind in ("value", "operand") or token_kind in VALUE_TYPES:
                if self._phase == "expr":
                    return False
                return token_kind in ("value", "operand") or any(
                    token_kind in ACCEPTS[e.type] for a in g.alternatives for e in a.sequence)
            return False
        if token_kind == "option":
            return not self._eoo and not (g.options_first and self._operands)
        if token_kind == "end_of_options":
            return g.end_of_options and not self._eoo
        types = self._next_operand_types()
        if token_kind in ("value", "operand"):
            return bool(types)
        return any(_type_ok(ArgSpec(t, "", True, None), token_kind) for t in types)

    def _next_operand_types(self) -> set[str]:
        g, used = self.grammar, self.used_options
        out: set[str] = set()
        for a, states in zip(g.alternatives, self._alt_states):
            if not _alt_active(a, used):
                continue
            for i, c in states:
                if i < len(a.sequence):
                    e = a.sequence[i]
                    if e.max is None or c < e.max:
                        out.add(e.type)
        return out

    def valid_next(self, vocabulary: Sequence[Token] | None = None) -> np.ndarray:
        """Boolean mask over ``vocabulary`` (default: the bound one) of legal next tokens."""
        vocab = vocabulary if vocabulary is not None else self.vocabulary
        if vocab is None:
            raise ValueError("valid_next needs a vocabulary")
        if self._mask_cache is not None and self._mask_vocab is vocab:
            return self._mask_cache.copy()
        idx = self.grammar._index(vocab)
        if self.finished:
            m = idx.zero.copy()
        elif self._pending is not None:
            m = idx.slot(self._pending.type, self._pending.choices, self._pending.min) | idx.stop
        elif self.grammar.style == "find":
            m = self._find_mask(idx)
        else:
            key = (self._used_ids, self._eoo, bool(self._operands), tuple(self._alt_states))
            m = idx.mask_cache.get(key)
            if m is None:
                m = self._getopt_mask(idx)
                if len(idx.mask_cache) > 100_000:
                    idx.mask_cache.clear()
                idx.mask_cache[key] = m
        self._mask_cache, self._mask_vocab = m, vocab
        return m.copy()

    def _getopt_mask(self, idx: _Index) -> np.ndarray:
        g = self.grammar
        m = idx.stop.copy()
        used = self.used_options
        more_options = not self._eoo and not (g.options_first and self._operands)
        if more_options:
            opts = idx.opt_base.copy()
            for j in self._used:
                opts &= ~idx.disable[j]
            # options that constrain others: offered only if the command can still be completed
            for j, oid, rep in idx.constrained:
                if (oid in used and not rep) or (idx.partners.get(oid, frozenset()) & used):
                    continue              # already disabled
                if not self._feasible(idx, used | {oid}, can_add=True):
                    opts &= ~idx.option_tokens[j]
            m |= opts
            if g.end_of_options and self._feasible(idx, used, can_add=False):
                m |= idx.dashdash
        # operands: once no option can follow (after '--', or after the first operand of an
        # options-first utility), only usage forms whose option requirements are met remain
        final = not more_options or g.options_first
        if final and not self._feasible(idx, used, can_add=False):
            pass
        else:
            operand = idx.zero.copy()
            for a, ok, states in zip(g.alternatives, idx.alt_ok, self._alt_states):
                if not ok or not states or not _alt_active(a, used):
                    continue
                if not (a.requirements_met(used) if final else self._reqs_addable(idx, a, used)):
                    continue
                for i, c in states:
                    if i < len(a.sequence):
                        e = a.sequence[i]
                        if e.max is None or c < e.max:
                            operand |= idx.slot(e.type)
            if not self._eoo:
                operand &= ~idx.dash
            m |= operand
        if self.is_complete():
            m |= idx.execute
        return m

    def _addable(self, idx: _Index, oid: str, used: set[str]) -> bool:
        return oid in idx.offered and not (idx.partners.get(oid, frozenset()) & used)

    def _reqs_addable(self, idx: _Index, a: Alternative, used: set[str]) -> bool:
        for r in a.requires_all:
            if r not in used and not self._addable(idx, r, used):
                return False
        for grp in a.requires_any:
            if not (grp & used) and not any(self._addable(idx, r, used) for r in grp):
                return False
        return True

    def _feasible(self, idx: _Index, used: set[str], can_add: bool) -> bool:
        """Whether a command with these options (plus addable ones if ``can_add``) can be completed."""
        g = self.grammar
        for grp in g.required_one_of:
            if not (grp & used) and not (can_add and any(self._addable(idx, r, used) for r in grp)):
                return False
        for u in used:
            for r in g.requires.get(u, ()):
                if r not in used and not (can_add and self._addable(idx, r, used)):
                    return False
        for a, ok, states in zip(g.alternatives, idx.alt_ok, self._alt_states):
            if ok and states and _alt_active(a, used) and \
                    (self._reqs_addable(idx, a, used) if can_add else a.requirements_met(used)):
                return True
        return False

    def _find_mask(self, idx: _Index) -> np.ndarray:
        g = self.grammar
        m = idx.stop.copy()
        if self._phase == "start":
            lead = idx.leading.copy()
            for j in self._used:
                if not g.options[j].repeatable:
                    lead &= ~idx.option_tokens[j]
            m |= lead
        if self._phase in ("start", "paths"):
            m |= idx.paths
        prim = idx.other_prim.copy()
        if not self._nonglobal_seen and not self._need_operand:
            prim |= idx.global_prim
        for name in self._prims_used:
            p = g.primaries[name]
            if not p.repeatable and name in idx.primary_tokens:
                prim &= ~idx.primary_tokens[name]
        m |= prim | idx.unary | idx.open
        if self._last_complete and not self._need_operand:
            m |= idx.binary
            if self._depth > 0:
                m |= idx.close
        if not self._need_operand and self._depth == 0:
            m |= idx.execute
        return m

    # ---------------------------------------------------------------- transitions
    def push(self, token: Token | str | int, check: bool = True) -> "GrammarState":
        """Append one argument (a Token, its text, or its vocabulary index).

        With ``check`` a token the grammar forbids raises :class:`GrammarError`
        (the mask over the bound vocabulary is consulted when the token is in it).
        """
        tok = self._as_token(token)
        if self.finished:
            raise GrammarError(f"command already ended with {self.finished}")
        if check and self.vocabulary is not None:
            i = self.grammar._index(self.vocabulary).text_index.get(tok.text)
            if i is not None and self.vocabulary[i] == tok and not self.valid_next()[i]:
                raise GrammarError(f"{tok.text!r} is not allowed after {self.command}")
        self._mask_cache = None
        if tok.kind == "stop":
            self.finished = "stop"
            return self
        if tok.kind == "execute":
            if check and not self.is_complete():
                raise GrammarError(f"{self.command} is not complete")
            self.finished = "execute"
            return self
        if self._pending is not None:
            if check and tok.kind != "value":
                raise GrammarError(f"{tok.text!r} given where a {self._pending.type} value is expected")
            vt = tok if tok.kind == "value" else Token(tok.text, "value", classify_text(tok.text))
            if check and not _accepts(self._pending.type, self._pending.choices, vt, self._pending.min):
                raise GrammarError(f"{tok.text!r} is not a valid {self._pending.type} for {self._pending_owner}")
            self._pending = None
            self._last_complete = True
            self.tokens.append(tok.text)
            return self
        if self.grammar.style == "find":
            self._push_find(tok, check)
        else:
            self._push_getopt(tok, check)
        self.tokens.append(tok.text)
        return self

    def _push_getopt(self, tok: Token, check: bool) -> None:
        g = self.grammar
        if tok.kind == "end_of_options":
            if check and (self._eoo or not g.end_of_options):
                raise GrammarError("'--' not allowed here")
            self._eoo = True
            return
        if tok.kind == "option" and not self._eoo and not (g.options_first and self._operands):
            parsed = _parse_option_word(g, tok.text)
            if parsed is None:
                raise GrammarError(f"{g.utility}: unknown option {tok.text!r}")
            used = self.used_options
            for j, val, _ in parsed:          # validate the whole word first: a failed push changes nothing
                o = g.options[j]
                if check:
                    if o.excluded:
                        raise GrammarError(f"option {tok.text!r} is excluded: {o.excluded}")
                    if o.id in used and not o.repeatable:
                        raise GrammarError(f"option {o.id!r} already given")
                    for grp in g.exclusive:
                        if o.id in grp and (grp - {o.id}) & used:
                            raise GrammarError(f"option {o.id!r} conflicts with {sorted((grp - {o.id}) & used)}")
                    if val is not None and not _accepts(o.arg.type, o.arg.choices,
                                                        Token(val, "value", classify_text(val)), o.arg.min):
                        raise GrammarError(f"{val!r} is not a valid {o.arg.type} for {o.id}")
                    if not _viable_alts(g, self._alt_states, used | {o.id}):
                        raise GrammarError(f"option {o.id!r} leaves no usage form for the operands given")
                used = used | {o.id}
            for j, val, pending in parsed:
                o = g.options[j]
                self._used.append(j)
                if pending:
                    self._pending, self._pending_owner = o.arg, o.id
            self._used_ids = used
            return
        if tok.kind == "option" and check and not self._eoo:
            raise GrammarError(f"option {tok.text!r} after the first operand")
        # operand
        if check and tok.text.startswith("-") and not self._eoo:
            raise GrammarError(f"operand {tok.text!r} would be read as an option")
        vt = tok if tok.kind == "value" else Token(tok.text, "value", classify_text(tok.text))
        new = [_step(a.sequence, st, vt) for a, st in zip(g.alternatives, self._alt_states)]
        if check and not _viable_alts(g, new, self.used_options):
            raise GrammarError(f"operand {tok.text!r} fits no usage form of {g.utility}")
        self._alt_states = new
        self._operands.append(vt)

    def _push_find(self, tok: Token, check: bool) -> None:
        g = self.grammar
        if tok.kind == "option":
            hit = g.lookup_flag(tok.text)
            if hit is None or (check and self._phase != "start"):
                raise GrammarError(f"find option {tok.text!r} not allowed here")
            self._used.append(hit[0])
            self._used_ids = self._used_ids | {g.options[hit[0]].id}
            return
        if tok.kind == "primary":
            p = g.primaries.get(tok.text)
            if p is None or (check and not p.supported):
                raise GrammarError(f"unsupported find primary {tok.text!r}")
            if check and p.category == "global" and (self._nonglobal_seen or self._need_operand):
                raise GrammarError(f"global option {p.name} must precede tests and operators")
            if check and not p.repeatable and p.name in self._prims_used:
                raise GrammarError(f"{p.name} already given")
            self._phase = "expr"
            if p.category != "global":
                self._nonglobal_seen = True
            self._prims_used.append(p.name)
            self._need_operand = False
            self._last_complete = True
            if p.arg is not None:
                self._pending, self._pending_owner = p.arg, p.name
                self._last_complete = False
            return
        if tok.kind == "operator":
            role = g.operators.get(tok.text)
            if check and role == "binary" and (not self._last_complete or self._need_operand):
                raise GrammarError(f"{tok.text} needs an expression on its left")
            if check and role == "close" and (self._depth == 0 or not self._last_complete):
                raise GrammarError("unbalanced or empty parentheses")
            if role is None:
                raise GrammarError(f"unknown find operator {tok.text!r}")
            self._phase = "expr"
            self._nonglobal_seen = True
            if role in ("unary", "open"):
                self._need_operand = True
                self._last_complete = False
                if role == "open":
                    self._depth += 1
            elif role == "binary":
                self._need_operand = True
                self._last_complete = False
            elif role == "close":
                self._depth -= 1
                self._last_complete = True
            return
        if check and (self._phase == "expr" or tok.text.startswith("-")):
            raise GrammarError(f"find: paths must precede the expression ({tok.text!r})")
        self._phase = "paths"
        self._operands.append(tok)


# --------------------------------------------------------------------------- helpers

def _type_ok(spec: ArgSpec, kind: str) -> bool:
    if spec.choices is not None or spec.type == "CHOICE":
        return kind == "CHOICE" or kind in VALUE_TYPES
    if kind in VALUE_TYPES:
        return kind in ACCEPTS[spec.type]
    if kind in ACCEPTS:     # a slot type: some value fits both
        return bool(ACCEPTS[kind] & ACCEPTS[spec.type])
    return False


def _alt_active(a: Alternative, used: set[str]) -> bool:
    return not (a.forbids & used)


def _viable_alts(g: Grammar, alt_states, used: set[str]) -> bool:
    return any(st and _alt_active(a, used) for a, st in zip(g.alternatives, alt_states))


def _closure(seq: tuple[Element, ...], states) -> frozenset:
    """Add the states reachable by leaving an element whose minimum is met."""
    out = set()
    todo = list(states)
    while todo:
        i, c = todo.pop()
        if (i, c) in out:
            continue
        out.add((i, c))
        if i < len(seq) and c >= seq[i].min:
            todo.append((i + 1, 0))
    return frozenset(out)


def _step(seq: tuple[Element, ...], states, tok: Token) -> frozenset:
    nxt = set()
    for i, c in states:
        if i < len(seq):
            e = seq[i]
            if (e.max is None or c < e.max) and _accepts(e.type, None, tok):
                c2 = c + 1
                if e.max is None:
                    c2 = min(c2, max(e.min, 1))
                nxt.add((i, c2))
    return _closure(seq, nxt)


def _parse_option_word(g: Grammar, text: str):
    """[(option index, attached value, value pending)] for one option word, or None."""
    hit = g.lookup_flag(text)
    if hit is not None:
        j, val = hit
        o = g.options[j]
        pending = val is None and o.arg is not None and o.arg.required and text in o.flags
        return [(j, val, pending)]
    if text.startswith("--") or not text.startswith("-") or len(text) < 3:
        return None
    out = []     # bundled short options, possibly ending in one with an attached value
    k = 1
    while k < len(text):
        j = g.flag_index.get("-" + text[k])
        if j is None:
            return None
        o = g.options[j]
        if o.arg is not None and k + 1 < len(text):
            out.append((j, text[k + 1:], False))
            return out
        out.append((j, None, o.arg is not None and o.arg.required))
        k += 1
    return out
