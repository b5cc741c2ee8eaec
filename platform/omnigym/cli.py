"""The ``omnigym`` command: list, info, check, play, eval, rollout, export, bench, train, demo.

Subcommands import only what they need, so ``omnigym list`` is quick.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _import_user_modules(args) -> None:
    """``--import-module``: module names (from the current directory too) or ``.py`` files."""
    from omnigym.user_code import import_user_module
    for spec in getattr(args, "import_module", None) or ():
        import_user_module(spec)


def _cmd_list(args) -> int:
    from omnigym.registry import list_envs
    envs = list_envs(args.family)
    width = max((len(e.id) for e in envs), default=10)
    for e in envs:
        print(f"{e.id:<{width}}  [{', '.join(e.modes)}]  {e.doc}")
    print(f"\n{len(envs)} environments. `omnigym info ID` for spaces, modes and tasks.")
    return 0


def _cmd_info(args) -> int:
    from omnigym.registry import describe_env
    info = describe_env(args.env_id)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['id']}  (family: {info['family']})\n  {info['doc']}")
    print(f"  max episode steps: {info['max_episode_steps']}")
    for mode, m in info["modes"].items():
        print(f"  mode {mode}:\n    observation: {m['observation_space']}\n    action:      {m['action_space']}"
              f"\n    info keys:   {', '.join(m['info_keys'])}")
    for key in ("suite", "splits", "panels", "templates", "expert"):
        if key in info:
            print(f"  {key}: {info[key]}")
    print("  contract info keys:")
    for k, doc in info["contract_keys"].items():
        print(f"    {k:<19} {doc}")
    return 0


def _cmd_check(args) -> int:
    from omnigym.checker import check_id, format_table
    from omnigym.registry import list_envs
    if bool(args.all) == bool(args.env_id):
        raise ValueError("name one environment id or pass --all")
    ids = [e.id for e in list_envs(args.family)] if args.all else [args.env_id]
    results = []
    for env_id in ids:
        found = check_id(env_id, modes=args.mode, expert=not args.no_expert)
        results += found
        if args.all:
            print(f"{env_id}: {'ok' if all(r.ok for r in found) else 'FAIL'}", file=sys.stderr, flush=True)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1


def _cmd_play(args) -> int:
    from omnigym.play import play
    return play(args.env_id, args.seed)


def _parse_kwargs(pairs: list[str], flag: str = "--env-kwarg") -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"{flag} expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _policy_kwargs(args) -> dict:
    """Options for the agents (``--policy-kwarg``, ``--lora``), for resolve_agent."""
    kwargs = _parse_kwargs(args.policy_kwarg, "--policy-kwarg")
    if args.lora is not None:
        kwargs["lora"] = args.lora
    return kwargs


def _panels(values: list[str]) -> list:
    panels = []
    for v in values:
        if ".." in v:  # explicit seed range "0..49"
            lo, hi = v.split("..")
            panels.append(range(int(lo), int(hi) + 1))
        else:
            panels.append(v)
    return panels


def _cmd_eval(args) -> int:
    from omnigym.evaluation import evaluate_many
    if args.video < 0:
        raise ValueError(f"--video must be 0 or more, got {args.video}")
    agents = args.agent or ["random"]
    policy_kwargs = _policy_kwargs(args)
    if policy_kwargs:  # options of the policies that take them: random and expert take none
        from omnigym.agents import resolve_agent
        agents = [agent if agent in ("random", "expert") else resolve_agent(agent, args.env_id, **policy_kwargs)
                  for agent in agents]
    path, sections = evaluate_many(agents, args.env_id, _panels(args.panel or ["train"]),
                                   args.out, group_size=args.group_size, env_kwargs=_parse_kwargs(args.env_kwarg),
                                   record=not args.no_record, video=args.video)
    from omnigym.report import print_summary
    print_summary(sections, path)
    return 0


def _env_facts(env_id: str, env_kwargs: dict):
    """(env, fps) for dataset exports: the env gives the spaces Minari stores,
    its control rate the fps of LeRobot data and videos. Caller closes env."""
    from omnigym.registry import make
    env = make(env_id, **env_kwargs)
    # The control period (dt) is the truth when the env has one; render_fps
    # is the fallback (gymnasium's MuJoCo envs define it as 1/dt anyway).
    dt = getattr(env.unwrapped, "dt", None)
    fps = round(1.0 / dt) if dt else env.metadata.get("render_fps")
    return env, fps


def _fps(requested, env_fps) -> int:
    fps = requested if requested is not None else env_fps
    if not fps:
        raise ValueError("the env does not say its control rate; pass --fps")
    if fps <= 0 or int(fps) != fps:
        raise ValueError(f"--fps must be a positive whole number (LeRobot needs one), got {fps}")
    return int(fps)


def _export(episodes, args, env, env_fps, out_dir, lerobot: bool, minari: str | None) -> list[str]:
    """LeRobot and/or Minari exports of ``episodes``; returns what was written."""
    written = []
    if lerobot:
        from omnigym.datasets.lerobot import export_lerobot
        path = export_lerobot(episodes, out_dir, fps=_fps(args.fps, env_fps), progress=True)
        written.append(f"LeRobot dataset: {path}")
    if minari:
        from omnigym.datasets.minari_export import export_minari
        ds = export_minari(episodes, minari, root=args.minari_root, env=env,
                           algorithm_name=episodes[0].policy.get("name"))
        written.append(f"Minari dataset: {minari} ({ds.total_episodes} episodes) under "
                       f"{args.minari_root or os.environ.get('MINARI_DATASETS_PATH') or '~/.minari/datasets'}")
    return written


def _cmd_rollout(args) -> int:
    from pathlib import Path

    from omnigym.agents import resolve_agent
    from omnigym.episodes import write_episodes
    from omnigym.rollout import rollout
    if args.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {args.episodes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be at least 1, got {args.max_steps}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if args.lerobot and (out / "lerobot").exists():
        raise ValueError(f"{out / 'lerobot'} already exists; choose another --out")
    if args.minari:  # a bad or taken id fails now, not after the recording
        from omnigym.datasets.minari_export import check_new_dataset_id
        check_new_dataset_id(args.minari, args.minari_root)
    env_kwargs = _parse_kwargs(args.env_kwarg)
    env, env_fps = _env_facts(args.env_id, env_kwargs)  # fails early on a bad id or kwargs
    try:
        try:
            agent = resolve_agent(args.agent, args.env_id, **_policy_kwargs(args))
        except ImportError as exc:  # a mistyped 'module:Class'
            raise ValueError(f"agent {args.agent!r}: {exc}") from exc
        episodes = rollout(agent, args.env_id, range(args.seed, args.seed + args.episodes),
                           env_kwargs=env_kwargs, max_steps=args.max_steps,
                           desc=f"{args.agent} on {args.env_id}")
        for ep in episodes:  # so `omnigym export` can remake the same env later
            ep.metadata["env_kwargs"] = env_kwargs
        path = write_episodes(episodes, out / "episodes-000000.parquet")
        written = [f"episodes (omnigym Parquet): {path}"]
        written += _export(episodes, args, env, env_fps, out / "lerobot", args.lerobot, args.minari)
    finally:
        env.close()
    n = len(episodes)
    successes = sum(ep.success for ep in episodes)
    steps = sum(ep.length for ep in episodes)
    print(f"{n} episodes of {args.agent} on {args.env_id} (seeds {args.seed}..{args.seed + n - 1}): "
          f"success {successes}/{n} ({100 * successes / n:.1f}%), "
          f"mean return {sum(ep.total_return for ep in episodes) / n:.3f}, mean steps {steps / n:.1f}")
    for line in written:
        print(f"  {line}")
    return 0


def _cmd_export(args) -> int:
    from pathlib import Path

    from omnigym.episodes import read_episodes
    src = Path(args.episodes)
    if not src.exists():
        raise ValueError(f"{src}: no such file or directory")
    episodes = read_episodes(src)
    if not episodes:
        raise ValueError(f"{src}: no episodes (no finished *.parquet files)")
    if args.to == "minari":
        from omnigym.datasets.minari_export import check_new_dataset_id
        check_new_dataset_id(args.out, args.minari_root)
    env_ids = {ep.env_id for ep in episodes}
    if len(env_ids) > 1:
        raise ValueError(f"{src} mixes environments {sorted(env_ids)}; export one at a time")
    env, env_fps = None, None
    try:
        # Remake the recording env for its spaces and control rate; without it
        # (an id this install lacks) spaces are inferred and --fps is needed.
        env, env_fps = _env_facts(episodes[0].env_id, episodes[0].metadata.get("env_kwargs") or {})
    except Exception as exc:  # noqa: BLE001 - any failure just means "infer instead"
        print(f"note: cannot remake {episodes[0].env_id} ({exc}); inferring spaces from the data",
              file=sys.stderr)
    try:
        if args.to == "lerobot":
            written = _export(episodes, args, env, env_fps, Path(args.out), True, None)
        else:
            written = _export(episodes, args, env, env_fps, None, False, args.out)
    finally:
        if env is not None:
            env.close()
    print(f"{len(episodes)} episodes from {src}")
    for line in written:
        print(f"  {line}")
    return 0


def _cmd_bench(args) -> int:
    from omnigym.bench import bench, format_bench, pin_to_one_core
    if args.one_core:
        pin_to_one_core()
    result = bench(args.env_id, args.mode, steps=args.steps, repeats=args.repeats)
    print(json.dumps(result, indent=2) if args.json else format_bench(result))
    return 0


def _cmd_train(args) -> int:
    if args.help:
        from omnigym.rllib.train_config import train_help
        print(train_help())
        return 0
    from omnigym.rllib.train import train
    from omnigym.rllib.train_config import compose
    cfg = compose(args.overrides)
    if args.print_config:
        from omegaconf import OmegaConf
        print(OmegaConf.to_yaml(cfg))
        return 0
    path = train(cfg)
    print(f"\nreport: {path}")
    return 0


def _cmd_demo(args) -> int:
    from omnigym.demo import run_demo
    from omnigym.report import print_summary
    path = run_demo(args.out, quick=args.quick, train=not args.no_train)
    print_summary(json.loads((path.parent / "summary.json").read_text())["sections"], path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omnigym", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show the Ray and RLlib log lines that are hidden by default")
    sub = p.add_subparsers(dest="command", required=True)
    # Every command that resolves an env id can first import the user's own registrations.
    user_modules = argparse.ArgumentParser(add_help=False)
    user_modules.add_argument("--import-module", action="append", metavar="MODULE_OR_FILE",
                              help="a module (from the current directory too) or a .py file that registers your own ids")

    s = sub.add_parser("list", parents=[user_modules], help="list registered environments")
    s.add_argument("--family", default=None)
    s.set_defaults(fn=_cmd_list)

    s = sub.add_parser("info", parents=[user_modules], help="spaces, modes, info keys and tasks of an environment")
    s.add_argument("env_id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_info)

    s = sub.add_parser("check", parents=[user_modules], help="check ids against gymnasium's checker and every omnigym convention")
    s.add_argument("env_id", nargs="?")
    s.add_argument("--all", action="store_true", help="every registered id")
    s.add_argument("--family", default=None, help="with --all: only this family")
    s.add_argument("--mode", action="append", help="modes to check (default: every mode of the id)")
    s.add_argument("--no-expert", action="store_true", help="skip the expert-solves-an-episode check")
    s.set_defaults(fn=_cmd_check)

    s = sub.add_parser("play", parents=[user_modules], help="play a text environment in the terminal")
    s.add_argument("env_id")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_cmd_play)

    s = sub.add_parser("eval", parents=[user_modules], help="evaluate agents on seed panels and write a report")
    s.add_argument("env_id")
    s.add_argument("--agent", "--policy", dest="agent", action="append",
                   help="random, expert, lm, lm:PATH, module:Class or a checkpoint/run folder (repeatable)")
    s.add_argument("--panel", action="append",
                   help="a named panel (train, test, heldout: see omnigym info ID) or a seed range 0..49")
    s.add_argument("--policy-kwarg", action="append",
                   help="key=value option of the agents (JSON values), e.g. mode=score for --policy lm (repeatable)")
    s.add_argument("--lora", metavar="PATH", help="a LoRA adapter folder for an lm policy")
    s.add_argument("--group-size", type=int, default=1, help="identical resets per seed (pass@k, pass^k)")
    s.add_argument("--env-kwarg", action="append", help="key=value passed to the env (JSON values)")
    s.add_argument("--out", default="reports/eval")
    s.add_argument("--no-record", action="store_true", help="do not save episodes as Parquet")
    s.add_argument("--video", type=int, default=0, metavar="K",
                   help="film the first K episodes of each agent and panel (MP4 + GIF under OUT/videos/)")
    s.set_defaults(fn=_cmd_eval)

    s = sub.add_parser("rollout", parents=[user_modules], help="record episodes of an agent as Parquet, optionally LeRobot / Minari")
    s.add_argument("env_id")
    s.add_argument("--agent", "--policy", dest="agent", default="random",
                   help="random, expert, lm, lm:PATH, module:Class or a checkpoint/run folder")
    s.add_argument("--policy-kwarg", action="append",
                   help="key=value option of the agents (JSON values), e.g. mode=score for --policy lm (repeatable)")
    s.add_argument("--lora", metavar="PATH", help="a LoRA adapter folder for an lm policy")
    s.add_argument("--episodes", type=int, required=True, help="number of episodes (seeds SEED..SEED+N-1)")
    s.add_argument("--out", required=True, help="folder for episodes-000000.parquet (and lerobot/)")
    s.add_argument("--seed", type=int, default=0, help="first seed")
    s.add_argument("--env-kwarg", action="append", help="key=value passed to the env (JSON values)")
    s.add_argument("--max-steps", type=int, default=None, help="truncate episodes after this many steps")
    s.add_argument("--lerobot", action="store_true", help="also write a LeRobot dataset to OUT/lerobot")
    s.add_argument("--minari", metavar="NAME", help="also create the Minari dataset NAME (namespace/name-v0)")
    s.add_argument("--minari-root", help="Minari datasets folder (default $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    s.add_argument("--fps", type=int, default=None, help="dataset frame rate (default: the env's control rate)")
    s.set_defaults(fn=_cmd_rollout)

    s = sub.add_parser("export", help="convert recorded episodes (Parquet) to LeRobot or Minari")
    s.add_argument("episodes", help="an episodes Parquet file or a folder of them")
    s.add_argument("--to", choices=("lerobot", "minari"), required=True)
    s.add_argument("--out", required=True, help="LeRobot: a new folder; Minari: a dataset id namespace/name-v0")
    s.add_argument("--minari-root", help="Minari datasets folder (default $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    s.add_argument("--fps", type=int, default=None, help="dataset frame rate (default: the env's control rate)")
    s.set_defaults(fn=_cmd_export)

    s = sub.add_parser("bench", help="environment steps per second in each mode")
    s.add_argument("env_id")
    s.add_argument("--mode", action="append", help="modes to measure (default: all)")
    s.add_argument("--steps", type=int, default=20_000)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--all-cores", dest="one_core", action="store_false", help="do not pin to one core")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_bench)

    # Its own --help: the groups, options and keys come from the config files (train_help).
    s = sub.add_parser("train", add_help=False,
                       help="train with RLlib: hydra overrides such as algo=ppo env=cartpole iterations=20")
    s.add_argument("-h", "--help", action="store_true", help="groups, options, keys and examples")
    s.add_argument("overrides", nargs="*", help="hydra overrides (key=value, group=option)")
    s.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    s.set_defaults(fn=_cmd_train)

    s = sub.add_parser("demo", help="the default job: evaluate baselines on the household suite, write a report")
    s.add_argument("--out", default="reports/demo")
    s.add_argument("--quick", action="store_true", help="small panels (a smoke run)")
    s.add_argument("--no-train", action="store_true", help="skip the RLlib training part")
    s.set_defaults(fn=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from omnigym.quiet import configure
    configure(args.verbose)
    try:
        _import_user_modules(args)
        return args.fn(args)
    except (ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"omnigym {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except Exception as exc:
        import gymnasium
        if isinstance(exc, gymnasium.error.Error):
            print(f"omnigym {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
