"""LM baselines on the text families' standard panels: success with its
Wilson interval (over seeds) and the time each took, one table.

    python benchmarks/lm_baselines.py --out reports/lm_baselines            # CPU-sized defaults
    python benchmarks/lm_baselines.py --agent sft=runs/sft-household-household-v0-s0 ...

Agents (``--agent LABEL=SPEC[,key=value...]``, repeatable; defaults below):
random, the expert, SmolLM2-135M-Instruct zero-shot generating its action
(``lm``), the same model ranking the admissible actions by log-likelihood
(``lm,mode=score``), and any fine-tuned run or model folder. Every agent
plays the same seeds; episodes are batched across seeds
(``groups_per_batch``) so the LM generates for the whole panel at once.
CPU-sized: the first ``--seeds`` seeds of each panel, episodes cut at
``--max-steps`` (the household expert needs 5.5 steps on average).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from omnigym.agents import resolve_agent
from omnigym.evaluation import evaluate

PANELS = [("household/Household-v0", "train"), ("household/Household-v0", "heldout"),
          ("shell/FreeForm-v0", "test"), ("tools/Tools-v0", "train"), ("tools/Tools-v0", "heldout")]
DEFAULT_AGENTS = ["random=random", "lm=lm", "lm-score=lm,mode=score", "expert=expert"]


def parse_agent(text: str) -> tuple[str, str, dict]:
    """``label=spec,key=value,...`` -> (label, spec, options); values are JSON where they parse."""
    label, _, rest = text.partition("=")
    spec, *pairs = rest.split(",")
    options = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return label, spec, options


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", action="append", help="LABEL=SPEC[,key=value...] (default: " +
                   " ".join(DEFAULT_AGENTS) + ")")
    p.add_argument("--seeds", type=int, default=20, help="the first N seeds of each panel")
    p.add_argument("--max-steps", type=int, default=15)
    p.add_argument("--panels", nargs="+", help="ENV_ID:PANEL ... (default: the five standard panels)")
    p.add_argument("--out", default="reports/lm_baselines")
    args = p.parse_args()
    panels = [tuple(x.rsplit(":", 1)) for x in args.panels] if args.panels else PANELS
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    for label, spec, options in map(parse_agent, args.agent or DEFAULT_AGENTS):
        agent = None
        for env_id, panel in panels:
            key = f"{label} | {env_id} | {panel}"
            if key in results:          # an interrupted run continues where it stopped
                continue
            start = time.perf_counter()
            if agent is None or spec in ("random", "expert"):   # built-ins are per env; an LM is loaded once
                agent = resolve_agent(spec, env_id, **options)
                agent.name = label
            section = evaluate(agent, env_id, panel, seeds_limit=args.seeds, max_steps=args.max_steps,
                               groups_per_batch=args.seeds, record_to=out / "episodes" / f"{label}-{env_id.replace('/', '-')}-{panel}.parquet")
            summary = section["summary"]
            results[key] = {"agent": label, "spec": spec, "options": options, "env_id": env_id, "panel": panel,
                            "success_rate": summary["success_rate"], "success_ci": summary["success_ci"],
                            "episodes": summary["episodes"], "seconds": time.perf_counter() - start}
            (out / "results.json").write_text(json.dumps(results, indent=2))
            print(f"{key}: {100 * summary['success_rate']:.1f}% "
                  f"[{100 * summary['success_ci'][0]:.1f}, {100 * summary['success_ci'][1]:.1f}] "
                  f"in {results[key]['seconds']:.0f} s", flush=True)
    table = markdown(results, panels)
    (out / "table.md").write_text(table)
    print("\n" + table)


def markdown(results: dict, panels) -> str:
    """Agents x panels: success [Wilson 95%], episodes and minutes per cell.
    Every panel with a result is shown, not only this invocation's."""
    seen = {(r["env_id"], r["panel"]) for r in results.values()}
    panels = [p for p in PANELS if p in seen] + [p for p in panels if p in seen and p not in PANELS]
    labels = list(dict.fromkeys(r["agent"] for r in results.values()))
    lines = ["| agent | " + " | ".join(f"{e} {p}" for e, p in panels) + " |", "|" + "---|" * (len(panels) + 1)]
    for label in labels:
        cells = []
        for env_id, panel in panels:
            r = results.get(f"{label} | {env_id} | {panel}")
            if r is None:
                cells.append("–")
                continue
            lo, hi = r["success_ci"]
            cells.append(f"{100 * r['success_rate']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}] "
                         f"(n={r['episodes']}, {r['seconds'] / 60:.1f} min)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
