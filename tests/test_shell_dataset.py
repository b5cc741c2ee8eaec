"""Command datasets: deduplication by behaviour, atomic Parquet/JSONL export, quality metrics."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from omnigym.environments.shell.construct_env import ShellConstructEnv
from omnigym.environments.shell.dataset import deduplicate, export, quality


def rec(args, signature, exit_code=0):
    return {"command": " ".join(["ls", *args]), "args": list(args), "exit_code": exit_code, "stdout": "",
            "stderr": "", "created": [], "deleted": [], "modified": [], "mode_changed": [],
            "signature": signature}


def test_quality_metrics_on_a_known_log():
    log = [rec([], "a"), rec(["-1"], "a"), rec(["-1", "x"], "b", 2),   # -1 redundant, x new
           rec([], "a"), rec(["-l"], "c")]                              # -l new
    q = quality(log)
    assert q["executions"] == 5 and q["unique_behaviours"] == 3
    assert q["unique_per_1000"] == pytest.approx(600.0)
    assert q["redundancy_rate"] == pytest.approx(1 / 3)
    assert q["mean_args"] == pytest.approx((0 + 2 + 1) / 3)
    assert q["success_rate"] == pytest.approx(2 / 3)
    assert [r["signature"] for r in deduplicate(log)] == ["a", "b", "c"]


def test_export_from_a_real_env_round_trips(tmp_path):
    env = ShellConstructEnv("wc", mode="text")
    try:
        env.reset(seed=0)
        for arg in ("-l", "notes.txt", "-l"):
            env.step(arg)
        paths = export(env.executions, tmp_path, "wc")
    finally:
        env.close()
    table = pq.read_table(paths["parquet"]).to_pylist()
    lines = [json.loads(line) for line in paths["jsonl"].read_text().splitlines()]
    assert table == lines
    assert len({r["signature"] for r in lines}) == len(lines) >= 2
    assert any(r["command"] == "wc -l notes.txt" and r["exit_code"] == 0 and r["stdout"].startswith("12")
               for r in lines)
    assert not list(tmp_path.glob(".*partial"))
