"""The ``omnigym`` command: list, info, play, eval, bench, demo.

Subcommands import only what they need, so ``omnigym list`` is quick.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


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


def _cmd_play(args) -> int:
    from omnigym import info_keys as K
    from omnigym.registry import make
    env = make(args.env_id, **({"mode": "text"} if args.env_id.startswith(("household/",)) else {}))
    seed = args.seed
    obs, info = env.reset(seed=seed)
    total = 0.0
    print("Type an action (free text), a number from the list, 'r' to restart, 'q' to quit.\n")
    while True:
        print(obs if isinstance(obs, str) else repr(obs))
        actions = info.get(K.ADMISSIBLE_ACTIONS) or []
        for i, a in enumerate(actions):
            print(f"  {i:>3}. {a}")
        try:
            line = input("> ").strip()
        except EOFError:
            print()
            return 0
        if line in ("q", "quit", "exit"):
            return 0
        if line in ("r", "reset"):
            seed = None if seed is None else seed + 1
            obs, info = env.reset(seed=seed)
            total = 0.0
            continue
        action = actions[int(line)] if line.isdigit() and int(line) < len(actions) else line
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        if info.get(K.INVALID_ACTION):
            print("(invalid action)")
        if terminated or truncated:
            print(obs if isinstance(obs, str) else repr(obs))
            print(f"\nEpisode over: success={info.get(K.SUCCESS)} return={total:.2f}. New episode.\n")
            seed = None if seed is None else seed + 1
            obs, info = env.reset(seed=seed)
            total = 0.0


def _parse_kwargs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--env-kwarg expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


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
    import importlib
    from omnigym.evaluation import evaluate_many
    for module in args.import_module or ():
        importlib.import_module(module)
    path, sections = evaluate_many(args.policy or ["random"], args.env_id, _panels(args.panel or ["train"]),
                                   args.out, group_size=args.group_size, env_kwargs=_parse_kwargs(args.env_kwarg),
                                   record=not args.no_record)
    _print_sections(sections)
    print(f"\nreport: {path}")
    return 0


def _print_sections(sections) -> None:
    for s in sections:
        m = s["summary"]
        lo, hi = m["success_ci"]
        print(f"{s['policy']:>10} | {s['panel']:<10} | success {100 * m['success_rate']:5.1f}% "
              f"[{100 * lo:.1f}, {100 * hi:.1f}] | return {m['return_mean']:.3f} | steps {m['length_mean']:.1f}"
              f" | n={m['episodes']}")


def _cmd_bench(args) -> int:
    from omnigym.bench import bench, format_bench
    if args.one_core and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    result = bench(args.env_id, args.mode, steps=args.steps, repeats=args.repeats)
    print(json.dumps(result, indent=2) if args.json else format_bench(result))
    return 0


def _cmd_train(args) -> int:
    from omnigym.rllib.train import compose, train
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
    path = run_demo(args.out, quick=args.quick, train=not args.no_train)
    print(f"\nreport: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="omnigym", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered environments")
    s.add_argument("--family", default=None)
    s.set_defaults(fn=_cmd_list)

    s = sub.add_parser("info", help="spaces, modes, info keys and tasks of an environment")
    s.add_argument("env_id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_info)

    s = sub.add_parser("play", help="play a text environment in the terminal")
    s.add_argument("env_id")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_cmd_play)

    s = sub.add_parser("eval", help="evaluate policies on seed panels and write a report")
    s.add_argument("env_id")
    s.add_argument("--policy", action="append",
                   help="random, expert, planner, module:Class or a checkpoint/run folder (repeatable)")
    s.add_argument("--panel", action="append", help="a suite panel (train, heldout) or a seed range 0..49")
    s.add_argument("--group-size", type=int, default=1, help="identical resets per seed (pass@k, pass^k)")
    s.add_argument("--env-kwarg", action="append", help="key=value passed to the env (JSON values)")
    s.add_argument("--out", default="reports/eval")
    s.add_argument("--no-record", action="store_true", help="do not save episodes as Parquet")
    s.add_argument("--import-module", action="append", help="a module that registers your own env ids")
    s.set_defaults(fn=_cmd_eval)

    s = sub.add_parser("bench", help="environment steps per second in each mode")
    s.add_argument("env_id")
    s.add_argument("--mode", action="append", help="modes to measure (default: all)")
    s.add_argument("--steps", type=int, default=20_000)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--all-cores", dest="one_core", action="store_false", help="do not pin to one core")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_cmd_bench)

    s = sub.add_parser("train", help="train with RLlib: hydra overrides such as algo=ppo env=cartpole iterations=20")
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
    try:
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
