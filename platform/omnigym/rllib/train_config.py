"""The ``omnigym train`` config: hydra composition, one-line explanations of
override mistakes, and the ``--help`` text, all read from ``configs/``."""
from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
EXAMPLES = [
    ("PPO on CartPole for 20 iterations", "omnigym train env=cartpole iterations=20"),
    ("any registered id, with its kwargs", "omnigym train env=household env.id=household/PutIn-v0 policy=scorer"),
    ("your own env: a module in this folder or a .py file",
     "omnigym train env=cartpole env.id=user/Corridor-v0 env.modules=[my_envs]"),
    ("three seeds, one after another, and a report across them", "omnigym train env=cartpole seed=[0,1,2]"),
    ("fine-tune an LM on expert episodes of a text env", "omnigym train algo=sft policy=lm env=household"),
    ("continue a run (killed, or to more iterations)", "omnigym train env=cartpole resume=true iterations=40"),
]


def slug(text) -> str:
    """``user/Corridor-v0`` -> ``user-corridor-v0``: an env id as part of a folder name."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "env"


OmegaConf.register_new_resolver("slug", slug, replace=True)  # run_name: ${slug:${env.id}}


def compose(overrides: list[str] | None = None) -> DictConfig:
    """The train config with hydra command-line overrides applied; a mistake
    in them raises a one-line ValueError that names the bad key and its
    closest match. With ``resume=true`` and no ``iterations=``, iterations is
    None: the run continues to what its saved config asked for."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    overrides = list(overrides or [])
    try:
        cfg = _hydra_compose(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ValueError(explain(overrides, exc)) from None
    if cfg.resume and not any(_key(o) == "iterations" for o in overrides):
        cfg.iterations = None
    return cfg


def _hydra_compose(overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def groups() -> dict[str, list[str]]:
    """Each config group (a folder of ``configs/``) and its options
    (``_base/`` holds what options share, not options)."""
    return {d.name: sorted(p.stem for p in d.glob("*.yaml"))
            for d in sorted(CONFIG_DIR.iterdir())
            if d.is_dir() and not d.name.startswith("_") and any(d.glob("*.yaml"))}


def _closest(word: str, options) -> str | None:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return close[0] if close else None


def explain(overrides: list[str], exc: Exception) -> str:
    """One line saying which override is wrong and how to write it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    parser, options = OverridesParser.create(), groups()
    parsed = []
    for line in overrides:
        try:
            parsed.append(parser.parse_overrides([line])[0])
        except HydraException as bad:
            return f"cannot read {line!r}: {str(bad).splitlines()[0]} (overrides are key=value, lists key=[a,b])"
    for o in parsed:
        if o.is_sweep_override():
            key, value = o.key_or_group, o.input_line.split("=", 1)[1]
            if key in options:
                return f"{o.input_line!r}: omnigym train runs one config; pick one {key} per command"
            runs = " (one run per seed, one after another)" if key == "seed" else ""
            return f"{o.input_line!r}: lists are written in brackets, {key}=[{value}]{runs}; omnigym train runs no sweeps"
    chosen = [o.input_line for o in parsed if o.key_or_group in options and o.value() in options[o.key_or_group]]
    for o in parsed:
        if o.key_or_group in options and o.value() not in options[o.key_or_group]:
            close = _closest(o.value(), options[o.key_or_group])
            return (f"no option {o.value()!r} in group {o.key_or_group}; options: "
                    f"{', '.join(options[o.key_or_group])}" + (f" (did you mean {close!r}?)" if close else ""))
    base = _hydra_compose(chosen)
    for o in parsed:
        if o.is_add() or o.is_force_add() or o.key_or_group in options:
            continue
        problem = _unknown_key(base, o.key_or_group, o.input_line)
        if problem:
            return problem
    return str(exc).splitlines()[0]


def _unknown_key(cfg: DictConfig, dotted: str, line: str) -> str | None:
    """Why ``dotted`` is not a key of ``cfg`` (None when it is)."""
    node, path = cfg, []
    for part in dotted.split("."):
        if not isinstance(node, DictConfig):
            return f"{'.'.join(path)!r} is a value, not a group of keys, so {dotted!r} cannot be set"
        if part not in node:
            close = _closest(part, node.keys())
            hint = f" (did you mean {'.'.join([*path, close])!r}?)" if close else f"; to add a new key write +{line}"
            return f"unknown key {'.'.join([*path, part])!r}{hint}"
        node, path = node[part], [*path, part]
    return None


# -------------------------------------------------------------------- help
def _documented_keys() -> list[tuple[str, str, str]]:
    """(dotted key, default, comment) for each key of train.yaml, in order."""
    keys, parents = [], []
    for raw in (CONFIG_DIR / "train.yaml").read_text().splitlines():
        m = re.match(r"^(\s*)([A-Za-z_]\w*):\s*(.*?)\s*(?:#\s*(.*))?$", raw)
        if not m or raw.lstrip().startswith("#"):
            continue
        depth = len(m.group(1)) // 2
        parents = parents[:depth] + [m.group(2)]
        if parents[0] == "defaults" or not (m.group(3) or m.group(4)):
            continue
        keys.append((".".join(parents), m.group(3), m.group(4) or ""))
    return keys


def train_help() -> str:
    """The text of ``omnigym train --help``: groups and their options, the
    main keys with their defaults, ``--print-config`` and examples."""
    defaults = {k: v for item in OmegaConf.load(CONFIG_DIR / "train.yaml").defaults
                if isinstance(item, DictConfig) for k, v in item.items()}
    lines = ["usage: omnigym train [--print-config] [KEY=VALUE ...]", "",
             "Train with RLlib, or in a plain torch loop for algo=sft. The config is composed by hydra: pick one option of each group and set any key.",
             "", "groups (GROUP=OPTION):"]
    for group, options in groups().items():
        shown = [f"{o} (default)" if o == defaults.get(group) else o for o in options]
        lines.append(f"  {group:<11}{', '.join(shown)}")
    lines += ["", "main keys (KEY=VALUE; default, then what it does):"]
    for key, default, comment in _documented_keys():
        setting = f"{key}={default}" if default else f"{key}.*"
        lines.append(f"  {setting:<30}  {comment}".rstrip())
    lines += ["",
              "Every key of a group can be set too (algo.training.lr=1e-3, env.kwargs.mode=vector); a key the",
              "config does not have is added with a leading +, e.g. +env.kwargs.length=8. Lists are written",
              "in brackets: seed=[0,1,2].",
              "",
              "  --print-config   print the composed config (every key and its value) and exit",
              "", "examples:"]
    for what, command in EXAMPLES:
        lines += [f"  # {what}", f"  {command}"]
    return "\n".join(lines) + "\n"
