import json

import pytest

pytest.importorskip("matplotlib")

from omnigym.report import plot_curves, write_report  # noqa: E402
from omnigym.stats import summarize  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _summary(rates, group_size=2):
    recs = []
    for t, rate in enumerate(rates):
        for g in range(2):
            for r in range(group_size):
                ok = (g * group_size + r) < rate * 2 * group_size
                recs.append({"task_id": f"task_{t:02d}", "seed": g, "group": g, "success": ok,
                             "return": float(ok), "length": 5 + r})
    return summarize(recs, group_size=group_size)


def _sections():
    return [
        {"env_id": "household-v0", "policy": "random", "panel": "in-dist", "summary": _summary([0.0, 0.5, 0.25])},
        {"env_id": "household-v0", "policy": "scripted", "panel": "in-dist", "summary": _summary([1.0, 0.75, 0.5])},
        {"env_id": "household-v0", "policy": "scripted", "panel": "held-out", "summary": _summary([0.5, 0.5])},
        {"env_id": "shell-v0", "policy": "random", "panel": "in-dist", "summary": _summary([0.25])},
    ]


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 2000


def test_write_report(tmp_path):
    sections = _sections()
    out = tmp_path / "report"
    md_path = write_report(sections, out, "Demo evaluation", notes=["seed list fixed", "CPU only"])
    assert md_path == out / "report.md"

    for name in ("success.png", "per_task.png"):
        _assert_png(out / name)

    data = json.loads((out / "summary.json").read_text())
    assert data["title"] == "Demo evaluation"
    assert len(data["sections"]) == 4
    assert data["sections"][1]["summary"]["per_task"]["task_00"]["success_rate"] == 1.0

    md = md_path.read_text()
    assert md.startswith("# Demo evaluation\n")
    assert "| Env | Panel | Policy | Episodes | Success % [95% CI] |" in md
    assert "pass@2" in md and "pass^2" in md
    assert "| household-v0 | in-dist | scripted | 12 | 75.0% [" in md
    assert "| shell-v0 | in-dist | random | 4 | 25.0% [" in md
    assert "![Success rate by panel](success.png)" in md
    assert "![Per-task success rate](per_task.png)" in md
    assert "### household-v0 — held-out" in md
    assert "| task_00 | 0.0 (4) | 100.0 (4) |" in md
    assert md.rstrip().endswith("- CPU only")

    # No temp files left behind.
    assert sorted(p.name for p in out.iterdir()) == ["per_task.png", "report.md", "success.png", "summary.json"]


def test_write_report_many_tasks_and_no_pass_k(tmp_path):
    summary = _summary([i / 120 for i in range(120)], group_size=1)
    sections = [{"env_id": "e", "policy": "p", "panel": "all", "summary": summary}]
    md = write_report(sections, tmp_path, "Many").read_text()
    assert "pass@" not in md and "pass^" not in md
    assert md.count("| task_") == 120
    _assert_png(tmp_path / "per_task.png")


def test_plot_curves(tmp_path):
    path = plot_curves({"ppo": [(0, 0.1), (1, 0.4), (2, 0.6)], "sac": [(0, 0.2), (2, 0.5)]},
                       tmp_path / "curve.png", "steps", "success", "Learning curve")
    assert path == tmp_path / "curve.png"
    _assert_png(path)
