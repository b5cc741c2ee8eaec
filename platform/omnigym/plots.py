"""The report's charts, each made to be read at a glance.

- ``success.png``: success rate per panel with its interval, one bar per
  agent, 0-100%;
- ``returns.png``: the same for mean return, for envs without a success
  signal (CartPole and HalfCheetah never report success: their success
  chart would be all zeros and say nothing);
- ``per_task.png``: one heat map per panel, tasks as rows and agents as
  columns, so every cell holds data; rows keep a fixed height, so labels
  never overlap however many tasks there are;
- ``learning_curve.png`` and ``eval_curve.png`` of a training run, with the
  evaluation's confidence band and the baselines (random, expert) as
  reference lines.

Every chart gives an agent the same colour (random grey, expert green) and
its axes start at 0. Drawing goes through ``matplotlib.figure.Figure`` on
the Agg canvas, imported only when a chart is drawn: no pyplot, so the
process-wide backend is never touched and headless machines work.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = ["has_success_signal", "agent_colours", "success_figure", "returns_figure", "per_task_figure",
           "curves_figure", "plot_curves", "training_figures", "plot_training_curves", "save_figure"]

FIXED_COLOURS = {"random": "#8c8c8c", "expert": "#2ca02c"}
# tab10 without its grey and green, which random and the expert own.
OTHER_COLOURS = ["#1f77b4", "#ff7f0e", "#9467bd", "#d62728", "#17becf", "#e377c2", "#bcbd22", "#8c564b"]
ROW_INCHES = 0.26      # one bar or heat-map row: room for an 8-point label
LABEL_FONT = 8


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------



def _percent(value: float) -> str:
    """A percentage label: 0.4% is not rounded to a misleading 0%."""
    return f"{value:.1f}%" if 0 < value < 1 or 99 < value < 100 else f"{value:.0f}%"

def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import

    # Constrained layout keeps titles, tick labels, colour bars and legends apart.
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(fig, path: str | os.PathLike) -> Path:
    """PNG of ``fig`` at ``path``, written atomically."""
    from omnigym.episodes import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def agent_colours(names: Iterable[str]) -> dict[str, str]:
    """One colour per agent, the same in every chart of a report."""
    others = iter(OTHER_COLOURS * 4)
    return {name: FIXED_COLOURS.get(name) or next(others) for name in _unique(names)}


def _by_env(sections: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    envs: dict[str, list] = {}
    for s in sections:
        envs.setdefault(str(s["env_id"]), []).append(s)
    return envs


def has_success_signal(summaries: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any episode of these summaries succeeded.

    An env that never reports success (CartPole, HalfCheetah) and one that
    no agent solved look the same here, and either way a success chart
    would be all zeros: the charts show return instead."""
    return any((s.get("success_rate") or 0.0) > 0.0 for s in summaries)


def _value(v: float) -> str:
    """A return as 0.25, 31.5 or 1510 (never 1.51e+03)."""
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _percent_axis(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(decimals=0))


def _legend(fig, colours: Mapping[str, str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=name) for name, c in colours.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)), frameon=False,
               fontsize=LABEL_FONT + 1)


# --------------------------------------------------------------------------
# Success and return per panel
# --------------------------------------------------------------------------


def _in_agent_order(sections, colours: Mapping[str, str]) -> list:
    """Sections sorted by agent, in the report's agent order (stable otherwise)."""
    order = {name: i for i, name in enumerate(colours)}
    return sorted(sections, key=lambda s: order[str(s["policy"])])


def _panel_bars(ax, sections, value: Callable, interval: Callable, colours, fmt: Callable) -> None:
    """Horizontal bars grouped by panel (one bar per agent, always in the same
    order), CI whiskers and the value written at the end of each bar."""
    panels = _unique(str(s["panel"]) for s in sections)
    y, ticks = 0.0, []
    for panel in panels:
        first = y
        for s in _in_agent_order([s for s in sections if str(s["panel"]) == panel], colours):
            v = value(s["summary"])
            if v is None:
                continue
            lo, hi = interval(s["summary"], v)
            ax.barh(y, v, height=0.8, color=colours[str(s["policy"])],
                    xerr=[[max(0.0, v - lo)], [max(0.0, hi - v)]], capsize=3, error_kw={"lw": 1})
            ax.text(max(hi, v, 0.0), y, "  " + fmt(v), va="center", fontsize=LABEL_FONT)
            y += 1
        ticks.append(((first + y - 1) / 2, panel))
        y += 0.5
    ax.set_yticks([t for t, _ in ticks], [name for _, name in ticks], fontsize=LABEL_FONT + 1)
    ax.set_ylim(y - 0.5, -0.9)  # first panel on top
    ax.axvline(0.0, color="black", lw=0.8)
    ax.grid(axis="x", alpha=0.3)


def _bars_per_env(sections, title: str, value: Callable, interval: Callable, fmt: Callable, xlabel: str,
                  percent: bool):
    """One subplot per env (its title the env id), stacked."""
    envs = _by_env(sections)
    rows = {env: len(group) + 0.5 * len({s["panel"] for s in group}) + 1.2 for env, group in envs.items()}
    fig = _new_figure(7.5, 1.2 + ROW_INCHES * 1.3 * sum(rows.values()))
    axes = fig.subplots(len(envs), 1, squeeze=False, sharex=percent,
                        gridspec_kw={"height_ratios": list(rows.values())})[:, 0]
    colours = agent_colours(str(s["policy"]) for s in sections)
    for ax, (env, group) in zip(axes, envs.items()):
        _panel_bars(ax, group, value, interval, colours, fmt)
        ax.set_title(env, fontsize=LABEL_FONT + 2, loc="left")
        if percent:
            ax.set_xlim(0.0, 112.0)   # room for "100%" after the bar
            ax.set_xticks([0, 25, 50, 75, 100])
            _percent_axis(ax.xaxis)
        else:
            lo, hi = ax.get_xlim()
            ax.set_xlim(min(0.0, lo), max(0.0, hi) + 0.15 * (max(0.0, hi) - min(0.0, lo)))
    axes[-1].set_xlabel(xlabel)
    fig.suptitle(title)
    _legend(fig, colours)
    return fig


def success_figure(sections: Sequence[Mapping[str, Any]]):
    """Success rate (%) per panel, one bar per agent, 95% interval over seeds."""
    def interval(summary, v):
        lo, hi = summary.get("success_ci") or (None, None)
        return (v, v) if lo is None else (100.0 * lo, 100.0 * hi)

    return _bars_per_env(sections, "Success rate (95% CI over seeds)",
                         lambda m: None if m.get("success_rate") is None else 100.0 * m["success_rate"],
                         interval, _percent, "success rate", percent=True)


def returns_figure(sections: Sequence[Mapping[str, Any]]):
    """Mean episode return per panel, one bar per agent, 95% interval over seeds."""
    def interval(summary, v):
        lo, hi = summary.get("return_ci") or (None, None)
        return (v, v) if lo is None or hi is None else (lo, hi)

    return _bars_per_env(sections, "Mean episode return (95% CI over seeds)", lambda m: m.get("return_mean"),
                         interval, _value, "mean episode return", percent=False)


# --------------------------------------------------------------------------
# Per-task heat maps
# --------------------------------------------------------------------------


def _task_blocks(sections) -> list[tuple[str, list[str], list[str], Any]]:
    """(title, tasks, agents, grid of success %) per (env, panel) with a
    success signal and at least two tasks (one task is the success chart)."""
    import numpy as np

    multi_env = len({s["env_id"] for s in sections}) > 1
    colours = agent_colours(str(s["policy"]) for s in sections)
    blocks = []
    for env, panel in _unique((str(s["env_id"]), str(s["panel"])) for s in sections):
        group = _in_agent_order([s for s in sections if (str(s["env_id"]), str(s["panel"])) == (env, panel)],
                                colours)
        if not has_success_signal(s["summary"] for s in _by_env(sections)[env]):
            continue
        tasks = sorted({t for s in group for t, st in s["summary"].get("per_task", {}).items()
                        if st.get("success_rate") is not None})
        if len(tasks) < 2:
            continue
        grid = np.full((len(tasks), len(group)), np.nan)
        for j, s in enumerate(group):
            for i, t in enumerate(tasks):
                rate = s["summary"].get("per_task", {}).get(t, {}).get("success_rate")
                if rate is not None:
                    grid[i, j] = 100.0 * rate
        blocks.append((f"{env} — {panel}" if multi_env else panel, tasks, [str(s["policy"]) for s in group], grid))
    return blocks


def per_task_figure(sections: Sequence[Mapping[str, Any]]):
    """Success % per task: one heat map per panel (tasks x agents), every
    cell annotated; ``None`` when no panel has two tasks with a success signal."""
    import matplotlib
    import numpy as np

    blocks = _task_blocks(sections)
    if not blocks:
        return None
    heights = [len(tasks) + 2.2 for _, tasks, _, _ in blocks]   # rows + title and agent names
    columns = max(len(agents) for _, _, agents, _ in blocks)
    labels = 0.065 * max(len(t) for _, tasks, _, _ in blocks for t in tasks)   # inches at 8 points
    titles = 0.08 * max(len(title) for title, _, _, _ in blocks)                # inches at 10 points
    fig = _new_figure(0.5 + max(labels + 0.95 * columns, titles), 1.4 + ROW_INCHES * sum(heights))
    axes = fig.subplots(len(blocks), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    # Grey marks a task an agent did not play in that panel.
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    image = None
    for ax, (title, tasks, agents, grid) in zip(axes, blocks):
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=100.0, aspect="auto",
                          interpolation="nearest")
        ax.set_yticks(range(len(tasks)), tasks, fontsize=LABEL_FONT)
        # Names wider than a column (a run folder as agent) are slanted rather than overlapping.
        slant = max(map(len, agents)) > 12
        ax.set_xticks(range(len(agents)), agents, fontsize=LABEL_FONT + 1, rotation=30 if slant else 0,
                      ha="left" if slant else "center", rotation_mode="anchor")
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.set_title(title, fontsize=LABEL_FONT + 2, loc="left")
        for (i, j), value in np.ndenumerate(grid):
            if not math.isnan(value):
                ax.text(j, i, _percent(value), ha="center", va="center", fontsize=LABEL_FONT,
                        color="white" if value < 50.0 else "black")
    bar = fig.colorbar(image, ax=list(axes), location="bottom", shrink=0.6, aspect=30,
                       label="success rate")
    bar.set_ticks([0, 25, 50, 75, 100], labels=["0%", "25%", "50%", "75%", "100%"])
    bar.ax.tick_params(labelsize=LABEL_FONT)
    fig.suptitle("Success rate per task")
    return fig


# --------------------------------------------------------------------------
# Curves
# --------------------------------------------------------------------------


def _references(ax, references: Mapping[str, float], colours: Mapping[str, str],
                fmt: Callable[[float], str] = _value, scale: float = 1.0) -> None:
    """A dashed horizontal line per baseline, its value in the legend."""
    for name, value in references.items():
        ax.axhline(scale * value, color=colours[name], ls="--", lw=1.2,
                   label=f"{name} (evaluation): {fmt(scale * value)}")


def _short(x: float, _pos=None) -> str:
    """A tick as 0.5, 20k or 1.5M (environment steps run into millions)."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:g}{suffix}"
    return f"{x:g}"


def _steps_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(_short))


def _from_zero(ax) -> None:
    """Both axes include 0, so a curve's size is read against nothing."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    ax.set_xlim(min(0.0, x0), x1)
    ax.set_ylim(min(0.0, y0), max(0.0, y1))


def curves_figure(curves: Mapping[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str, title: str,
                  references: Mapping[str, float] | None = None):
    """Line chart with one line per name (e.g. learning curves of several
    seeds) and optional reference lines ({agent: value}); axes from 0."""
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    references = dict(references or {})
    colours = agent_colours([*references, *curves])
    for name, points in curves.items():
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=str(name), color=colours[name],
                marker="o" if len(pts) < 30 else None, ms=4)
    _references(ax, references, colours)
    _from_zero(ax)
    _steps_axis(ax.xaxis)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if curves or references:
        ax.legend(fontsize="small")
    return fig


def plot_curves(curves: Mapping[str, Sequence[tuple[float, float]]], path: str | os.PathLike,
                xlabel: str, ylabel: str, title: str, references: Mapping[str, float] | None = None) -> Path:
    """:func:`curves_figure` saved as a PNG at ``path``."""
    return save_figure(curves_figure(curves, xlabel, ylabel, title, references), path)


def _number(text) -> float | None:
    """A CSV field as a float; empty, NaN or unparsable fields are None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _eval_figure(evals, agent: str, baselines, title: str, success: bool):
    """Evaluation success (%) or, where there is no success signal, mean
    return, with its 95% band; baselines as reference lines."""
    import numpy as np

    key = "success_rate" if success else "return_mean"
    low, high = ("success_lo", "success_hi") if success else ("return_lo", "return_hi")
    scale = 100.0 if success else 1.0
    rows = [(_number(r["env_steps"]), _number(r.get(key)), _number(r.get(low)), _number(r.get(high)))
            for r in evals]
    rows = [r for r in rows if r[0] is not None and r[1] is not None]
    x = np.array([r[0] for r in rows])
    y = scale * np.array([r[1] for r in rows])
    lo = scale * np.array([r[2] if r[2] is not None else r[1] for r in rows])
    hi = scale * np.array([r[3] if r[3] is not None else r[1] for r in rows])
    refs = {s["policy"]: s["summary"][key] for s in baselines if s["summary"].get(key) is not None}
    colours = agent_colours([*refs, agent])
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    ax.fill_between(x, lo, hi, color=colours[agent], alpha=0.2, lw=0, label="95% CI over seeds")
    ax.errorbar(x, y, yerr=[y - lo, hi - y], color=colours[agent], marker="o", ms=4, capsize=3, label=agent)
    ax.set_xlim(0.0, max([*x, 1.0]) * 1.05)
    _steps_axis(ax.xaxis)
    if success:
        _references(ax, refs, colours, fmt=_percent, scale=100.0)
        ax.set_ylim(0.0, 102.0)
        _percent_axis(ax.yaxis)
        ax.set(ylabel="success rate (evaluation)", title=title)
    else:
        _references(ax, refs, colours)
        _from_zero(ax)
        ax.set(ylabel="mean episode return (evaluation)", title=f"{title} (no success signal: return)")
    ax.set(xlabel="environment steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def training_figures(metrics: Sequence[Mapping[str, Any]], evals: Sequence[Mapping[str, Any]], title: str,
                     agent: str = "trained", baselines: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """``{"learning_curve.png": figure, "eval_curve.png": figure}`` of a run,
    from its ``metrics.csv`` and ``eval.csv`` rows (dicts of strings) and the
    report sections of its ``baselines`` (random, expert), drawn as reference
    lines. The evaluation curve shows success with its band when any
    evaluation or baseline succeeded, else mean return."""
    refs_return = {s["policy"]: s["summary"]["return_mean"] for s in baselines
                   if s["summary"].get("return_mean") is not None}
    returns = [(_number(r["env_steps"]), _number(r["episode_return_mean"])) for r in metrics]
    # Iterations in which no episode ended have no mean return: left out.
    figures = {"learning_curve.png": curves_figure(
        {agent: [p for p in returns if None not in p]}, "environment steps", "mean episode return (training)",
        f"{title}: learning curve", references=refs_return)}
    success = has_success_signal([*({"success_rate": _number(r["success_rate"])} for r in evals),
                                  *(s["summary"] for s in baselines)])
    figures["eval_curve.png"] = _eval_figure(evals, agent, baselines, f"{title}: evaluation", success)
    return figures


def plot_training_curves(metrics: Sequence[Mapping[str, Any]], evals: Sequence[Mapping[str, Any]],
                         out_dir: str | os.PathLike, title: str, agent: str = "trained",
                         baselines: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """Write :func:`training_figures` into ``out_dir``; returns their paths."""
    return [save_figure(fig, Path(out_dir) / name)
            for name, fig in training_figures(metrics, evals, title, agent, baselines).items()]
