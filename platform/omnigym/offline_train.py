"""Offline training runs: a plain torch loop for learners that learn from
recorded data (SFT of an LM on expert episodes, imitation policies), kept
and resumed exactly like RLlib runs (``omnigym.rllib.train``).

An algorithm config with ``trainer: offline`` names its learner class in
``_target_``. The loop owns what every such learner shares: the optimizer
(AdamW with linear warmup and gradient clipping, ``algo.training``), the run
folder (``config.yaml``, ``metrics.csv``, ``eval.csv``, ``tb/``,
``checkpoints/iter_N``, ``report/``: the same files and the same functions
as RLlib runs), seed lists, the progress bar, evaluation through the core
harness, and resume: each checkpoint holds the learner's weights plus
``trainer_state.pt`` (optimizer, learning-rate schedule, RNG states, step),
so ``resume=true`` continues as if the run had never stopped.

A learner is built as ``Learner(cfg, run_dir, checkpoint)`` (``checkpoint``:
the folder to take its weights from when a run resumes, else None) and has:

- ``parameters()``: the tensors it trains;
- ``loss(step) -> (loss, stats)``: the loss of optimizer step ``step``'s
  batch, a batch fixed by the step alone, so a resumed run sees the batches
  the stopped one would have; ``stats`` holds floats: ``env_steps`` (the
  environment steps of recorded data in the batch) and its ``metric_fields``;
- ``metric_fields``: the stats averaged into each ``metrics.csv`` row;
- ``batches_per_epoch``: batches in one pass over its data;
- ``save(folder)``: its weights into a checkpoint folder;
- ``agent(name)``: an agent acting with the current weights, for evaluation;
- ``describe()``: what it learns from, in words, for the report;

and the class methods ``check(cfg)`` (config mistakes, as one-line
ValueErrors before the run folder is made) and ``load_agent(checkpoint,
config, **kwargs)`` (the agent of a saved checkpoint, for ``omnigym eval
--policy RUN``). ``policy.env_kwargs`` (what a policy needs of every env:
an LM's ``mode: text``) is set over ``env.kwargs`` before the run's
config.yaml is written, so the run's agent is evaluated on the same env.

``metrics.csv`` has one row per iteration (``algo.training.steps_per_iteration``
optimizer steps): the mean loss, gradient norm and seconds per optimizer step
(``step_s``), the learning rate, the epoch, and ``env_steps``: environment
steps of recorded data trained on so far (an example counts again in every
epoch), the experience consumed, as an RLlib run's env steps count the
experience it sampled. ``episode_return_mean`` stays empty: no episode is
played while learning offline (the evaluations are in ``eval.csv``).
"""
from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from omnigym.rllib.train import (
    EVAL_FIELDS, _append_csv, _read_csv, _truncate_csv, evaluate_agent, prepare_run, save_checkpoint,
    tensorboard_command, with_policy_env_kwargs, write_evaluation, write_final_report,
)

TRAINER_STATE = "trainer_state.pt"   # in every checkpoint of an offline run: what marks one
METRIC_FIELDS = ["iteration", "step", "epoch", "env_steps", "loss", "grad_norm", "lr", "step_s", "iteration_s",
                 "wall_s", "episode_return_mean"]


# ------------------------------------------------------------------ state
def rng_state() -> dict:
    import torch
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import torch
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def rng_kept():
    """Whatever runs inside (an evaluation) leaves the training RNGs as they were,
    so a run evaluated more or less often still trains the same."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


class _Checkpoint:
    """The learner's weights and the loop's state, as ``save_checkpoint`` writes them."""

    def __init__(self, learner, state: dict):
        self.learner, self.state = learner, state

    def save_to_path(self, path: str) -> None:
        import torch
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.learner.save(folder)
        torch.save(self.state, folder / TRAINER_STATE)


def load_trainer_state(checkpoint: Path) -> dict:
    import torch
    # Written by this module (RNG states hold numpy arrays, which weights_only refuses).
    return torch.load(checkpoint / TRAINER_STATE, map_location="cpu", weights_only=False)


# -------------------------------------------------------------- optimizer
def make_optimizer(parameters: list, training) -> tuple:
    """AdamW (weight decay on matrices only: norms and biases never decay) and
    its schedule: linear warmup over ``warmup_steps``, then constant."""
    import torch
    decay = [p for p in parameters if p.ndim >= 2]
    rest = [p for p in parameters if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": float(training.weight_decay)},
              {"params": rest, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=float(training.lr))
    warmup = int(training.warmup_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    return optimizer, schedule


def check_training(training) -> None:
    """One-line errors for the loop's own keys of ``algo.training``."""
    for key, low in (("steps_per_iteration", 1), ("warmup_steps", 0), ("grad_clip", 0), ("weight_decay", 0)):
        if training.get(key) is None or training[key] < low:
            raise ValueError(f"algo.training.{key}={training.get(key)}: give {low} or more")
    if training.get("lr") is None or training.lr <= 0:
        raise ValueError(f"algo.training.lr={training.get('lr')}: give a learning rate above 0")


# -------------------------------------------------------------------- run
def learner_class(algo):
    from hydra.utils import get_method
    return get_method(algo["_target_"])


def train_run(cfg: DictConfig) -> Path:
    """Train (or resume) one offline run; returns the path of its final report."""
    import torch
    from omnigym.user_code import import_user_module
    if not cfg.resume:
        cfg = with_policy_env_kwargs(cfg)
        check_training(cfg.algo.training)
        for module in cfg.env.get("modules") or ():   # a user's env must be registered before it is checked
            import_user_module(module)
        getattr(learner_class(cfg.algo), "check", lambda _: None)(cfg)
    cfg, run_dir, ckpt = prepare_run(cfg)
    for module in cfg.env.get("modules") or ():
        import_user_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(cfg.resources.get("torch_threads", 1)))
    try:
        return _train(cfg, run_dir, ckpt)
    finally:
        torch.set_num_threads(threads)   # a caller in this process gets its threads back


def _train(cfg: DictConfig, run_dir: Path, ckpt: Path | None) -> Path:
    import torch
    from torch.utils.tensorboard import SummaryWriter
    torch.manual_seed(int(cfg.seed))
    np.random.seed(int(cfg.seed))
    random.seed(int(cfg.seed))
    learner = learner_class(cfg.algo)(cfg, run_dir, ckpt)
    parameters = [p for p in learner.parameters() if p.requires_grad]
    training = cfg.algo.training
    optimizer, schedule = make_optimizer(parameters, training)
    start, step, env_steps = 0, 0, 0
    if ckpt is not None:
        state = load_trainer_state(ckpt)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        set_rng_state(state["rng"])   # after the learner is built: building it may draw (fresh adapters)
        start, step, env_steps = state["iteration"], state["step"], state["env_steps"]
        print(f"resumed {run_dir} from {ckpt.name} (iteration {start}); "
              f"work after that checkpoint was lost and is redone")
    for name, fields in (("metrics.csv", METRIC_FIELDS + list(learner.metric_fields)), ("eval.csv", EVAL_FIELDS)):
        _truncate_csv(run_dir / name, fields, start)
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start + 1 if start else None)
    rows = _read_csv(run_dir / "metrics.csv")
    wall0 = time.perf_counter() - (float(rows[-1]["wall_s"]) if rows else 0.0)
    per_iteration, iterations = int(training.steps_per_iteration), int(cfg.iterations)
    clip = float(training.grad_clip) or math.inf
    bar = tqdm(total=iterations * per_iteration, initial=start * per_iteration, unit="step",
               desc=f"train {cfg.algo.name} on {cfg.env.id}", disable=not cfg.progress)
    section = None
    for it in range(start + 1, iterations + 1):
        t0 = time.perf_counter()
        sums = {k: 0.0 for k in ("loss", "grad_norm", "step_s", *learner.metric_fields)}
        for _ in range(per_iteration):
            values = optimizer_step(learner, step, optimizer, schedule, parameters, clip)
            step += 1
            env_steps += int(values.pop("env_steps", 0))
            for key in sums:
                sums[key] += values[key]
            bar.update(1)
            bar.set_postfix(loss=f"{values['loss']:.4g}", s_per_step=f"{values['step_s']:.2g}")
        row = {"iteration": it, "step": step, "epoch": step / learner.batches_per_epoch, "env_steps": env_steps,
               "lr": schedule.get_last_lr()[0], "iteration_s": time.perf_counter() - t0,
               "wall_s": time.perf_counter() - wall0, "episode_return_mean": "",
               **{k: v / per_iteration for k, v in sums.items()}}
        _append_csv(run_dir / "metrics.csv", METRIC_FIELDS + list(learner.metric_fields), row)
        for key, value in row.items():
            if key not in ("iteration", "episode_return_mean"):
                writer.add_scalar(f"train/{key}", float(value), it)
        last = it == iterations
        if last or (cfg.checkpoint_every and it % int(cfg.checkpoint_every) == 0):
            state = {"iteration": it, "step": step, "env_steps": env_steps, "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "rng": rng_state()}
            save_checkpoint(_Checkpoint(learner, state), run_dir, it, int(cfg.keep_checkpoints))
        if last or (cfg.evaluation.every and it % int(cfg.evaluation.every) == 0):
            section = evaluate_learner(learner, cfg)
            write_evaluation(run_dir, writer, it, env_steps, section)
    bar.close()
    writer.close()
    epochs = step / learner.batches_per_epoch
    done = f"{iterations} iterations, {step} optimizer steps ({epochs:.3g} epochs) on {learner.describe()}"
    report = write_final_report(section or evaluate_learner(learner, cfg), cfg, run_dir, done=done,
                                figures=plot_offline_curves)
    print(f"run: {run_dir}\nlearning curves: {tensorboard_command(run_dir)}")
    return report


def optimizer_step(learner, step: int, optimizer, schedule, parameters: list, clip: float) -> dict:
    """One optimizer step on the learner's batch for ``step``; returns the
    loss, gradient norm (before clipping), seconds taken and the learner's stats."""
    import torch
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss, stats = learner.loss(step)
    if not torch.isfinite(loss):
        raise ValueError(f"the loss is {loss.item()} at optimizer step {step}; lower algo.training.lr "
                         f"(now {schedule.base_lrs[0]})")
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(parameters, clip)
    optimizer.step()
    schedule.step()
    return {**{k: float(v) for k, v in stats.items()}, "loss": loss.item(), "grad_norm": float(norm),
            "step_s": time.perf_counter() - start}


def evaluate_learner(learner, cfg) -> dict:
    """The learner's agent on the run's evaluation panel (train.py's harness call)."""
    with rng_kept():
        return evaluate_agent(learner.agent(cfg.algo.name), cfg)


def plot_offline_curves(metrics: list[dict], evals: list[dict], out: Path, title: str, agent: str = "trained",
                        baselines=()) -> list[Path]:
    """``learning_curve.png``: the training loss by optimizer step;
    ``eval_curve.png``: the RLlib runs' evaluation figure, by environment
    steps of recorded data trained on."""
    from omnigym.plots import curves_figure, save_figure, training_figures
    losses = [(float(r["step"]), float(r["loss"])) for r in metrics]
    loss = curves_figure({agent: losses}, "optimizer steps", "training loss", f"{title}: learning curve")
    evaluation = training_figures([], evals, title, agent, baselines)["eval_curve.png"]
    return [save_figure(loss, Path(out) / "learning_curve.png"), save_figure(evaluation, Path(out) / "eval_curve.png")]


# ------------------------------------------------------------ run agents
def offline_checkpoint(path) -> Path | None:
    """The checkpoint an offline run folder (its latest) or checkpoint folder
    names; None when ``path`` is neither."""
    if not isinstance(path, (str, Path)):
        return None
    path = Path(path).expanduser().resolve()
    if (path / TRAINER_STATE).is_file():
        return path
    latest = path / "checkpoints" / "latest"
    if latest.is_file():
        ckpt = path / "checkpoints" / latest.read_text().strip()
        if (ckpt / TRAINER_STATE).is_file():
            return ckpt
    return None


def load_agent(path, **kwargs):
    """The agent of an offline run folder or checkpoint, built by its learner
    class; named after the algorithm and remembering the env it trained on,
    as RLlib runs' agents do (``RLModuleAgent.from_checkpoint``)."""
    from omnigym.rllib.inference import run_config
    ckpt = offline_checkpoint(path)
    if ckpt is None:
        raise ValueError(f"{path} is not an offline run or checkpoint (no {TRAINER_STATE})")
    config = run_config(ckpt)
    if config is None:
        raise ValueError(f"{ckpt} is not inside its run folder (no config.yaml above it); "
                         f"pass the run folder or a checkpoint in it")
    kwargs.setdefault("name", config["algo"]["name"])
    agent = learner_class(config["algo"]).load_agent(ckpt, config, **kwargs)
    env = config.get("env") or {}
    agent.env_id, agent.env_kwargs = env.get("id"), dict(env.get("kwargs") or {})
    agent.env_modules, agent.run_name = list(env.get("modules") or []), config.get("run_name")
    return agent
