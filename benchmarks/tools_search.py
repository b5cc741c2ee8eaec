"""Tools-family search: corpus build, BM25 index build and query latency at
2k / 10k / 50k documents, with a naive pure-Python linear scan (term
substring counts over every document) measured in the same run as a
reference, so the ratio stays meaningful on a noisy machine.

Queries: 500 per size, half entity names, half multi-hop question texts,
drawn with a fixed seed; each BM25 latency is the median of 3 passes. The scan is slow, so it runs on the first
``--scan-queries`` of them only (same queries, so the means compare).

    .venv/bin/python benchmarks/tools_search.py [--sizes 2000 10000 50000] [--out reports/bench]
"""
from __future__ import annotations

import argparse
import heapq
import json
import time
from pathlib import Path

import numpy as np

from omnigym.bench import pin_to_one_core
from omnigym.environments.tools.corpus import Corpus, generate_corpus
from omnigym.environments.tools.questions import make_question, valid_paths
from omnigym.environments.tools.search import SearchIndex, tokenize


def make_queries(corpus: Corpus, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = valid_paths(4)
    names = [corpus.documents[i].title for i in rng.integers(len(corpus.documents), size=n // 2)]
    questions = [make_question(corpus, paths[int(rng.integers(len(paths)))], rng).text
                 for _ in range(n - n // 2)]
    queries = names + questions
    rng.shuffle(queries)
    return queries


class LinearScan:
    """The baseline: for each document, count substring hits of each query
    term in its lower-cased title + text; keep the top k. No index at all."""

    def __init__(self, corpus: Corpus):
        self.docs = [(d.id, (d.title + " " + d.text).lower()) for d in corpus.documents]

    def search(self, query: str, k: int = 5) -> list[str]:
        terms = tokenize(query)
        scored = ((sum(text.count(t) for t in terms), doc_id) for doc_id, text in self.docs)
        return [doc_id for s, doc_id in heapq.nlargest(k, scored) if s > 0]


def latency_ms(search, queries: list[str], repeats: int = 1) -> dict:
    """Per-query latency, the median of ``repeats`` passes (robust to a busy
    machine), after one warm-up query."""
    search(queries[0], 5)
    times = np.empty((repeats, len(queries)))
    for r in range(repeats):
        for i, q in enumerate(queries):
            t = time.perf_counter()
            search(q, 5)
            times[r, i] = (time.perf_counter() - t) * 1000
    a = np.median(times, axis=0)
    return {"queries": len(a), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p95": float(np.percentile(a, 95))}


def name_accuracy(corpus: Corpus, index: SearchIndex, n: int = 1000) -> dict:
    """Share of sampled entities whose own document is top-1 / top-5 for its name."""
    rng = np.random.default_rng(1)
    docs = [corpus.documents[i] for i in rng.choice(len(corpus.documents),
                                                    min(n, len(corpus.documents)), replace=False)]
    top1 = top5 = 0
    for d in docs:
        ids = [h.doc_id for h in index.search(d.title, 5)]
        top1 += ids[:1] == [d.id]
        top5 += d.id in ids
    return {"sampled": len(docs), "top1": top1 / len(docs), "top5": top5 / len(docs)}


def run_size(n_documents: int, n_queries: int, scan_queries: int) -> dict:
    t = time.perf_counter()
    corpus = generate_corpus(0, n_documents)
    corpus_s = time.perf_counter() - t
    t = time.perf_counter()
    index = SearchIndex(corpus)
    index_s = time.perf_counter() - t
    queries = make_queries(corpus, n_queries)
    bm25 = latency_ms(index.search, queries, repeats=3)
    scan = latency_ms(LinearScan(corpus).search, queries[:scan_queries])
    bm25_same = latency_ms(index.search, queries[:scan_queries], repeats=3)  # the scan's queries
    return {"documents": len(corpus.documents), "corpus_build_s": corpus_s, "index_build_s": index_s,
            "bm25_ms": bm25, "scan_ms": scan, "scan_over_bm25": scan["mean"] / bm25_same["mean"],
            "names": name_accuracy(corpus, index)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10_000, 50_000])
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--scan-queries", type=int, default=100)
    ap.add_argument("--out", default=None, help="also write tools_search.json here")
    args = ap.parse_args()
    pin_to_one_core()
    rows = []
    print(f"{'docs':>7} {'corpus s':>9} {'index s':>8} {'bm25 mean':>10} {'p50':>7} {'p95':>7}"
          f" {'scan mean':>10} {'scan/bm25':>10} {'name top1':>10} {'top5':>6}")
    for n in args.sizes:
        r = run_size(n, args.queries, args.scan_queries)
        rows.append(r)
        b, s, a = r["bm25_ms"], r["scan_ms"], r["names"]
        print(f"{r['documents']:>7} {r['corpus_build_s']:>9.2f} {r['index_build_s']:>8.2f}"
              f" {b['mean']:>8.3f}ms {b['p50']:>7.3f} {b['p95']:>7.3f}"
              f" {s['mean']:>8.2f}ms {r['scan_over_bm25']:>9.0f}x {a['top1']:>10.3f} {a['top5']:>6.3f}",
              flush=True)
    print(f"(bm25: {args.queries} queries, half entity names, half questions; "
          f"scan: first {args.scan_queries} of them; latencies in ms, one core)")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "tools_search.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
