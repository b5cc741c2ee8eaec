"""Evaluate agents on an environment's fixed seed panels, with intervals.

``evaluate`` returns one *section* per (agent, panel): success rate with a
Wilson 95% interval, mean return and steps with t-intervals, pass@k and
pass^k over groups of identical resets, and a per-task breakdown.
``evaluate_many`` runs several and writes the Markdown report with plots.

With ``video=K`` (default 0: off, nothing changes) the first K episodes of
each (agent, panel) are filmed to MP4 (plus a GIF preview) under
``OUT/videos/`` and listed in the section's ``videos``, which the report links.
"""
from __future__ import annotations

from pathlib import Path

from omnigym import info_keys as K
from omnigym.agents import agent_name, resolve_agent
from omnigym.registry import panels_of
from omnigym.report import write_report
from omnigym.rollout import rollout
from omnigym.stats import summarize


def panel_seeds(env_id: str, panel: str | list[int] | range) -> tuple[str, list[int], dict]:
    """(panel name, seeds, env kwargs) for a named panel of the env
    (``omnigym info ID`` lists them) or for an explicit list of seeds."""
    if not isinstance(panel, str):
        seeds = list(panel)
        return f"seeds {seeds[0]}..{seeds[-1]}" if seeds else "empty", seeds, {}
    panels = panels_of(env_id)
    if panel not in panels:
        raise ValueError(f"{env_id} has no panel {panel!r}; its panels: {', '.join(panels)}; "
                         "or pass seeds such as 0..49")
    split, seeds = panels[panel]
    return panel, seeds, ({"split": split} if split else {})


def episode_record(episode) -> dict:
    last = episode.infos[-1] if episode.infos else {}
    return {"task_id": last.get("template") or episode.task_id or "task",
            "seed": episode.seed, "group": episode.group, "success": bool(last.get(K.SUCCESS, False)),
            "return": episode.total_return, "length": episode.length}


def panel_label(panel, seeds) -> str:
    """A panel in file names (episodes, videos): its name, or its seed range."""
    return panel if isinstance(panel, str) else f"seeds{seeds[0]}-{seeds[-1]}" if len(seeds) else "empty"


def evaluate(agent, env_id: str, panel="train", group_size: int = 1, *, env_kwargs: dict | None = None,
             max_steps: int | None = None, record_to: str | None = None, progress: bool = True,
             episodes_out: list | None = None, video: int = 0, video_dir: str | Path | None = None,
             groups_per_batch: int | None = None, seeds_limit: int | None = None) -> dict:
    """One report section: ``{"env_id", "policy", "panel", "summary"}`` (``policy``
    names the agent), plus ``"videos"`` (one entry per filmed episode) when
    ``video`` > 0; the videos go to ``video_dir`` (default ``videos/``).
    ``seeds_limit``: play only the panel's first that many seeds (the panel
    keeps its name; the section's episode count says how many).
    ``groups_per_batch``: groups stepped together; None takes the agent's
    ``episodes_per_batch`` (an LM generates for a whole batch in one call), else 1."""
    name, seeds, panel_kwargs = panel_seeds(env_id, panel)
    seeds = seeds[:seeds_limit] if seeds_limit is not None else seeds
    agent = resolve_agent(agent, env_id)
    if groups_per_batch is None:
        groups_per_batch = max(1, getattr(agent, "episodes_per_batch", 1) // group_size)
    # Video files are named like evaluate_many's episode files: <agent>-<panel label>.
    label = panel_label(panel, seeds)
    episodes = rollout(agent, env_id, seeds, group_size, groups_per_batch=groups_per_batch,
                       env_kwargs={**panel_kwargs, **(env_kwargs or {})},
                       max_steps=max_steps, record_to=record_to, progress=progress,
                       desc=f"{agent_name(agent)} / {name}", video_episodes=video,
                       video_dir=video_dir, video_prefix=f"{agent_name(agent)}-{label}")
    if episodes_out is not None:
        episodes_out.extend(episodes)
    summary = summarize([episode_record(e) for e in episodes], group_size=group_size)
    section = {"env_id": env_id, "policy": agent_name(agent), "panel": name, "summary": summary}
    if video > 0:
        section["videos"] = [{**episode_record(e), "episode": i, "path": e.metadata["video"],
                              "preview": e.metadata.get("video_preview"), "frames": e.metadata["video_frames"]}
                             for i, e in enumerate(episodes) if "video" in e.metadata]
    return section


def evaluate_many(agents: list, env_id: str, panels: list, out_dir: str | Path, group_size: int = 1,
                  title: str | None = None, env_kwargs: dict | None = None, record: bool = True,
                  notes: list[str] | None = None, progress: bool = True,
                  video: int = 0) -> tuple[Path, list[dict]]:
    """Every agent on every panel; writes ``report.md`` (+ plots, summary,
    and the episodes as Parquet under ``episodes/``). ``video``: film the
    first that many episodes of each (agent, panel) into ``videos/``.
    Returns (report path, sections)."""
    out_dir = Path(out_dir)
    sections = []
    for agent in _distinctly_named([resolve_agent(spec, env_id) for spec in agents]):
        name = agent_name(agent)
        for panel in panels:
            label = panel_label(panel, panel)
            record_to = out_dir / "episodes" / f"{name}-{label}.parquet" if record else None
            sections.append(evaluate(agent, env_id, panel, group_size, env_kwargs=env_kwargs,
                                     record_to=record_to, progress=progress, video=video,
                                     video_dir=out_dir / "videos"))
    path = write_report(sections, out_dir, title or f"Evaluation on {env_id}", notes=notes)
    return path, sections


def _distinctly_named(agents: list) -> list:
    """One name per agent in a report: two runs of one algorithm go by their
    run names; any other clash is an error the user can fix with ``name``."""
    names = [agent_name(a) for a in agents]
    for agent, name in zip(agents, names):
        if names.count(name) > 1 and getattr(agent, "run_name", None):
            agent.name = agent.run_name
    names = [agent_name(a) for a in agents]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"two agents are named {clashes[0]!r}: give each its own name")
    return agents
