"""benchmarks/lm_baselines.py: agents' options parse, every cell lands in the
resumable results file and the table, and a second invocation continues
(cells already measured are not run again)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "lm_baselines.py"


def run(out: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--seeds", "3", "--max-steps", "15", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_cells_are_measured_once_and_tabled_with_their_intervals(tmp_path):
    first = run(tmp_path, "--panels", "household/Household-v0:train", "--agent", "expert=expert")
    assert "expert | household/Household-v0 | train: 100.0% [43.9, 100.0]" in first   # Wilson, 3 of 3
    second = run(tmp_path, "--panels", "household/Household-v0:train", "shell/FreeForm-v0:test",
                 "--agent", "expert=expert", "--agent", "random=random")
    assert "expert | household" not in second.split("\n\n")[0]          # measured before: skipped
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {f"{a} | {e}" for a in ("expert", "random")
                            for e in ("household/Household-v0 | train", "shell/FreeForm-v0 | test")}
    assert all(r["episodes"] == 3 for r in results.values())
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[0] == "| agent | household/Household-v0 train | shell/FreeForm-v0 test |"
    assert table[2].startswith("| expert | 100% [44, 100] (n=3, ")
    assert (tmp_path / "episodes" / "random-shell-FreeForm-v0-test.parquet").exists()
