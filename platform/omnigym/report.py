"""Evaluation reports: a Markdown page, a JSON dump, charts (``omnigym.plots``)
and a summary table for the terminal.

Every file is written atomically (``omnigym.episodes.atomic_write``), and
``report.md`` last, so a reader never sees a half-written report nor a link
to a file that does not exist yet.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from omnigym.episodes import atomic_write_text
# plot_curves and plot_training_curves are re-exported: training reports draw their curves from here.
from omnigym.plots import (has_success_signal, per_task_figure, plot_curves, plot_training_curves,
                           returns_figure, save_figure, success_figure)

__all__ = ["write_report", "print_summary", "plot_curves", "plot_training_curves"]


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
    """``x`` to ``fmt``; 1000 and more as a whole number (1510, not 1.51e+03)."""
    if x is None:
        return "–"
    return format(x, fmt) if abs(x) < 1000 else f"{x:.0f}"


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
# Report
# --------------------------------------------------------------------------


def _episodes(summary: Mapping[str, Any]) -> str:
    """Episodes, and the independent seeds behind them when resets repeat a seed."""
    n, seeds = summary.get("episodes", 0), summary.get("seeds")
    return f"{n} ({seeds} seeds)" if seeds is not None and seeds != n else str(n)


def _signal_by_env(sections: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    envs = _unique(str(s["env_id"]) for s in sections)
    return {env: has_success_signal(s["summary"] for s in sections if str(s["env_id"]) == env) for env in envs}


def _overall_table(sections: Sequence[Mapping[str, Any]], signal: Mapping[str, bool]) -> list[str]:
    """One row per (env, panel, agent); success columns only where some env
    has a success signal (a row of an env without one shows '–')."""
    any_signal = any(signal.values())
    at_ks = _ks(sections, "pass_at_k") if any_signal else []
    hat_ks = _ks(sections, "pass_hat_k") if any_signal else []
    header = ["Env", "Panel", "Agent", "Episodes"] + (["Success % [95% CI]"] if any_signal else [])
    header += ["Return (mean ± CI)", "Steps"] + [f"pass@{k} %" for k in at_ks] + [f"pass^{k} %" for k in hat_ks]
    rows = []
    for s in sections:
        summ, ok = s["summary"], signal[str(s["env_id"])]
        row = [s["env_id"], s["panel"], s["policy"], _episodes(summ)]
        row += [_success(summ) if ok else "–"] if any_signal else []
        row += [_return(summ), _num(summ.get("length_mean"), ".1f")]
        row += [_pct(summ.get("pass_at_k", {}).get(k)) if ok else "–" for k in at_ks]
        row += [_pct(summ.get("pass_hat_k", {}).get(k)) if ok else "–" for k in hat_ks]
        rows.append(row)
    return _table(header, rows)


def _per_task_tables(sections: Sequence[Mapping[str, Any]], signal: Mapping[str, bool]) -> list[str]:
    """One table per (env, panel): tasks as rows, agents side by side."""
    lines: list[str] = []
    for env, panel in _unique((s["env_id"], s["panel"]) for s in sections):
        group = [s for s in sections if (s["env_id"], s["panel"]) == (env, panel)]
        tasks = sorted({t for s in group for t in s["summary"].get("per_task", {})})
        ok = signal[str(env)]
        header = ["Task"] + ([f"{s['policy']} success % (n)" for s in group] if ok else [])
        header += [f"{s['policy']} return" for s in group]
        rows = []
        for t in tasks:
            stats = [s["summary"].get("per_task", {}).get(t) for s in group]
            success = ["–" if st is None else f"{_pct(st.get('success_rate'))} ({st.get('episodes', 0)})"
                       for st in stats]
            rows.append([t] + (success if ok else []) + ["–" if st is None else _num(st.get("return_mean"))
                                                         for st in stats])
        lines += ["", f"### {env} — {panel}", ""] + _table(header, rows)
    return lines


def _link(path: str, out: Path) -> str:
    """``path`` relative to the report folder, with '/' separators (Markdown links)."""
    return Path(os.path.relpath(Path(path).resolve(), out.resolve())).as_posix()


def _video_tables(sections: Sequence[Mapping[str, Any]], out: Path) -> list[str]:
    """One table per (env, agent, panel) that has filmed episodes: outcome,
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


def _charts(sections: Sequence[Mapping[str, Any]], signal: Mapping[str, bool], out: Path) -> list[str]:
    """Write the charts that say something; their Markdown image lines."""
    lines = []
    with_signal = [s for s in sections if signal[str(s["env_id"])]]
    without = [s for s in sections if not signal[str(s["env_id"])]]
    if with_signal:
        save_figure(success_figure(with_signal), out / "success.png")
        lines += ["![Success rate by panel](success.png)", ""]
    if without:
        save_figure(returns_figure(without), out / "returns.png")
        lines += ["![Mean return by panel](returns.png)", ""]
    per_task = per_task_figure(sections)
    if per_task is not None:
        save_figure(per_task, out / "per_task.png")
        lines += ["![Success rate per task](per_task.png)", ""]
    return lines


def write_report(sections: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, title: str,
                 notes: Sequence[str] | None = None) -> Path:
    """Write ``report.md``, ``summary.json`` and the charts that say something:
    ``success.png`` (envs that report success), ``returns.png`` (envs that
    never do) and ``per_task.png`` (panels of several tasks).

    ``sections`` holds dicts with ``env_id``, ``policy`` (the agent's name),
    ``panel`` and ``summary`` (the output of :func:`omnigym.stats.summarize`),
    and optionally ``videos`` (filmed episodes, linked under "Videos").
    Returns the path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = list(sections)
    signal = _signal_by_env(sections)

    payload = {"title": title, "notes": list(notes or []), "sections": sections}
    atomic_write_text(out / "summary.json", json.dumps(_jsonable(payload), indent=2) + "\n")

    lines = [f"# {title}", "", "## Overall", ""]
    lines += _overall_table(sections, signal)
    lines += ["", "Intervals are 95% and count seeds, not episodes (resets of one seed are not independent): "
              "success is a Wilson score interval over seeds, return a Student t interval over per-seed means. "
              "Steps is the mean episode length.", ""]
    if not all(signal.values()):
        quiet = ", ".join(env for env, ok in signal.items() if not ok)
        lines += [f"No episode of {quiet} reported success (`info[\"success\"]`): its success columns "
                  "and charts are left out and returns are shown instead.", ""]
    lines += _charts(sections, signal, out)
    lines += ["## Per task"] + _per_task_tables(sections, signal)
    videos = _video_tables(sections, out)
    if videos:  # only sections evaluated with video > 0 have any
        lines += ["", "## Videos", "", "The first episodes of each agent and panel, filmed with "
                  "`render_mode=\"rgb_array\"`, with the step, reward and success drawn under each frame; "
                  "previews are subsampled GIFs."] + videos
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Terminal summary
# --------------------------------------------------------------------------


def print_summary(sections: Sequence[Mapping[str, Any]], report_path: str | os.PathLike | None = None,
                  file=None) -> None:
    """A table on the terminal (rich): agent, panel, success % [95% CI],
    return, steps and episodes per section, then where the report is.
    Success is left out as in the report when no env has a success signal."""
    from rich.console import Console
    from rich.table import Table

    sections = list(sections)
    signal = _signal_by_env(sections)
    multi_env = len(signal) > 1
    columns = (["Env"] if multi_env else []) + ["Agent", "Panel"]
    columns += (["Success % [95% CI]"] if any(signal.values()) else []) + ["Return ± CI", "Steps", "Episodes"]
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        table.add_column(name, justify="left" if name in ("Env", "Agent", "Panel") else "right")
    for s in sections:
        summ = s["summary"]
        row = ([str(s["env_id"])] if multi_env else []) + [str(s["policy"]), str(s["panel"])]
        row += [_success(summ) if signal[str(s["env_id"])] else "–"] if any(signal.values()) else []
        row += [_return(summ), _num(summ.get("length_mean"), ".1f"), _episodes(summ)]
        table.add_row(*row)
    console = Console(file=file, highlight=False)
    if not console.is_terminal:  # a file or a pipe: rows are never wrapped at rich's default 80 columns
        console.width = 1000
    console.print(table)
    if report_path is not None:
        console.print(f"\nreport: {report_path}")
