import json

import pytest

pytest.importorskip("matplotlib")

from omnigym.plots import (agent_colours, curves_figure, has_success_signal, per_task_figure,  # noqa: E402
                           training_figures)
from omnigym.report import plot_curves, print_summary, write_report  # noqa: E402
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
    assert "| Env | Panel | Agent | Episodes | Success % [95% CI] |" in md
    assert "pass@2" in md and "pass^2" in md
    assert "| household-v0 | in-dist | scripted | 12 (6 seeds) | 75.0% [" in md
    assert "| shell-v0 | in-dist | random | 4 (2 seeds) | 25.0% [" in md
    assert "![Success rate by panel](success.png)" in md
    assert "![Success rate per task](per_task.png)" in md
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


def _flat(success: bool, tasks: int = 1, seeds: int = 5, ret: float = 20.0):
    recs = [{"task_id": f"task_{t}", "seed": g, "group": t * seeds + g, "success": success,
             "return": ret + g, "length": 10} for t in range(tasks) for g in range(seeds)]
    return summarize(recs)


def test_no_success_signal_shows_return_instead(tmp_path):
    # CartPole never reports success: a success chart would be all zeros and say nothing.
    sections = [{"env_id": "CartPole-v1", "policy": a, "panel": "train", "summary": _flat(False, ret=r)}
                for a, r in (("random", 20.0), ("ppo", 480.0))]
    assert not has_success_signal(s["summary"] for s in sections)
    md = write_report(sections, tmp_path, "CartPole").read_text()
    assert not (tmp_path / "success.png").exists() and not (tmp_path / "per_task.png").exists()
    _assert_png(tmp_path / "returns.png")
    assert "![Mean return by panel](returns.png)" in md
    assert "Success %" not in md and "No episode of CartPole-v1 reported success" in md


def test_heat_map_of_many_tasks_stays_legible():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # Two envs with different tasks: the old single grid was mostly grey (missing) cells.
    sections = [{"env_id": env, "policy": agent, "panel": "train", "summary": _summary(rates, group_size=1)}
                for env, rates in (("a-v0", [i / 40 for i in range(40)]), ("b-v0", [0.5, 1.0, 0.0]))
                for agent in ("random", "expert")]
    fig = per_task_figure(sections)
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    blocks = [ax for ax in fig.axes if ax.images]
    assert [len(ax.get_yticklabels()) for ax in blocks] == [40, 3]
    for ax in blocks:
        assert not ax.images[0].get_array().mask.any()              # every cell holds data
        assert len(ax.texts) == ax.images[0].get_array().size       # and shows its value
        boxes = [t.get_window_extent(renderer) for t in ax.get_yticklabels()]
        assert all(a.y0 >= b.y1 or b.y0 >= a.y1 for a, b in zip(boxes, boxes[1:]))   # no overlap
    assert blocks[0].texts[-1].get_text().endswith("%")
    assert fig.get_figheight() >= 40 * 0.2                           # rows of at least 0.2 inch
    colour_bar = next(ax for ax in fig.axes if not ax.images and ax.collections)
    assert [t.get_text() for t in colour_bar.get_xticklabels()][-1] == "100%"


def test_one_task_or_no_signal_gets_no_heat_map():
    one_task = [{"env_id": "e", "policy": "expert", "panel": "train", "summary": _flat(True)}]
    assert per_task_figure(one_task) is None


def test_eval_curve_has_a_band_axes_from_zero_and_reference_lines():
    metrics = [{"env_steps": str(1000 * i), "episode_return_mean": str(0.4 + 0.05 * i)} for i in range(1, 9)]
    metrics[0]["episode_return_mean"] = "nan"   # no episode ended in that iteration
    evals = [{"env_steps": str(1000 * i), "success_rate": str(0.5 + 0.05 * i), "success_lo": str(0.4 + 0.05 * i),
              "success_hi": str(0.6 + 0.05 * i), "return_mean": "0.5"} for i in (4, 8)]
    baselines = [{"env_id": "e", "policy": "random", "panel": "train", "summary": {"success_rate": 0.0,
                                                                                   "return_mean": 0.1}},
                 {"env_id": "e", "policy": "expert", "panel": "train", "summary": {"success_rate": 1.0,
                                                                                   "return_mean": 1.0}}]
    figures = training_figures(metrics, evals, "ppo on e", agent="ppo", baselines=baselines)
    ax = figures["eval_curve.png"].axes[0]
    assert ax.get_ylim() == (0.0, 102.0) and ax.get_xlim()[0] == 0.0    # success in %, from 0
    band = [c for c in ax.collections if c.get_label() == "95% CI over seeds"]
    assert band and band[0].get_paths()[0].vertices[:, 1].min() == pytest.approx(60.0)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "random (evaluation): 0%" in labels and "expert (evaluation): 100%" in labels
    learning = figures["learning_curve.png"].axes[0]
    assert learning.get_ylim()[0] == 0.0
    assert "expert (evaluation): 1" in [line.get_label() for line in learning.get_lines()]


def test_eval_curve_without_success_signal_plots_return():
    evals = [{"env_steps": "4000", "success_rate": "0.0", "success_lo": "0.0", "success_hi": "0.1",
              "return_mean": "210", "return_lo": "180", "return_hi": "240"},
             {"env_steps": "8000", "success_rate": "0.0", "success_lo": "0.0", "success_hi": "0.1",
              "return_mean": "400", "return_lo": "350", "return_hi": "450"}]
    ax = training_figures([], evals, "ppo on CartPole-v1", agent="ppo")["eval_curve.png"].axes[0]
    assert "return" in ax.get_ylabel() and list(ax.get_lines()[0].get_ydata()) == [210.0, 400.0]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]     # the return's interval, as for success
    assert band.min() == 180.0 and band.max() == 450.0
    assert ax.get_ylim()[0] == 0.0 and ax.get_xlim()[0] == 0.0


def test_curves_start_at_zero():
    ax = curves_figure({"ppo": [(100, 0.4), (200, 0.9)]}, "steps", "success", "t").axes[0]
    assert ax.get_ylim()[0] == 0.0 and ax.get_xlim()[0] == 0.0


def test_agents_keep_one_colour_everywhere():
    colours = agent_colours(["ppo", "expert", "random", "bc"])
    assert colours["random"] == agent_colours(["random"])["random"] != colours["expert"]
    assert len(set(colours.values())) == 4


def test_print_summary_table(tmp_path):
    import io
    sections = [{"env_id": "e", "policy": "expert", "panel": "heldout", "summary": summarize(
        [{"task_id": f"t{s}", "seed": s, "group": s, "success": True, "return": 1.0, "length": 6}
         for s in range(60) for _ in range(4)], group_size=4)}]
    out = io.StringIO()
    print_summary(sections, tmp_path / "report.md", file=out)
    text = out.getvalue()
    header = text.splitlines()[0]
    assert all(word in header for word in ("Agent", "Panel", "Success % [95% CI]", "Return", "Steps"))
    assert "expert" in text and "heldout" in text and "100.0% [94.0, 100.0]" in text
    assert "240 (60 seeds)" in text and f"report: {tmp_path / 'report.md'}" in text
