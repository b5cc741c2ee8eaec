"""Evaluation reports: a Markdown page, a JSON dump and a few PNG charts.

Plotting uses matplotlib's Agg renderer through ``matplotlib.figure.Figure``
directly, imported only when a chart is drawn. That keeps the core import
cheap, works on headless machines, and never changes the process-wide
pyplot backend that other code may rely on. Every file is written to a
temporary file in the target directory and moved into place with
``os.replace``, so a reader never sees a half-written report.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["write_report", "plot_curves"]


# --------------------------------------------------------------------------
# File helpers
# --------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a same-directory temp file + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import

    return Figure(figsize=(width, height), dpi=100)


def _save_figure(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _atomic_write(path, buf.getvalue())
    return path


def _jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN/inf become ``None`` so the file is strict JSON."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if hasattr(obj, "tolist") and not isinstance(obj, (int, float)):  # numpy value
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (int, float)):
        return obj
    return str(obj)


# --------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100.0 * x:.1f}"


def _success(summary: Mapping[str, Any]) -> str:
    rate = summary.get("success_rate")
    if rate is None:
        return "–"
    lo, hi = summary.get("success_ci", (None, None))
    return f"{_pct(rate)}% [{_pct(lo)}, {_pct(hi)}]"


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "–" if x is None else format(x, fmt)


def _return(summary: Mapping[str, Any]) -> str:
    mean = summary.get("return_mean")
    lo, hi = summary.get("return_ci", (None, None))
    if mean is None:
        return "–"
    if lo is None or hi is None:
        return _num(mean)
    return f"{_num(mean)} ± {_num((hi - lo) / 2.0)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _ks(sections: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    """k values (>1; k=1 repeats the success rate) present in any section."""
    ks = {k for s in sections for k in s["summary"].get(key, {}) if int(k) > 1}
    return sorted(ks, key=int)


def _panel_label(section: Mapping[str, Any], multi_env: bool) -> str:
    return f"{section['env_id']} / {section['panel']}" if multi_env else str(section["panel"])


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------


def _plot_success(sections: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Grouped bars: one group per panel, one bar per policy, Wilson error bars."""
    multi_env = len({s["env_id"] for s in sections}) > 1
    panels = _unique(_panel_label(s, multi_env) for s in sections)
    policies = _unique(str(s["policy"]) for s in sections)
    lookup = {(_panel_label(s, multi_env), str(s["policy"])): s["summary"] for s in sections}

    fig = _new_figure(max(6.0, 1.2 + 0.5 * len(panels) * max(1, len(policies))), 4.5)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(policies))
    for j, policy in enumerate(policies):
        xs, ys, err_lo, err_hi = [], [], [], []
        for i, panel in enumerate(panels):
            summary = lookup.get((panel, policy))
            if not summary or summary.get("success_rate") is None:
                continue
            rate = summary["success_rate"]
            lo, hi = summary.get("success_ci", (rate, rate))
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(rate)
            err_lo.append(max(0.0, rate - lo))
            err_hi.append(max(0.0, hi - rate))
        ax.bar(xs, ys, width, yerr=[err_lo, err_hi], capsize=3, label=policy)
    ax.set_xticks(range(len(panels)))
    ax.set_xticklabels(panels, rotation=20 if len(panels) > 4 else 0, ha="right" if len(panels) > 4 else "center")
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_title("Success rate by panel")
    ax.grid(axis="y", alpha=0.3)
    if policies:
        ax.legend(fontsize="small", loc="best")
    return _save_figure(fig, path)


def _plot_per_task(sections: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Heat map of per-task success, tasks as rows and policy/panel as columns.

    A heat map rather than bars because it stays readable with hundreds of
    tasks and several series: row height and font shrink as tasks grow.
    """
    import numpy as np

    multi_env = len({s["env_id"] for s in sections}) > 1
    series = [f"{s['policy']}\n{_panel_label(s, multi_env)}" for s in sections]
    tasks = sorted({(str(s["env_id"]), t) for s in sections for t in s["summary"].get("per_task", {})})
    labels = [f"{env}: {t}" if multi_env else t for env, t in tasks]
    row = {key: i for i, key in enumerate(tasks)}
    grid = np.full((max(1, len(tasks)), max(1, len(sections))), np.nan)
    for j, s in enumerate(sections):
        for t, stats in s["summary"].get("per_task", {}).items():
            rate = stats.get("success_rate")
            if rate is not None:
                grid[row[(str(s["env_id"]), t)], j] = rate

    n = max(1, len(tasks))
    height = min(60.0, 1.5 + 0.22 * n)
    font = max(3.0, min(9.0, 0.7 * 72.0 * (height - 1.5) / n))
    fig = _new_figure(min(30.0, 3.5 + 1.1 * len(sections) + 0.06 * max((len(x) for x in labels), default=0)), height)
    ax = fig.add_subplot()
    cmap = _cmap()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                      interpolation="nearest")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=font)
    ax.set_xticks(range(len(series)))
    ax.set_xticklabels(series, fontsize=8, rotation=30 if len(series) > 3 else 0,
                       ha="right" if len(series) > 3 else "center")
    ax.xaxis.tick_top()
    if grid.size <= 1500:
        for (i, j), value in np.ndenumerate(grid):
            if not math.isnan(value):
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=min(font, 8),
                        color="white" if value < 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="success rate")
    ax.set_title("Per-task success rate (%)", pad=12)
    return _save_figure(fig, path)


def _cmap():
    import matplotlib

    # Grey marks missing cells: a task not run for that series.
    return matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")


def plot_curves(curves: Mapping[str, Sequence[tuple[float, float]]], path: str | os.PathLike,
                xlabel: str, ylabel: str, title: str) -> Path:
    """Line chart with one line per name, e.g. learning curves; returns ``path``."""
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    for name, points in curves.items():
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=str(name), marker="." if len(pts) < 50 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize="small")
    return _save_figure(fig, Path(path))


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _overall_table(sections: Sequence[Mapping[str, Any]]) -> list[str]:
    at_ks, hat_ks = _ks(sections, "pass_at_k"), _ks(sections, "pass_hat_k")
    header = ["Env", "Panel", "Policy", "Episodes", "Success % [95% CI]", "Return (mean ± CI)", "Steps"]
    header += [f"pass@{k} %" for k in at_ks] + [f"pass^{k} %" for k in hat_ks]
    rows = []
    for s in sections:
        summ = s["summary"]
        row = [s["env_id"], s["panel"], s["policy"], summ.get("episodes", 0), _success(summ),
               _return(summ), _num(summ.get("length_mean"), ".1f")]
        row += [_pct(summ.get("pass_at_k", {}).get(k)) for k in at_ks]
        row += [_pct(summ.get("pass_hat_k", {}).get(k)) for k in hat_ks]
        rows.append(row)
    return _table(header, rows)


def _per_task_tables(sections: Sequence[Mapping[str, Any]]) -> list[str]:
    """One table per (env, panel): tasks as rows, policies side by side."""
    lines: list[str] = []
    for env, panel in _unique((s["env_id"], s["panel"]) for s in sections):
        group = [s for s in sections if (s["env_id"], s["panel"]) == (env, panel)]
        tasks = sorted({t for s in group for t in s["summary"].get("per_task", {})})
        header = ["Task"] + [f"{s['policy']} success % (n)" for s in group] + [f"{s['policy']} return" for s in group]
        rows = []
        for t in tasks:
            stats = [s["summary"].get("per_task", {}).get(t) for s in group]
            rows.append([t]
                        + ["–" if st is None else f"{_pct(st.get('success_rate'))} ({st.get('episodes', 0)})" for st in stats]
                        + ["–" if st is None else _num(st.get("return_mean")) for st in stats])
        lines += ["", f"### {env} — {panel}", ""] + _table(header, rows)
    return lines


def _link(path: str, out: Path) -> str:
    """``path`` relative to the report folder, with '/' separators (Markdown links)."""
    return Path(os.path.relpath(Path(path).resolve(), out.resolve())).as_posix()


def _video_tables(sections: Sequence[Mapping[str, Any]], out: Path) -> list[str]:
    """One table per (env, policy, panel) that has filmed episodes: outcome,
    a link to the MP4 and the looping GIF preview inline."""
    lines: list[str] = []
    multi_env = len({s["env_id"] for s in sections}) > 1
    for s in sections:
        videos = s.get("videos") or []
        if not videos:
            continue
        rows = []
        for v in videos:
            preview = f"![episode {v['episode']}]({_link(v['preview'], out)})" if v.get("preview") else "–"
            rows.append([v["episode"], v.get("seed", "–"), "yes" if v.get("success") else "no",
                         _num(v.get("return")), v.get("length", "–"),
                         f"[{Path(v['path']).name}]({_link(v['path'], out)})", preview])
        lines += ["", f"### {s['policy']} — {_panel_label(s, multi_env)}", ""]
        lines += _table(["Episode", "Seed", "Success", "Return", "Steps", "Video (MP4)", "Preview"], rows)
    return lines


def write_report(sections: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, title: str,
                 notes: Sequence[str] | None = None) -> Path:
    """Write ``report.md``, ``summary.json``, ``success.png`` and ``per_task.png``.

    ``sections`` holds dicts with ``env_id``, ``policy``, ``panel`` and
    ``summary`` (the output of :func:`omnigym.stats.summarize`), and
    optionally ``videos`` (filmed episodes, linked under "Videos"). The
    Markdown file is written last, so once it exists everything it links
    to exists too. Returns the path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = list(sections)

    payload = {"title": title, "notes": list(notes or []), "sections": sections}
    _atomic_write(out / "summary.json", (json.dumps(_jsonable(payload), indent=2) + "\n").encode())
    _plot_success(sections, out / "success.png")
    _plot_per_task(sections, out / "per_task.png")

    lines = [f"# {title}", "", "## Overall", ""]
    lines += _overall_table(sections)
    lines += ["", "Success intervals are 95% Wilson score intervals; return intervals are 95% "
              "Student t intervals. Steps is the mean episode length.", ""]
    lines += ["![Success rate by panel](success.png)", "", "![Per-task success rate](per_task.png)", ""]
    lines += ["## Per task"] + _per_task_tables(sections)
    videos = _video_tables(sections, out)
    if videos:  # only sections evaluated with video > 0 have any
        lines += ["", "## Videos", "", "The first episodes of each policy and panel, filmed with "
                  "`render_mode=\"rgb_array\"`; previews are subsampled GIFs."] + videos
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    report = out / "report.md"
    _atomic_write(report, ("\n".join(lines) + "\n").encode())
    return report
