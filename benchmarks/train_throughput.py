"""PPO end-to-end environment steps/s: ``omnigym train`` (RLlib, new API
stack) against the single-file reference ``benchmarks/cleanrl_ppo.py`` on
the same machine, in the same run, with the same batch, minibatch, epochs and
network. Reports the ratio and where the time goes.

    .venv/bin/python benchmarks/train_throughput.py [--steps 20000]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cleanrl_ppo  # noqa: E402  (the reference script beside this one)

CASES = [("HalfCheetah-v5", {}), ("household/Hold-v0", {"mode": "vector"})]
BATCH, MINIBATCHES, EPOCHS, NUM_ENVS, HIDDEN = 2000, 8, 6, 4, [64, 64]


def reference(env_id: str, env_kwargs: dict, steps: int) -> dict:
    args = cleanrl_ppo.Args(env_id=env_id, env_kwargs=json.dumps(env_kwargs), total_timesteps=steps,
                            num_envs=NUM_ENVS, num_steps=BATCH // NUM_ENVS, num_minibatches=MINIBATCHES,
                            update_epochs=EPOCHS, hidden=",".join(map(str, HIDDEN)), quiet=True)
    r = cleanrl_ppo.train(args)
    return {"sps": r["sps"], "sample_s": r["time_env_s"], "learn_s": r["time_update_s"], "wall_s": r["wall_s"]}


def omnigym_train(env_id: str, env_kwargs: dict, steps: int) -> dict:
    from omegaconf import OmegaConf
    from omnigym.rllib.train import train
    from omnigym.rllib.train_config import compose
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(["env=cartpole", f"iterations={steps // BATCH}", "checkpoint_every=0",
                       "evaluation.every=0", "evaluation.episodes=1", "evaluation.baselines=[]",
                       f"algo.training.train_batch_size_per_learner={BATCH}",
                       f"algo.training.minibatch_size={BATCH // MINIBATCHES}",
                       f"algo.training.num_epochs={EPOCHS}", f"policy.config.hidden={HIDDEN}",
                       f"resources.num_envs_per_env_runner={NUM_ENVS}", f"out_dir={tmp}/run", "progress=false"])
        cfg.env.id = env_id
        cfg.env.kwargs = OmegaConf.create(env_kwargs)
        train(cfg)
        with open(Path(tmp) / "run" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
    # The first iteration includes building the env runner and learner: skip it.
    rows = rows[1:] if len(rows) > 1 else rows
    total = sum(float(r["iteration_s"]) for r in rows)
    done = int(rows[-1]["env_steps"]) - (int(rows[0]["env_steps"]) - BATCH)
    return {"sps": done / total, "sample_s": sum(float(r["sample_s"]) for r in rows),
            "learn_s": sum(float(r["learn_s"]) for r in rows), "wall_s": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    results = []
    for env_id, kwargs in CASES:
        ref = reference(env_id, kwargs, args.steps)
        ours = omnigym_train(env_id, kwargs, args.steps)
        results.append({"env_id": env_id, "reference": ref, "omnigym": ours, "ratio": ours["sps"] / ref["sps"]})
    print(f"PPO env steps/s, batch {BATCH}, {MINIBATCHES} minibatches x {EPOCHS} epochs, MLP {HIDDEN}, "
          f"{NUM_ENVS} envs, 1 torch thread, {args.steps} steps")
    print(f"{'env':<20} {'reference':>10} {'omnigym':>10} {'ratio':>7}   time split (sample / learn)")
    for r in results:
        ref, ours = r["reference"], r["omnigym"]
        print(f"{r['env_id']:<20} {ref['sps']:>10,.0f} {ours['sps']:>10,.0f} {r['ratio']:>7.2f}   "
              f"reference {ref['sample_s']:.1f}s / {ref['learn_s']:.1f}s; "
              f"omnigym {ours['sample_s']:.1f}s / {ours['learn_s']:.1f}s")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "train_throughput.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
