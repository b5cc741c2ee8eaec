"""Derive argument grammars for GNU utilities from their documentation.

Writes ``omnigym/sim_assets/shell/grammars/<utility>.json`` (schema in
``grammar.py``) for every utility in :data:`UTILITIES`.  For each utility:

1. **Docs.**  ``UTIL --help``, the man page (``man -P cat UTIL``, when man pages
   are installed) and the first line of ``UTIL --version``, all in the C locale.
2. **Options.**  Option lines of the help text and of the man page are parsed
   into spellings (``-n, --lines=[-]NUM``), whether they take an argument
   (``=ARG`` required, ``[=ARG]`` only attached), the argument's metavariable
   and the description.
3. **Probes** of the binary complete the docs.  Each runs in an empty
   temporary directory with stdin from /dev/null, and none can do more than
   fail or create a stray file there:

   * ``UTIL FLAG --omnigym-probe-invalid``: getopt rejects an unknown FLAG
     before the bogus option, so lines that merely look like options (``-M``
     in cut's range table) are dropped (flags without an argument are tried
     together first);
   * ``UTIL OPERAND --omnigym-probe-invalid``: when the bogus option is not
     reported, options end at the first operand (``options_first``: seq, tr,
     basename, echo);
   * ``UTIL --opt=BAD``: argmatch-parsed options answer "Valid arguments are:
     ..." with their choice list;
   * ``UTIL FLAG 0`` (then 1, 2): the smallest number a NUM/SIZE option
     accepts when 0 is refused (``fold -w 0``, ``sort --batch-size 1``).
4. **Argument types** come from the metavariable (:data:`METAVAR_TYPES`: NUM,
   N, FILE, DIR, PATTERN, SIZE, LIST...) refined by the description (a FILE
   that is written is OUTFILE, a number of seconds a DURATION, a shell PATTERN
   a GLOB, ``[-]NUM`` / ``[+]NUM`` signed numbers, a "comma separated list"
   a NUMLIST).  **Choice lists** come from the argmatch probe, else from the docs
   (``WHEN is 'always', 'never', or 'auto'``, ``METHOD={none,prepend,...}``,
   ``WORD: none (-U), size (-S)...``, ``STYLE is one of:`` tables,
   ``--sparse=always`` mentions...).  An option is repeatable when its
   description says so ("multiple times", "accumulate"...).
5. **Operands** come from the usage lines (help ``Usage:``/``or:`` and the man
   SYNOPSIS): each line is one alternative; ``[X]`` is optional, ``X...``
   repeats; options named in a line (``-t DIRECTORY SOURCE...``,
   ``--files0-from=F``, ``[-T]``) become conditions: an alternative requires
   the options it names outside brackets and forbids the options other lines
   name that it does not.  Operand types come from the metavariable too
   (FILE, DIRECTORY, SOURCE, DEST, FIRST...); FILE may be a directory when the
   summary line talks about directories; "X must not be 0" makes X nonzero.
6. **Overrides** (:data:`OVERRIDES`, hand-written, applied last and recorded in
   the file's ``overrides`` list) add what help text does not express: grep's
   PATTERNS operand disappears with ``-e``/``-f``; tr's operand count depends
   on ``-d``/``-s``; mutually exclusive options; operand types that the docs
   only call FILE but that may be directories; options excluded because they
   never return (``tail -f``); and find, whose expression grammar is parsed
   from ``find --help`` into primaries, of which a subset is supported (paths,
   then ``-name PATTERN -type [fdl] -size N[ck] -mtime N -maxdepth N -newer
   FILE -perm MODE -empty -print`` and a few more, with ``!``, ``-a``, ``-o``,
   parentheses).

Output is deterministic: sorted keys, options sorted by id, choices sorted.
``--check`` regenerates in memory and exits 1 when the files on disk differ
(the docs differ between tool versions and with/without man pages: the
``source`` field records what was used).

    python -m omnigym.environments.shell.generate_grammars [--check] [--only ls grep] [--out DIR]
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from omnigym.environments.shell.grammar import ACCEPTS, SCHEMA_VERSION, Grammar, grammar_dir

GENERATED_BY = f"omnigym.environments.shell.generate_grammars (schema {SCHEMA_VERSION})"

#: Utilities with a grammar (coreutils, findutils, grep); deterministic ones only.
UTILITIES = (
    "base64", "basename", "cat", "chmod", "comm", "cp", "cut", "dirname", "du", "echo", "expand",
    "find", "fold", "grep", "head", "join", "ln", "ls", "md5sum", "mkdir", "mv", "nl", "od", "paste",
    "readlink", "realpath", "rm", "rmdir", "seq", "sha1sum", "sha256sum", "sort", "split", "stat",
    "tac", "tail", "tee", "touch", "tr", "unexpand", "uniq", "wc",
)

PROBE_OPTION = "--omnigym-probe-invalid"
PROBE_VALUE = "__omnigym_probe__"

#: Metavariable -> slot type of an option argument or operand.
METAVAR_TYPES = {
    "FILE": "FILE", "F": "FILE", "RFILE": "FILE", "PATTERN_FILE": "FILE", "INPUT": "FILE",
    "FILE1": "FILE", "FILE2": "FILE", "OUTPUT": "OUTFILE",
    "DIR": "DIR", "DIRECTORY": "DIR",
    "SOURCE": "PATH", "TARGET": "PATH", "DEST": "NEWPATH", "LINK_NAME": "NEWPATH",
    "NUM": "NUM", "N": "NUM", "NUMBER": "NUM", "K": "NUM", "COLS": "NUM", "WIDTH": "NUM",
    "LEVELS": "NUM", "NMERGE": "NUM", "PID": "NUM", "FIELD": "NUM", "FROM": "NUM", "CHUNKS": "NUM",
    "FIRST": "NUM", "LAST": "NUM", "INCREMENT": "NUM", "FILENUM": "NUM",
    "[-]NUM": "NUM_OR_NEG", "[+]NUM": "NUM_OR_POS",
    "SIZE": "SIZE", "BYTES": "SIZE",
    "PATTERN": "PATTERN", "PATTERNS": "PATTERN", "REGEX": "PATTERN", "BRE": "PATTERN",
    "GLOB": "GLOB",
    "LIST": "LIST", "KEYDEF": "KEYDEF",
    "DELIM": "CHAR", "SEP": "CHAR", "CHAR": "CHAR", "CC": "CHAR",
    "STRING": "STRING", "STR": "STRING", "STRING1": "STRING", "STRING2": "STRING", "SUFFIX": "STRING",
    "LABEL": "STRING", "NAME": "STRING", "PREFIX": "STRING", "CTX": "STRING",
    "MODE": "MODE", "OCTAL-MODE": "MODE",
    "FORMAT": "FORMAT",
    "STAMP": "TIMESTAMP", "DATE": "DATE",
    "COMMAND": "COMMAND", "PROG": "COMMAND",
}
#: Metavariables whose type is settled by the name (no choice list is looked for).
STRONG_TYPES = {"FILE", "OUTFILE", "DIR", "PATH", "NEWPATH", "NUM", "NUM_OR_NEG", "NUM_OR_POS", "SIZE",
                "PATTERN", "GLOB", "LIST", "KEYDEF", "CHAR", "COMMAND", "TIMESTAMP", "DATE"}
_PLACEHOLDERS = {"OPTION", "SHORT-OPTION", "LONG-OPTION"}
_WORD = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_REPEAT_HINT = re.compile(r"multiple times|more than once|can be repeated|may be repeated|multiple options specify"
                          r"|may be given multiple|accumulate", re.I)


# =========================================================================== overrides
#
# Hand-written facts the documentation does not state in a parseable way.  Keys:
#   notes        why (copied into the grammar's "overrides" list)
#   options      {id: {field: value}} replacing fields ("arg" may be a partial dict merged into the arg)
#   operand_types {element name: slot type} for the derived usage alternatives
#   operands     a full replacement list of alternatives
#   alternative_forbids {"SOURCE DEST": [ids]}: options a derived usage form (by operand names) forbids
#   constraints  exclusive / required_one_of (appended), requires (merged), options_first, end_of_options
#   expression   (find) supported primaries, narrowed choices, leading options kept
# Unknown option ids raise, so a tool upgrade that renames options is noticed.

_PATHS = "PATH"
OVERRIDES: dict[str, dict] = {
    "basename": {
        "notes": ["'NAME [SUFFIX]' applies without -a/-s; 'OPTION... NAME...' means with -a or -s (-z alone "
                  "keeps the first form)"],
        "operands": [
            {"usage": "basename NAME [SUFFIX]", "sequence": [["NAME", "STRING", 1, 1], ["SUFFIX", "STRING", 0, 1]],
             "forbids": ["multiple", "suffix"]},
            {"usage": "basename -a|-s SUFFIX NAME...", "sequence": [["NAME", "STRING", 1, None]],
             "requires_any": [["multiple", "suffix"]]},
        ],
    },
    "chmod": {"notes": ["FILE operands may be directories"], "operand_types": {"FILE": _PATHS}},
    "cp": {"notes": ["--backup/-b/-S and -n are mutually exclusive", "-l and -s are mutually exclusive ('cannot make "
                     "both hard and symbolic links')", "--reflink only with --sparse=auto (the default): the two are not "
                     "combined", "--parents needs a DIRECTORY destination (not the SOURCE "
                     "DEST form)"],
           "constraints": {"exclusive": [["backup", "no-clobber"], ["b", "no-clobber"], ["suffix", "no-clobber"],
                                         ["link", "symbolic-link"], ["reflink", "sparse"]]},
           "alternative_forbids": {"SOURCE DEST": ["parents"]}},
    "cut": {
        "notes": ["exactly one of -b, -c, -f ('Use one, and only one of -b, -c or -f')",
                  "-d and -s only with -f (cut: 'an input delimiter may be specified only when operating on "
                  "fields')"],
        "constraints": {"exclusive": [["bytes", "characters", "fields"], ["bytes", "delimiter"],
                                      ["characters", "delimiter"], ["bytes", "only-delimited"],
                                      ["characters", "only-delimited"]],
                        "required_one_of": [["bytes", "characters", "fields"]],
                        "requires": {"delimiter": ["fields"], "only-delimited": ["fields"]}},
    },
    "du": {"notes": ["--files0-from (a NUL-separated file list) is not offered",
                     "-s excludes -d ('summarizing conflicts with --max-depth') and -a ('cannot both summarize "
                     "and show all entries')"],
           "options": {"files0-from": {"excluded": "needs a NUL-separated file list"}},
           "constraints": {"exclusive": [["summarize", "max-depth"], ["summarize", "all"]]}},
    "echo": {
        "notes": ["echo takes options only before the first STRING and prints '--' literally"],
        "constraints": {"options_first": True, "end_of_options": False},
    },
    "grep": {
        "notes": ["PATTERNS is the first operand unless -e or -f gives the patterns (man SYNOPSIS)",
                  "-e, -f, --include, --exclude, --exclude-dir may be given several times",
                  "FILE operands must be regular files (a directory is an error, exit 2) unless -r/-R",
                  "-P (PCRE) is not offered: the shared PATTERN values are POSIX regexes"],
        "options": {"regexp": {"repeatable": True}, "file": {"repeatable": True},
                    "include": {"repeatable": True}, "exclude": {"repeatable": True},
                    "exclude-dir": {"repeatable": True},
                    "perl-regexp": {"excluded": "PCRE syntax differs from the POSIX PATTERN values"},
                    "directories": {"excluded": "'read' makes directory operands an error"},
                    "devices": {"excluded": "irrelevant in the sandbox"}},
        "operands": [
            {"usage": "grep [OPTION]... PATTERNS [FILE]...", "sequence": [["PATTERNS", "PATTERN", 1, 1],
                                                                         ["FILE", "FILE", 0, None]],
             "forbids": ["regexp", "file", "recursive", "dereference-recursive"]},
            {"usage": "grep [OPTION]... -r PATTERNS [FILE]...", "sequence": [["PATTERNS", "PATTERN", 1, 1],
                                                                            ["FILE", _PATHS, 0, None]],
             "requires_any": [["recursive", "dereference-recursive"]], "forbids": ["regexp", "file"]},
            {"usage": "grep [OPTION]... -e PATTERNS ... [FILE]...", "sequence": [["FILE", "FILE", 0, None]],
             "requires_any": [["regexp", "file"]], "forbids": ["recursive", "dereference-recursive"]},
            {"usage": "grep [OPTION]... -r -e PATTERNS ... [FILE]...", "sequence": [["FILE", _PATHS, 0, None]],
             "requires_any": [["regexp", "file"], ["recursive", "dereference-recursive"]]},
        ],
        "constraints": {"exclusive": [["extended-regexp", "fixed-strings", "basic-regexp"]]},
    },
    "join": {
        "notes": ["-o FORMAT values: 'auto', '0', FILENUM.FIELD lists (examples)",
                  "-j FIELD is -1 FIELD -2 FIELD, so it excludes -1 and -2 with a different FIELD"],
        "options": {"o": {"arg": {"type": "CHOICE", "choices": ["0", "1.1", "1.1,2.1", "auto"]}},
                    "a": {"arg": {"type": "CHOICE", "choices": ["1", "2"]}, "repeatable": True},
                    "v": {"arg": {"type": "CHOICE", "choices": ["1", "2"]}, "repeatable": True}},
        "constraints": {"exclusive": [["j", "1"], ["j", "2"], ["a", "v"]]},
    },
    "ls": {"notes": ["FILE operands may be directories"],
           "options": {"time-style": {"arg": {"type": "CHOICE",
                                              "choices": ["full-iso", "iso", "locale", "long-iso"]}},
                       "ignore": {"repeatable": True}, "hide": {"repeatable": True}}},
    "mkdir": {"notes": ["DIRECTORY operands are names to create"], "operand_types": {"DIRECTORY": "NEWPATH"}},
    "mv": {"notes": ["--backup/-b/-S and -n are mutually exclusive (mv: 'options --backup and --no-clobber are "
                     "mutually exclusive')"],
           "constraints": {"exclusive": [["backup", "no-clobber"], ["b", "no-clobber"], ["suffix", "no-clobber"]]}},
    "od": {
        "notes": ["only the first usage form (FILE operands): offsets as operands are not modelled",
                  "-t TYPE values are examples of the TYPE mini-language", "-t may be given several times"],
        "options": {"format": {"arg": {"type": "CHOICE", "choices": ["a", "c", "d1", "d2", "o1", "o2", "u1",
                                                                     "x1", "x2", "x4", "xz"]},
                               "repeatable": True},
                    "traditional": {"excluded": "selects the OFFSET/LABEL usage form, not modelled"}},
        "operands": [{"usage": "od [OPTION]... [FILE]...", "sequence": [["FILE", "FILE", 0, None]]}],
    },
    "readlink": {"notes": ["FILE operands may be directories"], "operand_types": {"FILE": _PATHS}},
    "realpath": {"notes": ["FILE operands may be directories"], "operand_types": {"FILE": _PATHS}},
    "rm": {"notes": ["FILE operands may be directories (removed with -r/-d, an error otherwise)",
                     "at least one FILE unless -f ('rm: missing operand'), and -i/-I/--interactive cancel -f"],
           "options": {"no-preserve-root": {"excluded": "never offered"}},
           "operands": [{"usage": "rm [OPTION]... FILE...", "sequence": [["FILE", _PATHS, 1, None]]},
                        {"usage": "rm -f [OPTION]... [FILE]...", "sequence": [["FILE", _PATHS, 0, None]],
                         "requires_all": ["force"], "forbids": ["i", "I", "interactive"]}]},
    "seq": {"notes": ["-f and -w are incompatible ('format string may not be specified when printing equal "
                      "width strings')", "INCREMENT must not be 0"],
            "constraints": {"exclusive": [["format", "equal-width"]]}},
    "sort": {
        "notes": ["-k and -T may be given several times",
                  "-c/-C (check) take at most one FILE and exclude -o and --files0-from combinations that "
                  "sort rejects", "ordering options are incompatible with each other (sort: 'options -gn "
                  "are incompatible')", "--debug is incompatible with -o, -c and -C", "--compress-program and --random-source are not offered"],
        "options": {"key": {"repeatable": True}, "temporary-directory": {"repeatable": True},
                    "random-source": {"excluded": "needs a file of random bytes"},
                    "files0-from": {"excluded": "needs a NUL-separated file list"}},
        "operands": [
            {"usage": "sort [OPTION]... [FILE]...", "sequence": [["FILE", "FILE", 0, None]],
             "forbids": ["check", "C"]},
            {"usage": "sort -c|-C [OPTION]... [FILE]", "sequence": [["FILE", "FILE", 0, 1]],
             "requires_any": [["check", "C"]]},
        ],
        "constraints": {"exclusive": [
            ["check", "C", "merge", "output"],
            ["general-numeric-sort", "human-numeric-sort", "month-sort", "numeric-sort", "random-sort",
             "version-sort", "sort"],
            ["dictionary-order", "general-numeric-sort", "human-numeric-sort", "month-sort", "numeric-sort",
             "version-sort", "sort"],
            ["ignore-nonprinting", "general-numeric-sort", "human-numeric-sort", "month-sort", "numeric-sort",
             "version-sort", "sort"],
            ["check", "C", "random-sort"], ["check", "C", "sort"],
            ["debug", "output"], ["debug", "check"], ["debug", "C"]]},
    },
    "split": {"notes": ["-b, -C, -l and -n choose exclusive splitting modes",
                        "-n CHUNKS values: N only (K/N forms not modelled)",
                        "numeric/hex suffix options are exclusive"],
              "constraints": {"exclusive": [["bytes", "line-bytes", "lines", "number"],
                                            ["d", "numeric-suffixes", "x", "hex-suffixes"]],
                              "requires": {"elide-empty-files": ["number"]}},
              "options": {"filter": {"excluded": "runs a shell command"},
                          "unbuffered": {"excluded": "only with -n r/..., not modelled"},
                          "elide-empty-files": {"excluded": "only with -n"}}},
    "stat": {"notes": ["FILE operands may be directories", "-c/--format and --printf are exclusive"],
             "operand_types": {"FILE": _PATHS},
             "constraints": {"exclusive": [["format", "printf", "terse"]]}},
    "tail": {"notes": ["-f/-F/--follow never return on a regular file and are not offered",
                       "--pid, -s and --max-unchanged-stats only matter with -f"],
             "options": {"follow": {"excluded": "never returns"}, "F": {"excluded": "never returns"},
                         "pid": {"excluded": "only with -f"}, "retry": {"excluded": "only with -f"},
                         "sleep-interval": {"excluded": "only with -f"},
                         "max-unchanged-stats": {"excluded": "only with -f"}}},
    "tee": {"notes": ["FILE operands are written"], "operand_types": {"FILE": "OUTFILE"}},
    "touch": {"notes": ["FILE operands are created when missing", "-d STRING is a date (DATE)",
                        "-d, -r and -t are exclusive ('cannot specify times from more than one source')"],
              "options": {"date": {"arg": {"type": "DATE"}}},
              "operand_types": {"FILE": "NEWPATH"},
              "constraints": {"exclusive": [["date", "reference", "t"]]}},
    "tr": {
        "notes": ["without -d: STRING1 STRING2 (translate), or STRING1 alone with -s; with -d: STRING1 alone, "
                  "or STRING1 STRING2 with -s", "-t only when translating"],
        "operands": [
            {"usage": "tr [-c] [-t] STRING1 STRING2", "sequence": [["STRING1", "STRING", 1, 1],
                                                                  ["STRING2", "STRING", 1, 1]],
             "forbids": ["delete", "squeeze-repeats"]},
            {"usage": "tr -s [-c] STRING1 [STRING2]", "sequence": [["STRING1", "STRING", 1, 1],
                                                                  ["STRING2", "STRING", 0, 1]],
             "requires_all": ["squeeze-repeats"], "forbids": ["delete", "truncate-set1"]},
            {"usage": "tr -s [-c] [-t] STRING1 STRING2", "sequence": [["STRING1", "STRING", 1, 1],
                                                                     ["STRING2", "STRING", 1, 1]],
             "requires_all": ["squeeze-repeats"], "forbids": ["delete"]},
            {"usage": "tr -d [-c] STRING1", "sequence": [["STRING1", "STRING", 1, 1]],
             "requires_all": ["delete"], "forbids": ["squeeze-repeats", "truncate-set1"]},
            {"usage": "tr -d -s [-c] STRING1 STRING2", "sequence": [["STRING1", "STRING", 1, 1],
                                                                   ["STRING2", "STRING", 1, 1]],
             "requires_all": ["delete", "squeeze-repeats"], "forbids": ["truncate-set1"]},
        ],
    },
    "uniq": {"notes": ["INPUT must be a file; OUTPUT is written",
                       "--group excludes -c, -d, -D, -u and --all-repeated"],
             "constraints": {"exclusive": [["group", "count"], ["group", "repeated"], ["group", "D"],
                                           ["group", "unique"], ["group", "all-repeated"],
                                           ["count", "D"], ["count", "all-repeated"]]}},
    **{u: {"notes": ["--ignore-missing, --quiet, --status, --strict and -w are 'useful only when verifying "
                     "checksums' (-c)", "-b, -t, -z and --tag are refused with -c", "--tag refuses -t"],
           "constraints": {"requires": {x: ["check"] for x in ("ignore-missing", "quiet", "status", "strict",
                                                              "warn")},
                           "exclusive": [["check", "binary"], ["check", "text"], ["check", "tag"], ["check", "zero"],
                                         ["tag", "text"]]}}
       for u in ("md5sum", "sha1sum", "sha256sum")},
    "wc": {"notes": ["--files0-from excludes FILE operands"],
           "options": {"files0-from": {"excluded": "needs a NUL-separated file list"}}},
    "find": {
        "notes": ["find's expression grammar is hand-modelled: leading -H/-L/-P, paths, then primaries parsed "
                  "from 'find --help'; the supported subset is listed in expression.primaries[].supported",
                  "-type takes one of f, d, l", "global options (-maxdepth, -mindepth, -depth) must precede "
                  "tests, operators and actions", "-D and -O are not offered"],
        "expression": {
            "supported": ["-name", "-iname", "-path", "-regex", "-type", "-size", "-mtime", "-mmin", "-newer",
                          "-perm", "-empty", "-print", "-print0", "-maxdepth", "-mindepth", "-depth", "-links",
                          "-true", "-false", "-prune", "-ls", "-readable", "-writable", "-executable"],
            "choices": {"-type": ["d", "f", "l"]},
            "non_repeatable": ["-maxdepth", "-mindepth", "-depth"],
        },
        "options": {"D": {"excluded": "debug output"}, "O": {"excluded": "optimiser level"}},
    },
}


# =========================================================================== running tools

def _env(home: str) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
            "MANWIDTH": "120", "TERM": "dumb", "HOME": home}


def _run(args: list[str], cwd: str, timeout: float = 10.0) -> tuple[int, str, str]:
    try:
        p = subprocess.run(args, cwd=cwd, env=_env(cwd), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "", "timeout"
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


@dataclass
class Docs:
    util: str
    help: str
    man: str | None
    version: str


def collect_docs(util: str, cwd: str, use_man: bool = True) -> Docs:
    if shutil.which(util) is None:
        raise FileNotFoundError(f"{util} is not installed")
    rc, out, err = _run([util, "--help"], cwd)
    if rc != 0 or not out.strip():
        raise RuntimeError(f"{util} --help failed: {err.strip()}")
    help_text = re.sub(r"(?m)^(Usage|\s+or):(\s+)\S*/", r"\1:\2", out)
    version = _run([util, "--version"], cwd)[1].splitlines()
    man = None
    if use_man and shutil.which("man"):
        rc, mout, _ = _run(["man", "--nh", "--nj", "-P", "cat", util], cwd)
        mout = re.sub(r".\x08", "", mout)
        if rc == 0 and "NAME" in mout and util in mout:
            man = mout
    return Docs(util, help_text, man, version[0].strip() if version else "")


# =========================================================================== option lines

_FLAG = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9_-]*")
_META = re.compile(r" ([A-Z][A-Z0-9_-]*)(?=,|\s|$)")


@dataclass
class RawOption:
    flags: list[str]
    metavar: str | None = None
    required: bool = True
    description: str = ""
    origin: set = field(default_factory=set)
    dropped_flags: list[str] = field(default_factory=list)


def _parse_spec(text: str) -> tuple[list[tuple[str, str | None, bool]], str] | None:
    """Split '-n, --lines=[-]NUM   desc' into [(flag, metavar, required)] and the description."""
    pos, items = 0, []
    while True:
        m = _FLAG.match(text, pos)
        if not m:
            break
        flag, pos = m.group(0), m.end()
        rest = text[pos:]
        meta, required = None, True
        if rest.startswith("[="):
            close = rest.find("]")
            meta, required, pos = rest[2:close], False, pos + close + 1
        elif rest.startswith("="):
            mm = re.match(r"=(\{[^}]*\}|\S+?)(?=,\s|,$|\s|$)", rest)
            meta, pos = mm.group(1), pos + mm.end()
        elif rest.startswith("[") and not flag.startswith("--"):
            close = rest.find("]")
            meta, required, pos = rest[1:close], False, pos + close + 1
        else:
            mm = _META.match(rest)
            if mm:
                meta, pos = mm.group(1), pos + mm.end()
        items.append((flag, meta, required))
        sep = re.match(r",\s*(?=-)", text[pos:]) or \
            re.match(r"\s+(?=--?[A-Za-z0-9][\w-]*(?:[=\[,]|\s{2,}|$))", text[pos:])
        if sep:
            pos += sep.end()
            continue
        break
    if not items:
        return None
    return items, text[pos:].strip()


def parse_options(text: str, origin: str) -> tuple[list[RawOption], str]:
    """Option entries of a help text or man page, and the remaining (non-option) text."""
    lines = text.splitlines()
    out: list[RawOption] = []
    rest: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        m = _FLAG.match(body)
        if not (1 <= indent <= 8 and m and not re.fullmatch(r"-[^-]{2,}", m.group(0))):
            rest.append(line)
            i += 1
            continue
        i += 1
        while body.endswith(",") and i < len(lines) and lines[i].strip().startswith("-"):
            body = body + " " + lines[i].strip()           # '--color[=WHEN],' / '--colour[=WHEN]  desc'
            i += 1
        parsed = _parse_spec(body)
        if parsed is None:
            continue
        items, desc = parsed
        desc_lines = [desc] if desc else []
        while i < len(lines):
            nxt = lines[i]
            nind = len(nxt) - len(nxt.lstrip(" "))
            if not nxt.strip():
                # man pages: description paragraphs continue after blank lines
                if origin == "man" and i + 1 < len(lines) and lines[i + 1].strip() and \
                        len(lines[i + 1]) - len(lines[i + 1].lstrip(" ")) > indent:
                    i += 1
                    continue
                break
            if nind <= indent or (nind <= 8 and nxt.strip().startswith("-")):
                break
            desc_lines.append(nxt.strip())
            i += 1
        flags, metas = [], []
        for flag, meta, req in items:
            if meta is not None and re.search(r"[a-z]", meta) and "{" not in meta and req:
                flags.append(f"{flag}={meta}")          # literal value: --indicator-style=slash
                continue
            flags.append(flag)
            if meta is not None:
                metas.append((flag, meta, req))
        if any(re.fullmatch(r"-[^-]{2,}", f.split("=")[0]) for f in flags):
            continue                                     # -NUM shorthand, -cftuvSUX in prose
        opt = RawOption(flags=flags, description=" ".join(desc_lines), origin={origin})
        if metas:
            reqs = {r for _, _, r in metas}
            if len(reqs) > 1:
                # e.g. od '-S BYTES, --strings[=BYTES]': keep the short spelling's (required) semantics
                keep = [m for m in metas if m[2]]
                for f, _, _ in metas:
                    if not any(f == k[0] for k in keep):
                        opt.flags.remove(f)
                        opt.dropped_flags.append(f)
                metas = keep
            opt.metavar, opt.required = metas[0][1], metas[0][2]
        out.append(opt)
    return out, "\n".join(rest)


def _merge(opts: list[RawOption]) -> list[RawOption]:
    merged: list[RawOption] = []
    for o in opts:
        hit = next((m for m in merged if set(m.flags) & set(o.flags)), None)
        if hit is None:
            merged.append(RawOption(list(o.flags), o.metavar, o.required, o.description, set(o.origin),
                                    list(o.dropped_flags)))
            continue
        for f in o.flags:
            if f not in hit.flags and f not in hit.dropped_flags:
                hit.flags.append(f)
        if o.metavar and not hit.metavar:
            hit.metavar, hit.required = o.metavar, o.required
        elif o.metavar and hit.metavar and o.metavar != hit.metavar and "help" in o.origin:
            # expand '-t, --tabs=N' and '-t, --tabs=LIST': keep the broader type
            a, b = _metavar_type(hit.metavar), _metavar_type(o.metavar)
            if ACCEPTS.get(b, frozenset()) > ACCEPTS.get(a, frozenset()):
                hit.metavar = o.metavar
        if o.description and o.description not in hit.description:
            hit.description = (hit.description + " " + o.description).strip()
        hit.origin |= o.origin
    return merged


def _metavar_type(meta: str) -> str:
    if meta in METAVAR_TYPES:
        return METAVAR_TYPES[meta]
    if meta.startswith("{"):
        return "CHOICE"
    base = re.sub(r"\[[^\]]*\]", "", meta)
    return METAVAR_TYPES.get(base, "STRING")


# =========================================================================== choices and types

def _probe_choices(util: str, flags: list[str], required: bool, cwd: str) -> list[str] | None:
    long = [f for f in flags if f.startswith("--") and "=" not in f]
    if long:
        args = [util, f"{long[0]}={PROBE_VALUE}"]
    elif required:
        args = [util, flags[0], PROBE_VALUE]
    else:
        return None
    _, _, err = _run(args, cwd)
    if "Valid arguments are:" not in err and "missing" in err:
        # some utilities check operands first: retry with two (nonexistent) operands
        _, _, err = _run(args + [PROBE_VALUE + "1", PROBE_VALUE + "2"], cwd)
    if "Valid arguments are:" not in err:
        return None
    words = []
    for line in err.split("Valid arguments are:", 1)[1].splitlines():
        if not line.strip().startswith("-"):
            if line.strip():
                break
            continue
        words += re.findall(r"'([^']+)'", line)
    return sorted(set(words)) or None


def _split_words(part: str) -> list[str] | None:
    items = [x.strip() for x in re.split(r",\s*|\s+or\s+", part) if x.strip()]
    items = [x for x in items if not re.match(r"^(or\s+)?\+", x)]      # '+FORMAT' templates are not words
    words = []
    for it in items:
        it = re.sub(r"^or\s+", "", it)
        it = re.sub(r"\s*\((?:--?[\w-]+|default)\)$", "", it)
        it = re.sub(r"\s+--?[\w-]+$", "", it).strip("'\"")
        if not _WORD.match(it):
            return None
        words.append(it)
    return words if len(words) >= 2 else None


#: Metavariables that name a word from a fixed list; only these are looked up in the docs.
CHOICE_METAVARS = {"WORD", "WHEN", "TYPE", "STYLE", "TIME_STYLE", "METHOD", "CONTROL", "ACTION", "ATTR_LIST",
                   "RADIX", "MODE", "FORMAT", "FILENUM"}


def _sentences(text: str) -> list[str]:
    return [x for x in re.split(r"(?<=[.])\s+", re.sub(r"\s+", " ", text)) if x]


def _list_after(meta: str, sentence: str, whole_sentence_quotes: bool) -> set[str]:
    m = re.search(rf"\b{re.escape(meta)}(?: argument)?(?: of --[\w-]+)? (?:is|(?:[^.]*? )?can (?:also )?be|"
                  rf"which can be)[: ](?:one of )?([^.;]*)", sentence)
    if not m:
        return set()
    seg = m.group(1)
    quoted = re.findall(r"'([^']+)'", sentence if whole_sentence_quotes else seg)
    if quoted:
        return {q for q in quoted if _WORD.match(q)}
    words = _split_words(re.sub(r",?\s+or\s+\+\S+$", "", seg.strip()))
    return set(words or ())


def doc_choices(meta: str, desc: str, notes: str, help_text: str, longs: list[str]) -> list[str]:
    """Choice words for an argument, from the documentation.

    Looked for in the option's description ('WHEN is 'always', 'never', or
    'auto'', 'METHOD={none(default),prepend,separate}', 'RADIX is one of
    [doxn]', 'sort by WORD: none (-U), size (-S), ...'), in the free text
    outside option descriptions ('The WHEN argument defaults to 'always' and
    can also be 'auto' or 'never'', 'STYLE is one of:' tables) and in
    '--option=word' mentions of the help text.
    """
    found: set[str] = set()
    if meta.startswith("{"):
        found |= {w.strip() for w in re.split(r"[|,]", meta.strip("{}")) if w.strip()}
    if meta not in CHOICE_METAVARS and not found:
        return []
    flat = re.sub(r"\s+", " ", desc)
    m = re.search(rf"\b{re.escape(meta)}=\{{([^}}]*)\}}", flat)
    if m:
        found |= {re.sub(r"\(default\)", "", w).strip() for w in m.group(1).split(",")}
    m = re.search(rf"\b{re.escape(meta)} is one of \[([a-zA-Z]+)\]", flat)
    if m:
        found |= set(m.group(1))
    for seg in flat.split(";"):        # 'sort by WORD instead of name: none (-U), size (-S), ...'
        part = seg.rsplit(":", 1)[1] if ":" in seg else seg
        if ":" not in seg and not re.search(r"[a-z] -\w", part):
            continue
        part = re.split(r"\s+\((?!-|default)", part)[0]
        words = _split_words(part.strip().rstrip("."))
        if words:
            found |= set(words)
    m = re.search(r"\(default: ([\w,]+)\)", flat)
    if m and found:
        found |= set(m.group(1).split(","))
    for sent in _sentences(desc):
        found |= _list_after(meta, sent, False)
    for sent in _sentences(notes):
        if re.search(rf"\b{re.escape(meta)}\b", sent):
            found |= _list_after(meta, sent, f"The {meta} argument" in sent)
    lines = notes.splitlines()       # 'STYLE is one of:' followed by indented rows
    for i, line in enumerate(lines):
        if re.search(rf"\b{re.escape(meta)}\b", line) and line.rstrip().endswith(":"):
            rows: set[str] = set()
            row_indent = None
            for row in lines[i + 1:]:
                if not row.strip():
                    if rows:
                        break
                    continue
                if not row.startswith(" "):
                    break
                ind = len(row) - len(row.lstrip(" "))
                cols = re.split(r"\s{2,}", row.strip())
                if row_indent is None:
                    row_indent = ind
                if ind != row_indent or len(cols) < 2:
                    continue                      # a wrapped description line
                rows |= {w for w in re.split(r",\s*", cols[0]) if _WORD.match(w) and not w.isdigit()}
            found |= rows
    for lf in longs:
        found |= set(re.findall(rf"{re.escape(lf)}\[?=([a-z][a-z0-9-]*)", help_text))
    return sorted(w for w in found if _WORD.match(w))


def infer_arg(util: str, o: RawOption, notes: str, help_text: str, cwd: str) -> dict:
    """The ``arg`` entry of an option: type from the metavariable and description, choices if any."""
    meta = o.metavar
    base = _metavar_type(meta)
    choices = src = low = None
    if base not in STRONG_TYPES:
        choices = _probe_choices(util, o.flags, o.required, cwd)
        src = "argmatch" if choices else None
        if not choices:
            longs = [f for f in o.flags if f.startswith("--")]
            choices = doc_choices(meta, o.description, notes, help_text, longs) or None
            src = "docs" if choices else None
    if not choices and _WORD.match(meta):
        choices, src = [meta], "docs"       # --preserve-root[=all]: a literal optional value
    if choices:
        typ = "CHOICE"
    else:
        typ = base if base != "CHOICE" else "STRING"
        d = o.description.lower()
        if typ == "FILE" and re.search(r"\b(write|output)\b[^.;]*\b(to|in)\b[^.;]*\bfile", d):
            typ = "OUTFILE"
        if typ == "NUM" and "seconds" in d:
            typ = "DURATION"
        if typ == "PATTERN" and re.search(r"shell pattern|glob|wildcard|file pattern|match(es)? pattern", d):
            typ = "GLOB"
        if typ == "LIST" and "comma separated list" in d:
            typ = "NUMLIST"
        if typ in ("NUM", "SIZE") and o.required:
            low = _min_value(util, o.flags, cwd)
    arg = {"metavar": meta, "required": o.required, "type": typ}
    if low:
        arg["min_value"] = low
    if choices:
        arg["choices"] = choices
        arg["choices_from"] = src
    return arg


def _min_value(util: str, flags: list[str], cwd: str) -> int | None:
    """The smallest of 0, 1, 2 that ``UTIL FLAG N`` accepts, when 0 is refused (fold -w 0, sort --batch-size 1).

    A value is refused when the utility fails naming it (``invalid number of columns: '0'``)."""
    flag = flags[0]
    for n in range(3):
        rc, _, err = _run([util, flag, str(n)], cwd, timeout=5)
        refused = rc != 0 and re.search(rf"'{n}'|\bzero\b|nonzero|out of range", err)
        if not refused:
            return n or None
    return None


def _options_first(util: str, cwd: str) -> bool:
    """Whether options end at the first operand (getopt '+' mode: seq, tr, basename; echo).

    ``UTIL OPERAND --bogus`` reports the bogus option only when getopt permutes."""
    _, _, err = _run([util, PROBE_VALUE, PROBE_OPTION], cwd, timeout=5)
    return f"unrecognized option '{PROBE_OPTION}'" not in err


def _validate_flag(util: str, flag: str, cwd: str) -> bool:
    """False when the binary rejects FLAG as an option."""
    _, _, err = _run([util, flag, PROBE_OPTION], cwd, timeout=5)
    if f"unrecognized option '{PROBE_OPTION}'" in err:
        return True
    name = flag.split("=", 1)[0]
    if not name.startswith("--") and f"invalid option -- '{name[1:]}'" in err:
        return False
    if f"unrecognized option '{flag}'" in err or f"unrecognized option '{name}'" in err:
        return False
    return True


# =========================================================================== usage lines

def usage_lines(docs: Docs) -> list[tuple[str, str]]:
    """(origin, 'ARGS...') for every usage form of the help text and the man SYNOPSIS."""
    out = []
    for line in docs.help.splitlines():
        m = re.match(r"^(?:Usage|\s+or):\s+(\S+)\s*(.*)$", line)
        if m and os.path.basename(m.group(1)) == docs.util:
            out.append(("help", m.group(2).strip()))
    if docs.man:
        lines = docs.man.splitlines()
        try:
            start = next(i for i, l in enumerate(lines) if l.strip() == "SYNOPSIS")
        except StopIteration:
            start = None
        if start is not None:
            for l in lines[start + 1:]:
                if l and not l.startswith(" "):
                    break
                m = re.match(rf"^\s+{re.escape(docs.util)}\s+(.*)$", l)
                if m:
                    out.append(("man", m.group(1).strip()))
    return out


def _tokenize_usage(s: str) -> list[str]:
    toks, cur, depth_in_word = [], "", 0
    for ch in s:
        if ch == "[" and not cur:
            toks.append("[")
        elif ch == "[":
            cur += ch
            depth_in_word += 1
        elif ch == "]" and depth_in_word:
            cur += ch
            depth_in_word -= 1
        elif ch == "]":
            if cur:
                toks.append(cur)
                cur = ""
            toks.append("]")
        elif ch.isspace():
            if cur:
                toks.append(cur)
                cur = ""
        else:
            cur += ch
    if cur:
        toks.append(cur)
    out = []
    for t in toks:        # split a trailing '...'
        if t.endswith("...") and t != "...":
            out += [t[:-3], "..."]
        else:
            out.append(t)
    return out


def _parse_group(toks: list[str], i: int) -> tuple[list, int]:
    items = []
    while i < len(toks) and toks[i] != "]":
        t = toks[i]
        if t == "[":
            sub, i = _parse_group(toks, i + 1)
            i += 1
            rep = i < len(toks) and toks[i] == "..."
            if rep:
                i += 1
            items.append(("opt", sub, rep))
        elif t == "...":
            if items:
                kind, *rest = items[-1]
                items[-1] = (kind, *rest[:-1], True)
            i += 1
        else:
            items.append(("word", t, False))
            i += 1
    return items, i


def _expand(items: list, lookup) -> list[tuple[list, set, set]]:
    """Alternatives of a usage AST: (elements [(name, min, max)], required mentions, optional mentions)."""
    alts: list[tuple[list, set, set]] = [([], set(), set())]
    k = 0
    while k < len(items):
        kind, val, rep = items[k]
        k += 1
        if kind == "word":
            if val in _PLACEHOLDERS or re.sub(r"\.\.\.$", "", val) in _PLACEHOLDERS:
                continue
            if val.startswith("-"):
                hit = lookup(val)
                if hit is None:
                    continue
                oid, takes = hit
                if takes and "=" not in val and k < len(items) and items[k][0] == "word":
                    k += 1           # '-t DIRECTORY': the option's own argument
                for a in alts:
                    a[1].add(oid)
                continue
            name = re.sub(r"\[.*$", "", val).strip(".")
            if re.search(r"\[,", val):
                rep = False                   # MODE[,MODE]...: one argument, comma-separated
            for a in alts:
                a[0].append((name, 1, None if rep else 1))
            continue
        # optional group
        sub = val
        words = [x for x in sub if x[0] == "word" and x[1] not in _PLACEHOLDERS]
        if not words and all(x[0] == "word" for x in sub):
            continue                          # [OPTION]
        if all(x[0] == "word" and x[1].startswith("-") for x in sub):
            for x in sub:
                hit = lookup(x[1])
                if hit:
                    for a in alts:
                        a[2].add(hit[0])
            continue
        if rep and len(sub) == 1 and sub[0][0] == "word":
            name = re.sub(r"\[.*$", "", sub[0][1]).strip(".")
            for a in alts:
                a[0].append((name, 0, None))
            continue
        inner = _expand(sub, lookup)
        new = []
        for a in alts:
            new.append((list(a[0]), set(a[1]), set(a[2])))
            for b in inner:
                if rep:
                    b = ([(n, mn, None) for n, mn, _ in b[0]], b[1], b[2])
                new.append((a[0] + b[0], a[1] | b[1], a[2] | b[2]))
        alts = new
    return alts


def derive_operands(docs: Docs, options: list[dict], full: str) -> list[dict]:
    flag_map = {}
    for o in options:
        for f in o["flags"]:
            flag_map[f] = (o["id"], o["arg"] is not None and o["arg"]["required"])

    def lookup(word: str):
        w = word.rstrip(".")
        if w in flag_map:
            return flag_map[w]
        if "=" in w and w.split("=", 1)[0] in flag_map:
            return flag_map[w.split("=", 1)[0]][0], False
        return None

    forms = []
    for origin, line in usage_lines(docs):
        toks = _tokenize_usage(line)
        if "LONG-OPTION" in toks and len([t for t in toks if t not in ("[", "]", "...")]) == 1:
            continue
        ast, _ = _parse_group(toks, 0)
        for elems, req, opt in _expand(ast, lookup):
            forms.append((f"{docs.util} {line}", elems, req, opt))
    all_req = set().union(*(f[2] for f in forms)) if forms else set()
    all_opt = set().union(*(f[3] for f in forms)) if forms else set()
    # the summary under the usage lines: 'List information about the FILEs (the current directory by default)'
    intro = []
    for line in docs.help.splitlines():
        if re.match(r"^(Usage|\s+or):", line):
            continue
        if not line.strip() or line.startswith(" "):
            if intro:
                break
            continue
        intro.append(line)
    dir_ok = "director" in " ".join(intro).lower()
    nonzero = set(re.findall(r"\b([A-Z][A-Z0-9_]*) must not be 0", re.sub(r"\s+", " ", full)))
    alts, seen = [], set()
    for usage, elems, req, opt in forms:
        seq = []
        for name, mn, mx in elems:
            typ = METAVAR_TYPES.get(name, "STRING")
            if typ == "FILE" and dir_ok:
                typ = "PATH"
            if typ == "NUM" and name in nonzero:
                typ = "NZNUM"
            if seq and seq[-1]["name"] == name and seq[-1]["max"] is None:
                continue
            seq.append({"name": name, "type": typ, "min": mn, "max": mx})
        forbids = sorted((all_req - req) | (all_opt - opt - req))
        key = json.dumps([seq, sorted(req), forbids], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        alts.append({"usage": re.sub(r"\s+", " ", usage), "sequence": seq, "requires_all": sorted(req),
                     "requires_any": [], "forbids": forbids})
    return alts


# =========================================================================== find

def derive_find(docs: Docs) -> dict:
    sections = {"Positional options": "positional", "Normal options": "global", "Tests": "test",
                "Actions": "action"}
    primaries, operators = {}, {"unary": [], "binary": [], "open": [], "close": []}
    cat = None
    for line in docs.help.splitlines():
        head = next((v for k, v in sections.items() if line.startswith(k)), None)
        if head:
            cat = head
            continue
        if line.startswith("Operators"):
            cat = "operators"
            continue
        if not line.startswith(" "):
            cat = None if line.strip() else cat
            continue
        if cat == "operators":
            for m in re.finditer(r"(?:^|\s)(\()\s+EXPR\s+(\))", line):
                operators["open"].append(m.group(1))
                operators["close"].append(m.group(2))
            for m in re.finditer(r"(?:^|\s)(!|-not)\s+EXPR\b", line):
                operators["unary"].append(m.group(1))
            for m in re.finditer(r"EXPR1\s+(\S+)\s+EXPR2", line):
                operators["binary"].append(m.group(1))
            continue
        if cat is None:
            continue
        toks = line.split()
        k = 0
        while k < len(toks):
            name = toks[k]
            k += 1
            if not re.fullmatch(r"-[a-z][a-z0-9_-]*", name):
                continue
            args = []
            while k < len(toks) and not re.fullmatch(r"-[a-z][a-z0-9_-]*", toks[k]):
                args.append(toks[k])
                k += 1
            primaries[name] = (cat, args)
    out = []
    for name, (cat, args) in sorted(primaries.items()):
        arg = None
        if args:
            a = " ".join(args)
            if len(args) > 1:
                typ = "COMMAND"
            elif re.fullmatch(r"\[[a-zA-Z]+\]", a):
                arg = {"metavar": a, "required": True, "type": "CHOICE", "choices": sorted(a.strip("[]")),
                       "choices_from": "docs"}
            elif a == "N":
                typ = "FINDNUM"
            elif a.startswith("N["):
                typ = "FINDSIZE"
            elif a in ("FILE",):
                typ = "PATH"
            elif a == "PATTERN":
                typ = "PATTERN" if "regex" in name else "GLOB"
            elif a.endswith("MODE"):
                typ = "MODE"
            elif a == "LEVELS":
                typ = "NUM"
            elif a == "FORMAT":
                typ = "FORMAT"
            else:
                typ = "STRING"
            if arg is None:
                arg = {"metavar": a, "required": True, "type": typ}
        out.append({"name": name, "category": cat, "arg": arg, "supported": False, "repeatable": True})
    return {"primaries": out, "operators": operators}


def derive_find_options(docs: Docs) -> list[dict]:
    """find's leading options from its usage line: ``[-H] [-L] [-P] [-Olevel] [-D debugopts]``."""
    m = re.search(r"^Usage:\s+\S+\s+(.*)$", docs.help, re.M)
    out = []
    for flag, attached, separate in re.findall(r"\[(-[A-Za-z])(\w*)(?: (\w+))?\]", m.group(1) if m else ""):
        arg = None
        if attached:                     # -Olevel: an attached optimisation level
            arg = {"metavar": attached, "required": False, "type": "NUM"}
        elif separate:                   # -D debugopts
            arg = {"metavar": separate, "required": True, "type": "STRING"}
        out.append({"id": flag[1:], "flags": [flag], "arg": arg, "repeatable": False, "info": False,
                    "excluded": None, "description": "", "doc": ["help"]})
    for name, desc in (("--help", "display this help and exit"), ("--version", "output version information")):
        out.append({"id": name[2:], "flags": [name], "arg": None, "repeatable": False, "info": True,
                    "excluded": None, "description": desc, "doc": ["help"]})
    return out


# =========================================================================== assembling

def _option_id(flags: list[str], taken: set[str]) -> str:
    longs = [f[2:] for f in flags if f.startswith("--") and "=" not in f]
    base = longs[0] if longs else flags[0].lstrip("-").split("=")[0]
    oid, n = base, 2
    while oid in taken:
        oid, n = f"{base}-{n}", n + 1
    return oid


def derive_grammar(util: str, use_man: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="omnigym-grammar-") as cwd:
        # find's expression grammar is read from --help only (its man page is not parsed)
        docs = collect_docs(util, cwd, use_man=use_man and util != "find")
        return _derive(util, docs, cwd)


def _derive(util: str, docs: Docs, cwd: str) -> dict:
    full = docs.help
    sources = [f"{util} --help"]
    notes: list[str] = []
    if util == "find":
        options = derive_find_options(docs)
        expression = derive_find(docs)
        operands = [{"usage": "find [-H] [-L] [-P] [path...] [expression]",
                     "sequence": [{"name": "path", "type": "PATH", "min": 0, "max": None}],
                     "requires_all": [], "requires_any": [], "forbids": []}]
        data = _assemble(util, docs, sources, options, operands, {}, expression, [])
        return _apply_overrides(data)
    raw, notes_text = parse_options(docs.help, "help")
    if docs.man:
        man_opts, man_rest = parse_options(docs.man, "man")
        if man_opts:
            sources.append(f"man -P cat {util}")
            raw += man_opts
            full = full + "\n" + docs.man
            notes_text = notes_text + "\n" + man_rest
    merged = _merge(raw)
    options_first = _options_first(util, cwd)
    sources.append(f"{util} {PROBE_VALUE} {PROBE_OPTION} (option permutation)")
    # a utility that does not parse options with getopt (echo) cannot validate flags this way
    validate = f"unrecognized option '{PROBE_OPTION}'" in _run([util, PROBE_OPTION], cwd)[2]
    options, taken = [], set()
    known_good: set[str] = set()
    if validate:
        # flags without an argument are checked together first: getopt reaches the bogus option last
        plain = [f for o in merged if o.metavar is None for f in o.flags if f not in ("--help", "--version")]
        if plain and f"unrecognized option '{PROBE_OPTION}'" in _run([util, *plain, PROBE_OPTION], cwd)[2]:
            known_good = set(plain)
    for o in merged:
        if validate:
            bad = [f for f in o.flags if f not in known_good and not _validate_flag(util, f, cwd)]
            if bad:
                notes.append(f"dropped {', '.join(bad)}: rejected by {util}")
                o.flags = [f for f in o.flags if f not in bad]
            if not o.flags:
                continue
        # short spellings first, then long ones, each in documentation order
        o.flags = [f for f in o.flags if not f.startswith("--")] + [f for f in o.flags if f.startswith("--")]
        oid = _option_id(o.flags, taken)
        taken.add(oid)
        arg = None
        if o.metavar:
            arg = infer_arg(util, o, notes_text, docs.help, cwd)
        info = any(f in ("--help", "--version") for f in o.flags)
        desc = re.sub(r"\s+", " ", o.description).strip()
        options.append({"id": oid, "flags": o.flags, "arg": arg,
                        "repeatable": bool(_REPEAT_HINT.search(o.description)),
                        "info": info, "excluded": None, "description": desc[:240], "doc": sorted(o.origin)})
    if any(a["arg"] and a["arg"].get("choices_from") == "argmatch" for a in options):
        sources.append(f"{util} --OPTION={PROBE_VALUE} (argmatch diagnostics)")
    if validate:
        sources.append(f"{util} FLAG {PROBE_OPTION} (getopt validation)")
    if any(o["arg"] and o["arg"].get("min_value") for o in options):
        sources.append(f"{util} FLAG 0|1|2 (smallest accepted number)")
    operands = derive_operands(docs, options, full)
    data = _assemble(util, docs, sources, options, operands, {"options_first": options_first}, None, notes)
    return _apply_overrides(data)


def _assemble(util, docs, sources, options, operands, constraints, expression, notes) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "utility": util,
        "generated_by": GENERATED_BY,
        "source": {"docs": sources, "version": docs.version},
        "style": "find" if expression else "getopt",
        "usage": list(dict.fromkeys(" ".join([util, *l.split()]) for _, l in usage_lines(docs))),
        "options": sorted(options, key=lambda o: o["id"]),
        "operands": {"alternatives": operands},
        "constraints": {"exclusive": [], "required_one_of": [], "requires": {}, "options_first": False,
                        "end_of_options": expression is None, **constraints},
        "expression": expression,
        "derivation_notes": sorted(set(notes)),
        "overrides": [],
    }


def _apply_overrides(data: dict) -> dict:
    util = data["utility"]
    ov = OVERRIDES.get(util)
    if not ov:
        return data
    ids = {o["id"]: o for o in data["options"]}

    def need(oid: str) -> dict:
        if oid not in ids:
            raise KeyError(f"override for {util} names unknown option {oid!r} (have {sorted(ids)})")
        return ids[oid]

    for oid, fields in ov.get("options", {}).items():
        o = need(oid)
        for k, v in fields.items():
            if k == "arg" and isinstance(v, dict) and o["arg"] is not None:
                o["arg"] = {**o["arg"], **v}
                if "choices" in v:
                    o["arg"]["choices"] = sorted(v["choices"])
                    o["arg"]["choices_from"] = "override"
                elif o["arg"]["type"] != "CHOICE":
                    o["arg"].pop("choices", None)
                    o["arg"].pop("choices_from", None)
            else:
                o[k] = v
    if "operands" in ov:
        data["operands"]["alternatives"] = [
            {"usage": a["usage"],
             "sequence": [{"name": n, "type": t, "min": mn, "max": mx} for n, t, mn, mx in a["sequence"]],
             "requires_all": sorted(a.get("requires_all", [])),
             "requires_any": [sorted(g) for g in a.get("requires_any", [])],
             "forbids": sorted(a.get("forbids", []))} for a in ov["operands"]]
    for sig, forbids in ov.get("alternative_forbids", {}).items():
        hits = [a for a in data["operands"]["alternatives"] if " ".join(e["name"] for e in a["sequence"]) == sig]
        if not hits:
            raise KeyError(f"override for {util} names unknown usage form {sig!r}")
        for a in hits:
            for oid in forbids:
                need(oid)
            a["forbids"] = sorted(set(a["forbids"]) | set(forbids))
    for name, typ in ov.get("operand_types", {}).items():
        hit = False
        for a in data["operands"]["alternatives"]:
            for e in a["sequence"]:
                if e["name"] == name:
                    e["type"], hit = typ, True
        if not hit:
            raise KeyError(f"override for {util} names unknown operand {name!r}")
    c = data["constraints"]
    oc = ov.get("constraints", {})
    for key in ("exclusive", "required_one_of"):
        for grp in oc.get(key, []):
            for oid in grp:
                need(oid)
            c[key].append(sorted(grp))
    for oid, reqs in oc.get("requires", {}).items():
        need(oid)
        for r in reqs:
            need(r)
        c["requires"][oid] = sorted(reqs)
    for key in ("options_first", "end_of_options"):
        if key in oc:
            c[key] = oc[key]
    for a in data["operands"]["alternatives"]:
        for oid in a["requires_all"] + [x for g in a["requires_any"] for x in g] + a["forbids"]:
            need(oid)
    if "expression" in ov:
        e = ov["expression"]
        prims = {p["name"]: p for p in data["expression"]["primaries"]}
        for name in e.get("supported", []):
            if name not in prims:
                raise KeyError(f"find override: unknown primary {name}")
            prims[name]["supported"] = True
        for name, ch in e.get("choices", {}).items():
            prims[name]["arg"] = {**prims[name]["arg"], "type": "CHOICE", "choices": sorted(ch),
                                  "choices_from": "override"}
        for name in e.get("non_repeatable", []):
            prims[name]["repeatable"] = False
    data["overrides"] = list(ov.get("notes", []))
    return data


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def generate(utils=UTILITIES, use_man: bool = True, jobs: int = 8) -> dict[str, str]:
    """{utility: JSON text}; every result is also parsed by :class:`Grammar` as a check."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        datas = list(ex.map(lambda u: derive_grammar(u, use_man=use_man), utils))
    out = {}
    for u, d in zip(utils, datas):
        Grammar(d)
        out[u] = render(d)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ from a regeneration")
    ap.add_argument("--only", nargs="+", metavar="UTIL", help="limit to these utilities")
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: the package's grammars/)")
    ap.add_argument("--no-man", action="store_true", help="ignore man pages even if installed")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--diff", action="store_true", help="with --check: print a unified diff")
    args = ap.parse_args(argv)
    out_dir = args.out or grammar_dir()
    utils = tuple(args.only) if args.only else UTILITIES
    unknown = set(utils) - set(UTILITIES)
    if unknown:
        ap.error(f"not in UTILITIES: {sorted(unknown)}")
    texts = generate(utils, use_man=not args.no_man, jobs=args.jobs)
    if args.check:
        bad = []
        for u, text in texts.items():
            p = out_dir / f"{u}.json"
            old = p.read_text() if p.is_file() else None
            if old != text:
                bad.append(u)
                if args.diff:
                    sys.stdout.writelines(difflib.unified_diff((old or "").splitlines(True), text.splitlines(True),
                                                               f"{p} (on disk)", f"{p} (regenerated)"))
        if not args.only:
            extra = sorted(p.stem for p in out_dir.glob("*.json") if p.stem not in texts)
            bad += [f"{e} (stale file)" for e in extra]
        if bad:
            print(f"grammars out of date: {', '.join(bad)}", file=sys.stderr)
            return 1
        print(f"{len(texts)} grammars up to date in {out_dir}")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for u, text in texts.items():
        p = out_dir / f"{u}.json"
        if not p.is_file() or p.read_text() != text:
            p.write_text(text)
    print(f"wrote {len(texts)} grammars to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
