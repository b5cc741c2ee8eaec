"""BM25 search over a :class:`~omnigym.environments.tools.corpus.Corpus`.

The index is a real sparse BM25 index from the maintained ``bm25s`` library
(scores precomputed per (term, document) at build time; a query sums a few
posting lists with numpy). We tokenize ourselves, simply and
deterministically: casefold, ``\\w\\w+`` tokens (unicode-aware, the same
pattern bm25s uses), English stopwords from bm25s removed. The title is
repeated ``TITLE_BOOST`` times in front of the text, so that searching an
entity's name ranks its own article above the articles that merely mention it.

``search`` never raises on odd input: empty or stopword-only queries give
``[]``; huge queries are truncated; ties are broken by document id.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from omnigym.environments.tools.corpus import Corpus, get_corpus

TITLE_BOOST = 3
MAX_QUERY_CHARS = 20_000      # agents' queries are short; bound the work on junk
MAX_QUERY_TERMS = 256         # distinct in-vocabulary terms scored per query
SNIPPET_CHARS = 200

_TOKEN = re.compile(r"\w\w+")
_STOP = frozenset(STOPWORDS_EN)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of length >= 2, English stopwords removed."""
    return [t for t in _TOKEN.findall(text.casefold()) if t not in _STOP]


@dataclass(frozen=True)
class SearchHit:
    doc_id: str
    title: str
    snippet: str       # the sentence sharing most query terms (<= SNIPPET_CHARS)
    score: float


class SearchIndex:
    def __init__(self, corpus: Corpus, k1: float = 1.2, b: float = 0.75):
        self.corpus = corpus
        self.docs = list(corpus.documents)     # row i of the index = docs[i]
        # Build the vocabulary ourselves (first-seen order) so token ids are
        # deterministic and bm25s does no tokenization of its own.
        vocab: dict[str, int] = {}
        ids: list[list[int]] = []
        for d in self.docs:
            tokens = tokenize(d.title) * TITLE_BOOST + tokenize(d.text)
            ids.append([vocab.setdefault(t, len(vocab)) for t in tokens])
        self.vocab = vocab
        self.bm25 = bm25s.BM25(k1=k1, b=b)
        self.bm25.index((ids, vocab), create_empty_token=False, show_progress=False)

    def __len__(self) -> int:
        return len(self.docs)

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 score of every document for ``query``; None if no term is known."""
        if not isinstance(query, str):
            return None
        terms = dict.fromkeys(tokenize(query[:MAX_QUERY_CHARS]))   # dedupe, keep order
        term_ids = [self.vocab[t] for t in terms if t in self.vocab][:MAX_QUERY_TERMS]
        if not term_ids:
            return None
        return self.bm25.get_scores_from_ids(term_ids)

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        """Top ``k`` documents for ``query``, best first (ties: lower doc id first)."""
        scores = self.scores(query)
        if scores is None or k <= 0:
            return []
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0:
            return []
        k = min(int(k), positive.size)
        # Everything scoring at least the k-th best, so tied documents at the
        # cut are all considered and the id tie-break is exact.
        kth = np.partition(scores[positive], positive.size - k)[positive.size - k]
        cand = positive[scores[positive] >= kth]
        order = cand[np.lexsort((cand, -scores[cand]))][:k]
        q_terms = set(tokenize(query[:MAX_QUERY_CHARS]))
        return [SearchHit(doc_id=self.docs[i].id, title=self.docs[i].title,
                          snippet=_snippet(self.docs[i].text, q_terms),
                          score=float(scores[i])) for i in order]


def _snippet(text: str, q_terms: set[str]) -> str:
    """The sentence with the most query terms (first one on ties), clipped."""
    best, best_n = "", -1
    for s in _SENTENCE.split(text):
        n = len(q_terms.intersection(tokenize(s)))
        if n > best_n:
            best, best_n = s, n
    if best_n <= 0:
        best = text
    return best if len(best) <= SNIPPET_CHARS else best[:SNIPPET_CHARS - 3].rstrip() + "..."


@functools.lru_cache(maxsize=4)
def get_index(seed: int = 0, n_documents: int = 2000) -> SearchIndex:
    """Cached index over the cached ``get_corpus(seed, n_documents)``."""
    return SearchIndex(get_corpus(seed, n_documents))
