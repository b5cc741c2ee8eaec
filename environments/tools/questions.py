"""Multi-hop questions over a corpus, and answer checking.

A question walks a PATH of relations from a start entity, e.g.
``("founder", "born_in", "country")`` from company "Quorbit Systems":
Quorbit Systems -founder-> person -born_in-> city -country-> country.
Because every relation is functional, the answer is unique. The text is built
compositionally: each inner hop wraps the description so far in the
relation's noun phrase ("the city where {x} was born"), and the last hop uses
a question template, giving e.g. "In which country is the city where the
founder of Quorbit Systems was born?".
"""
from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass

import numpy as np

from omnigym.environments.tools.corpus import RELATIONS, Corpus

# Question template for the LAST hop of a path; ``{x}`` describes its subject.
FINAL_TEMPLATES: dict[str, str] = {
    "born_in": "In which city was {x} born?",
    "employer": "Which company does {x} work for?",
    "alma_mater": "Which university did {x} graduate from?",
    "birth_year": "In what year was {x} born?",
    "occupation": "What is the occupation of {x}?",
    "country": "In which country is {x}?",
    "population": "What is the population of {x}?",
    "capital": "What is the capital of {x}?",
    "currency": "What is the currency of {x}?",
    "language": "What is the main language of {x}?",
    "founder": "Who founded {x}?",
    "headquarters": "In which city is {x} headquartered?",
    "founded_year": "In what year was {x} founded?",
    "industry": "In which industry does {x} operate?",
    "city": "In which city is {x} located?",
    "established_year": "In what year was {x} established?",
    "author": "Who wrote {x}?",
    "publication_year": "In what year was {x} published?",
    "genre": "What kind of work is {x}?",
    "source_country": "In which country does {x} have its source?",
    "length_km": "How long is {x}, in kilometres?",
    "located_in": "In which country is {x}?",
    "height_m": "How high is {x}, in metres?",
}
assert set(FINAL_TEMPLATES) == set(RELATIONS)
# More idiomatic templates for some final PAIRS of hops.
PAIR_TEMPLATES: dict[tuple[str, str], str] = {
    ("born_in", "country"): "In which country was {x} born?",
    ("headquarters", "country"): "In which country is {x} headquartered?",
    ("city", "country"): "In which country is {x} located?",
}

# Consecutive relation pairs that always lead straight back to where they
# started (the capital of a country lies in that country): never useful.
_TRIVIAL_PAIRS = frozenset({("capital", "country")})


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    hops: int
    path: tuple[str, ...]          # relation names
    start: str                     # start entity title (appears in text)
    chain: tuple[str, ...]         # entities visited, start .. answer (answer may be a value)
    gold_titles: tuple[str, ...]   # documents whose facts the answer needs (chain[:-1])


def _is_entity(rel: str) -> bool:
    return RELATIONS[rel][1] not in ("number", "text")


def parse_path(path: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """Normalise ``"founder.born_in.country"`` or a sequence of relation names
    (entries may be qualified as ``"company.founder"``), checking composition."""
    parts = path.split(".") if isinstance(path, str) else list(path)
    rels: list[str] = []
    for p in parts:
        kind, _, rel = p.rpartition(".") if "." in p else ("", "", p)
        if rel not in RELATIONS:
            raise ValueError(f"unknown relation {rel!r} in path {path!r}")
        if kind and RELATIONS[rel][0] != kind:
            raise ValueError(f"relation {rel!r} has subject kind {RELATIONS[rel][0]!r}, not {kind!r}")
        rels.append(rel)
    if not rels:
        raise ValueError("empty path")
    for a, b in zip(rels, rels[1:]):
        if RELATIONS[a][1] != RELATIONS[b][0]:
            raise ValueError(f"{a!r} yields {RELATIONS[a][1]!r} but {b!r} needs {RELATIONS[b][0]!r}")
    return tuple(rels)


def valid_paths(max_hops: int = 4, min_hops: int = 2) -> list[tuple[str, ...]]:
    """All composable relation paths with ``min_hops..max_hops`` hops, in a
    fixed order: every hop but the last lands on an entity, and no hop pair
    trivially returns to its start."""
    out: list[tuple[str, ...]] = []
    frontier = [(r,) for r in RELATIONS]
    for hops in range(1, max_hops + 1):
        if hops >= min_hops:
            out.extend(frontier)
        frontier = [p + (r,) for p in frontier if _is_entity(p[-1])
                    for r in RELATIONS
                    if RELATIONS[r][0] == RELATIONS[p[-1]][1] and (p[-1], r) not in _TRIVIAL_PAIRS]
    return out


def walk(corpus: Corpus, start: str, path: tuple[str, ...]) -> tuple[str, ...]:
    """The chain ``start, v1, ..., answer`` obtained by following ``path``."""
    chain = [start]
    for rel in path:
        chain.append(corpus.facts[chain[-1]][rel])
    return tuple(chain)


def describe(start: str, path: tuple[str, ...]) -> str:
    """The question text for following ``path`` from ``start``."""
    # Rivers read better with an article ("the Velna River"), as in the docs.
    x = f"the {start}" if RELATIONS[path[0]][0] == "river" else start
    pair = PAIR_TEMPLATES.get(tuple(path[-2:])) if len(path) >= 2 else None
    inner = path[:-2] if pair else path[:-1]
    for rel in inner:
        x = RELATIONS[rel][2].format(x=x)
    return (pair or FINAL_TEMPLATES[path[-1]]).format(x=x)


def start_candidates(corpus: Corpus, path: tuple[str, ...] | str) -> list[str]:
    """Start entities whose chain never revisits an entity (no "the capital of
    the country of X" where X is that capital), in document order."""
    path = parse_path(path)
    out = []
    for title in corpus.titles(RELATIONS[path[0]][0]):
        chain = walk(corpus, title, path)
        entities = chain if _is_entity(path[-1]) else chain[:-1]
        if len(set(entities)) == len(entities):
            out.append(title)
    return out


def make_question(corpus: Corpus, path: tuple[str, ...] | str,
                  rng: np.random.Generator) -> Question:
    """A question following ``path`` from a start entity drawn with ``rng``."""
    path = parse_path(path)
    candidates = start_candidates(corpus, path)
    if not candidates:
        raise ValueError(f"no start entity for path {path} in this corpus")
    start = candidates[int(rng.integers(len(candidates)))]
    chain = walk(corpus, start, path)
    return Question(text=describe(start, path), answer=chain[-1], hops=len(path),
                    path=path, start=start, chain=chain, gold_titles=chain[:-1])


# --------------------------------------------------------------- answers
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)
# A number: digits with optional thousands commas, decimals, exponent.
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, squeeze spaces."""
    s = "".join(ch for ch in str(s).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _numbers(s: str) -> list[float]:
    vals = []
    for m in _NUMBER.finditer(s):
        tok = m.group(0)
        if not any(c.isdigit() for c in tok):
            continue
        try:
            vals.append(float(tok.replace(",", "")))
        except ValueError:
            continue
    return vals


def _as_number(s: str) -> float | None:
    """``s`` as a single number, allowing "1,234", "1.2e3", "12 %", "+5"."""
    t = str(s).strip().rstrip("%").strip()
    if not t or not _NUMBER.fullmatch(t):
        return None
    vals = _numbers(t)
    return vals[0] if len(vals) == 1 else None


def answer_matches(predicted: str, gold: str, tolerance: float = 1e-6) -> bool:
    """Whether ``predicted`` answers a question whose answer is ``gold``.

    True on a SQuAD-normalised exact match ("the Velna River." == "velna
    river"), or, when ``gold`` is a number, when ``predicted`` contains exactly
    one number and it equals gold within relative ``tolerance``
    ("about 1,234,567 people" matches "1234567"; "1.2e3" matches "1200").
    A prediction listing several numbers never matches numerically, so
    hedging ("1990 or 1991") does not pay.
    """
    if predicted is None or gold is None:
        return False
    predicted, gold = str(predicted), str(gold)
    if normalize_answer(predicted) == normalize_answer(gold) and normalize_answer(gold):
        return True
    g = _as_number(gold)
    if g is None:
        return False
    p = _numbers(predicted[:1000])
    if len(p) != 1 or not math.isfinite(p[0]):
        return False
    return math.isclose(p[0], g, rel_tol=tolerance, abs_tol=tolerance)
