"""``omnigym train``: RLlib training of any registered environment.

One run folder holds everything: the resolved ``config.yaml``,
``metrics.csv`` and TensorBoard events (one row per iteration, continuous
across resumes), ``eval.csv`` (success with Wilson intervals from the core
harness), ``checkpoints/iter_NNNNN`` (written to a temporary folder and
renamed, so a kill never leaves a checkpoint that looks complete) and the
final ``report/`` (trained vs baselines, learning curves). ``seed=[0,1,2]``
trains one run per seed and adds a report across them (``omnigym.rllib.seeds``).
Algorithms whose config says ``trainer: offline`` (SFT) train in the plain
torch loop of ``omnigym.offline_train`` instead, into the same run folder.
"""
from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from omnigym.rllib.inference import trained_module

METRIC_FIELDS = ["iteration", "env_steps", "episode_return_mean", "episode_len_mean", "episodes",
                 "env_steps_per_s", "iteration_s", "sample_s", "learn_s", "wall_s", "sampled_success"]
EVAL_FIELDS = ["iteration", "env_steps", "episodes", "success_rate", "success_lo", "success_hi", "return_mean",
               "return_lo", "return_hi"]


# ------------------------------------------------------------------ files
def _write_atomic(path: Path, text: str) -> None:
    from omnigym.episodes import atomic_write_text
    atomic_write_text(path, text)


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _append_csv(path: Path, fields: list[str], row: dict) -> None:
    new = not path.exists()
    if not new:   # a file written before a field was added keeps its columns
        with path.open() as f:
            fields = next(csv.reader(f), None) or fields
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def _truncate_csv(path: Path, fields: list[str], last_iteration: int) -> None:
    """Drop rows after the checkpoint we resume from (that work was lost)."""
    rows = [r for r in _read_csv(path) if int(r["iteration"]) <= last_iteration]
    if path.exists():
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = sorted(p for p in (run_dir / "checkpoints").glob("iter_*") if p.is_dir())
    return ckpts[-1] if ckpts else None


def save_checkpoint(algo, run_dir: Path, iteration: int, keep: int) -> Path:
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"iter_{iteration:05d}"
    tmp = ckpt_dir / f".tmp-iter_{iteration:05d}"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_atomic(ckpt_dir / "latest", final.name)
    for old in sorted(p for p in ckpt_dir.glob("iter_*") if p.is_dir())[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


# ---------------------------------------------------------------- metrics
def _find(result: dict, key: str):
    """A metric wherever RLlib nests it (the layout moved between releases)."""
    if key in result and not isinstance(result[key], dict):
        return result[key]
    for value in result.values():
        if isinstance(value, dict):
            found = _find(value, key)
            if found is not None:
                return found
    return None


def metrics_row(result: dict, iteration: int, iteration_s: float, wall_s: float, prev_steps: float) -> dict:
    env_runners = result.get("env_runners", {})
    steps = _find(env_runners, "num_env_steps_sampled_lifetime") or _find(result, "num_env_steps_sampled_lifetime") or 0
    return {
        "iteration": iteration, "env_steps": int(steps),
        "episode_return_mean": env_runners.get("episode_return_mean", float("nan")),
        "episode_len_mean": env_runners.get("episode_len_mean", float("nan")),
        "episodes": env_runners.get("num_episodes_lifetime", env_runners.get("num_episodes", 0)),
        "env_steps_per_s": (steps - prev_steps) / iteration_s if iteration_s > 0 else 0.0,
        "iteration_s": iteration_s, "wall_s": wall_s,
        # Where the iteration went: sampling in the env runners vs the learner update.
        "sample_s": _find(result.get("timers", {}), "env_runner_sampling_timer") or 0.0,
        "learn_s": _find(result.get("timers", {}), "learner_update_timer") or 0.0,
        # This iteration's sampled episodes that succeeded, where the algorithm reports it (group RL):
        # RLlib's episode_return_mean is a running mean over a window of past episodes.
        "sampled_success": result.get("group_rl", {}).get("success_rate", ""),
    }


def evaluation_panel(cfg) -> tuple:
    """(panel, seeds limit, env kwargs) for the core harness: a named panel of
    the env cut to ``episodes`` seeds, or the explicit seed range when the
    env has no panel of that name (or ``evaluation.panel`` is null)."""
    from omnigym.registry import panels_of
    from omnigym.rllib.algo_config import to_dict
    ev, env_kwargs = cfg.evaluation, to_dict(cfg.env.kwargs)
    limit = int(ev.episodes)
    if ev.panel and ev.panel in panels_of(cfg.env.id):
        return str(ev.panel), limit, env_kwargs
    first, last = int(ev.seeds[0]), int(ev.seeds[1])
    return range(first, last + 1)[:limit], None, env_kwargs


def evaluate_agent(agent, cfg) -> dict:
    """One report section for ``agent`` on the run's evaluation panel (the same seeds for every agent)."""
    from omnigym.evaluation import evaluate
    panel, limit, env_kwargs = evaluation_panel(cfg)
    return evaluate(agent, cfg.env.id, panel, env_kwargs=env_kwargs, progress=bool(cfg.get("progress", True)),
                    seeds_limit=limit)


def evaluate_module(module, cfg, name: str) -> dict:
    from omnigym.rllib.inference import module_agent
    return evaluate_agent(module_agent(module, name=name, greedy=bool(cfg.evaluation.get("greedy", True))), cfg)


def with_policy_env_kwargs(cfg: DictConfig) -> DictConfig:
    """``policy.env_kwargs`` set over ``env.kwargs``: what the policy needs of
    every env (an LM reads text: ``mode: text``); the run's config.yaml keeps
    the result, so evaluating the run makes the same env."""
    import copy

    from omnigym.rllib.algo_config import to_dict
    extra = cfg.policy.get("env_kwargs")
    if extra:
        cfg = copy.deepcopy(cfg)
        cfg.env.kwargs = {**to_dict(cfg.env.kwargs), **to_dict(extra)}
    return cfg


# -------------------------------------------------------------------- run
def refuse_to_overwrite(cfg: DictConfig) -> None:
    """A new run (no resume) never writes into a folder that holds checkpoints."""
    run_dir = Path(cfg.out_dir).resolve()
    if not cfg.resume and latest_checkpoint(run_dir) is not None:
        raise ValueError(f"{run_dir} already holds checkpoints; pass resume=true to continue it "
                         f"or run_name=... for a new run")


def prepare_run(cfg: DictConfig) -> tuple[DictConfig, Path, Path | None]:
    """Resolve the run folder; on resume, reload the saved config and set the
    iterations to continue to (``iterations``, or the saved value when None)."""
    run_dir = Path(cfg.out_dir).resolve()  # RLlib's checkpointing wants absolute paths
    ckpt = latest_checkpoint(run_dir)
    if cfg.resume:
        saved = run_dir / "config.yaml"
        if not saved.exists():
            raise ValueError(f"resume=true but {run_dir} has no config.yaml; start the run without resume first")
        requested = cfg.iterations
        cfg = OmegaConf.load(saved)
        done = int(ckpt.name.removeprefix("iter_")) if ckpt is not None else 0
        target = int(cfg.iterations if requested is None else requested)
        if target < done:
            raise ValueError(f"{run_dir} has already done {done} iterations, more than iterations={target}; "
                             f"pass iterations={done} or more to continue it")
        if target != int(cfg.iterations):  # the saved config says how far the run goes
            cfg.iterations = target
            _write_atomic(saved, OmegaConf.to_yaml(cfg))
        cfg.resume = True
        return cfg, run_dir, ckpt
    refuse_to_overwrite(cfg)
    if cfg.iterations is None:
        raise ValueError("iterations=null: give the number of iterations to train, e.g. iterations=20")
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    # Saved as files or installed names, so the run resumes and evaluates from any directory.
    from omnigym.user_code import portable_spec
    resolved.env.modules = [portable_spec(m) for m in resolved.env.get("modules") or ()]
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(resolved))
    return resolved, run_dir, None


def init_ray(cfg) -> bool:
    """Start or join Ray; returns True when this process started it."""
    import ray
    if ray.is_initialized():
        return False
    res = cfg.resources
    env_vars = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    # address "local" always starts a fresh instance: a plain ray.init() would
    # join whatever cluster `ray start` last left on this machine.
    ray.init(address=res.address or "local", num_cpus=None if res.address else res.num_cpus,
             include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env_vars} if env_vars else None)
    return True


def build_algorithm(cfg, env, run_dir: Path, ckpt: Path | None):
    """The algorithm of the run for its resolved ``env``: built by its
    ``algo._target_``, or back from the checkpoint to resume."""
    from omnigym.rllib import envs
    from omnigym.rllib.algo_config import build_algo_config
    if ckpt is not None:
        from ray.rllib.algorithms.algorithm import Algorithm
        # The checkpoint names the env; its creator must be registered again in this Ray session.
        envs.register(env, int(cfg.resources.num_envs_per_env_runner))
        return Algorithm.from_checkpoint(str(ckpt))
    return build_algo_config(cfg, env, run_dir).build_algo()


def tensorboard_command(run_dir: Path) -> str:
    return f"tensorboard --logdir {run_dir / 'tb'}"


def train(cfg: DictConfig) -> Path:
    """Train (or resume) a run; returns the path of its final report. With a
    list of seeds, one run per seed, one after another; returns the path of
    the report across them."""
    from omnigym.rllib import seeds as seed_runs
    run_one = run_function(cfg)
    seeds = seed_runs.seed_list(cfg)
    if seeds is None:
        return run_one(cfg)
    configs = seed_runs.seed_configs(cfg, seeds)
    for one in configs:  # before the first seed trains, not after
        refuse_to_overwrite(one)
    runs = []
    for one in configs:
        run_one(one)
        runs.append((int(one.seed), Path(one.out_dir).resolve()))
    first_seed, first_run = runs[0]
    report = seed_runs.write_seed_report(runs, seed_runs.aggregate_dir(first_run, first_seed),
                                         f"{cfg.algo.name} on {cfg.env.id}")
    print(f"\nall {len(runs)} seeds: {report.parent}\nlearning curves: {seed_runs.tensorboard_command(runs)}")
    return report


def run_function(cfg: DictConfig):
    """What trains one run: RLlib (``train_run``), or the plain-torch loop of
    ``omnigym.offline_train`` for algorithms whose config says ``trainer: offline``
    (a resumed run's saved config says which)."""
    saved = Path(cfg.out_dir) / "config.yaml"
    algo = OmegaConf.load(saved).algo if cfg.resume and saved.is_file() else cfg.algo
    if algo.get("trainer", "rllib") == "offline":
        from omnigym.offline_train import train_run as offline_train_run
        return offline_train_run
    return train_run


def train_run(cfg: DictConfig) -> Path:
    """Train (or resume) one run; returns the path of its final report."""
    from omnigym.rllib.env_spec import train_env
    if not cfg.resume:
        cfg = with_policy_env_kwargs(cfg)
    cfg, run_dir, ckpt = prepare_run(cfg)
    import torch
    torch.set_num_threads(int(cfg.resources.get("torch_threads", 1)))
    started_ray = init_ray(cfg)
    try:
        # The one time the env is made to describe it; after Ray starts, because a
        # user's env may use Ray in its constructor (ray.get_runtime_context()
        # would otherwise start or join some other Ray instance here).
        env = train_env(cfg)
        algo = build_algorithm(cfg, env, run_dir, ckpt)
        start = int(algo.iteration)
        if ckpt is not None:
            print(f"resumed {run_dir} from {ckpt.name} (iteration {start}); "
                  f"work after that checkpoint was lost and is redone")
        for name, fields in (("metrics.csv", METRIC_FIELDS), ("eval.csv", EVAL_FIELDS)):
            _truncate_csv(run_dir / name, fields, start)
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)
        rows = _read_csv(run_dir / "metrics.csv")
        prev_steps = float(rows[-1]["env_steps"]) if rows else 0.0
        wall0 = time.perf_counter() - (float(rows[-1]["wall_s"]) if rows else 0.0)
        bar = tqdm(range(start, int(cfg.iterations)), initial=start, total=int(cfg.iterations),
                   desc=f"train {cfg.algo.name} on {cfg.env.id}", disable=not cfg.progress, unit="it")
        row = None
        for i in bar:
            t0 = time.perf_counter()
            result = algo.train()
            it = i + 1
            row = metrics_row(result, it, time.perf_counter() - t0, time.perf_counter() - wall0, prev_steps)
            prev_steps = row["env_steps"]
            _append_csv(run_dir / "metrics.csv", METRIC_FIELDS, row)
            for key in METRIC_FIELDS[1:]:
                if row[key] != "":   # columns an algorithm does not report stay empty
                    writer.add_scalar(f"train/{key}", float(row[key]), it)
            bar.set_postfix(ret=f"{row['episode_return_mean']:.3g}", sps=f"{row['env_steps_per_s']:.0f}")
            last = it == int(cfg.iterations)
            if last or (cfg.checkpoint_every and it % int(cfg.checkpoint_every) == 0):
                save_checkpoint(algo, run_dir, it, int(cfg.keep_checkpoints))
            if last or (cfg.evaluation.every and it % int(cfg.evaluation.every) == 0):
                section = evaluate_module(trained_module(algo), cfg, cfg.algo.name)
                write_evaluation(run_dir, writer, it, row["env_steps"], section)
        writer.close()
        report = final_report(algo, cfg, run_dir)
        algo.stop()
        print(f"run: {run_dir}\nlearning curves: {tensorboard_command(run_dir)}")
        return report
    finally:
        if started_ray:
            import gc
            import ray
            gc.collect()  # release Ray Data iterators (BC) while Ray is still up
            ray.shutdown()


def write_evaluation(run_dir: Path, writer, iteration: int, env_steps, section: dict) -> None:
    """One evaluation of the trained agent: a row of ``eval.csv`` and its TensorBoard scalars."""
    s = section["summary"]
    _append_csv(run_dir / "eval.csv", EVAL_FIELDS, {
        "iteration": iteration, "env_steps": env_steps, "episodes": s["episodes"],
        "success_rate": s["success_rate"], "success_lo": s["success_ci"][0],
        "success_hi": s["success_ci"][1], "return_mean": s["return_mean"],
        "return_lo": (s.get("return_ci") or (None, None))[0],
        "return_hi": (s.get("return_ci") or (None, None))[1]})
    writer.add_scalar("eval/success_rate", s["success_rate"], iteration)
    writer.add_scalar("eval/return_mean", s["return_mean"] or 0.0, iteration)


def final_report(algo, cfg, run_dir: Path) -> Path:
    """Trained policy vs baselines on the same seeds, plus learning curves."""
    return write_final_report(evaluate_module(trained_module(algo), cfg, cfg.algo.name), cfg, run_dir)


def write_final_report(trained: dict, cfg, run_dir: Path, *, done: str | None = None, figures=None) -> Path:
    """The report of a run whose trained agent scored ``trained`` (a harness
    section): baselines on the same seeds, learning curves and notes.
    ``done``: what the run did (default: its iterations and env steps);
    ``figures(metrics, evals, out, title, agent=, baselines=)`` draws the curves
    (default: ``plot_training_curves``, RLlib's return curves)."""
    from omnigym.registry import entry
    from omnigym.report import plot_training_curves, write_report
    sections = [trained]
    for baseline in cfg.evaluation.baselines or ():
        if baseline == "expert" and not entry(cfg.env.id).expert:
            continue
        sections.append(evaluate_agent(baseline, cfg))
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    metrics = _read_csv(run_dir / "metrics.csv")
    # learning_curve.png and eval_curve.png, with the baselines as reference lines.
    (figures or plot_training_curves)(metrics, _read_csv(run_dir / "eval.csv"), out,
                                      f"{cfg.algo.name} on {cfg.env.id}", agent=cfg.algo.name, baselines=sections[1:])
    last = metrics[-1] if metrics else {}
    done = done or f"{last.get('iteration', 0)} iterations, {last.get('env_steps', 0)} env steps"
    notes = [
        f"Run: `{run_dir}`; config: `config.yaml`; algorithm {cfg.algo.name}, policy {cfg.policy.name}, "
        f"resources {cfg.resources.name}; {done}.",
        f"Evaluation: {'greedy' if cfg.evaluation.get('greedy', True) else 'sampled'} actions of the trained "
        f"policy on {sections[0]['summary']['episodes']} seeds of the {sections[0]['panel']} panel; "
        "baselines on the same seeds.",
        "![learning curve](learning_curve.png)",
        "![evaluation curve](eval_curve.png)",
        f"Every iteration's metrics in TensorBoard: `{tensorboard_command(run_dir)}`.",
    ]
    return write_report(sections, out, f"omnigym train: {cfg.algo.name} on {cfg.env.id}", notes=notes)
