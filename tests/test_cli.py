"""The omnigym command, run as a user would: a real subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args, input_text=None, check=True, cwd=ROOT):
    proc = subprocess.run([sys.executable, "-m", "omnigym.cli", *args], input=input_text, text=True,
                          capture_output=True, cwd=cwd, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_list_and_info():
    out = run("list").stdout
    assert "household/Household-v0" in out and "household/PutIn-v0" in out
    info = json.loads(run("info", "household/Heat-v0", "--json").stdout)
    assert set(info["modes"]) == {"text", "discrete", "vector"}
    assert info["modes"]["discrete"]["action_space"].startswith("Discrete(")
    assert "action_mask" in info["modes"]["discrete"]["info_keys"]
    assert set(info["panels"]) == {"train", "test"}     # one-slot template: nothing held out
    info = json.loads(run("info", "household/PutIn-v0", "--json").stdout)
    assert info["panels"]["heldout"].startswith("heldout split")


def test_unknown_id_suggests_close_matches():
    proc = run("info", "household/Putin-v0", check=False)
    assert proc.returncode == 2
    assert "household/PutIn-v0" in proc.stderr and "Traceback" not in proc.stderr


def test_play_reads_numbers_and_free_text():
    proc = run("play", "household/Hold-v0", "--seed", "0",
               input_text="0\n[grab] <nothing>\nwalk to the kitchen\nq\n")
    assert "Task: pick up the" in proc.stdout
    assert "  0. [walk] <kitchen>" in proc.stdout
    assert "(invalid action)" in proc.stdout          # the bogus grab
    assert proc.stdout.count("Last action: [walk]") >= 2


def test_eval_writes_report(tmp_path):
    proc = run("eval", "household/Hold-v0", "--agent", "expert", "--policy", "random",
               "--panel", "0..3", "--group-size", "2", "--out", str(tmp_path))
    assert "expert" in proc.stdout and "100.0% [" in proc.stdout and "report:" in proc.stdout
    report = (tmp_path / "report.md").read_text()
    assert "Wilson" in report and "pass@2" in report
    recorded = sorted(p.name for p in (tmp_path / "episodes").glob("*.parquet"))
    assert recorded == ["expert-seeds0-3.parquet", "random-seeds0-3.parquet"]


def test_bench_reports_every_mode():
    proc = run("bench", "household/Hold-v0", "--steps", "300", "--repeats", "1", "--json")
    result = json.loads(proc.stdout)
    assert set(result["modes"]) == {"text", "discrete", "vector"}
    assert all(m["steps_per_s"] > 0 and m["ratio_to_baseline"] > 0 for m in result["modes"].values())


def test_quick_demo_evaluates_baselines_and_trains(tmp_path):
    run("demo", "--quick", "--out", "reports/demo", cwd=tmp_path)   # a relative path, as `make demo` gives
    tmp_path = tmp_path / "reports" / "demo"
    summary = json.loads((tmp_path / "summary.json").read_text())
    by_agent = {(s["env_id"], s["policy"], s["panel"]): s["summary"]["success_rate"] for s in summary["sections"]}
    assert all(rate == 1.0 for (_, agent, _), rate in by_agent.items() if agent == "expert")
    # one name per panel everywhere: the trained agent is scored on Hold's named train panel
    assert {("household/Hold-v0", a, "train") for a in ("ppo", "random", "expert")} <= set(by_agent)
    # household: 2 policies x 2 panels; robots and tools: expert and random each
    assert len(list((tmp_path / "episodes").glob("*.parquet"))) == 8
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 2
    assert (tmp_path / "train" / "report" / "learning_curve.png").exists()
