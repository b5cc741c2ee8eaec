"""Command datasets from construction episodes: export and quality metrics.

Each execution the construction env performs is a record (command, exit
code, stdout, stderr, side effects, behaviour signature). Exports keep one
record per behaviour signature (the first seen), as Parquet and as JSONL,
written atomically. Quality metrics, as ShIOEnv reports them:

- ``unique_per_1000``: distinct behaviours per 1,000 executions;
- ``mean_args``: mean number of arguments per (deduplicated) command;
- ``redundancy_rate``: share of appended arguments that changed nothing
  (the behaviour equals the one before the argument was added).
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FIELDS = ("command", "args", "exit_code", "stdout", "stderr", "created", "deleted", "modified",
          "mode_changed", "signature")


def deduplicate(executions: list[dict]) -> list[dict]:
    seen, out = set(), []
    for record in executions:
        if record["signature"] not in seen:
            seen.add(record["signature"])
            out.append({k: record[k] for k in FIELDS})
    return out


def quality(executions: list[dict]) -> dict:
    """Metrics over the raw execution log (in the order executed)."""
    n = len(executions)
    unique = deduplicate(executions)
    appended = redundant = 0
    previous = None
    for record in executions:
        if previous is not None and record["args"][:-1] == previous["args"] and record["args"]:
            appended += 1
            redundant += record["signature"] == previous["signature"]
        previous = record
    return {
        "executions": n,
        "unique_behaviours": len(unique),
        "unique_per_1000": 1000.0 * len(unique) / n if n else 0.0,
        "mean_args": sum(len(r["args"]) for r in unique) / len(unique) if unique else 0.0,
        "redundancy_rate": redundant / appended if appended else 0.0,
        "success_rate": sum(r["exit_code"] == 0 for r in unique) / len(unique) if unique else 0.0,
    }


def export(executions: list[dict], out_dir: str | Path, name: str = "commands") -> dict[str, Path]:
    """Deduplicated records as ``name.parquet`` and ``name.jsonl`` (atomic writes)."""
    from omnigym.episodes import atomic_write, atomic_write_text
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = deduplicate(executions)
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("command", pa.string()), ("args", pa.list_(pa.string())), ("exit_code", pa.int32()),
        ("stdout", pa.string()), ("stderr", pa.string()), ("created", pa.list_(pa.string())),
        ("deleted", pa.list_(pa.string())), ("modified", pa.list_(pa.string())),
        ("mode_changed", pa.list_(pa.string())), ("signature", pa.string())]))
    parquet = atomic_write(out_dir / f"{name}.parquet", lambda f: pq.write_table(table, f))
    jsonl = atomic_write_text(out_dir / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return {"parquet": parquet, "jsonl": jsonl}
