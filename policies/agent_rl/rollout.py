"""Group rollouts of an LM over token views of text envs, without RLlib,
with AEPO's entropy-balanced branching from live env snapshots.

``group_rollouts`` plays ``len(envs)`` slots, ``group_size`` per group, all
slots of a step in one batched generation (``token_replies``), only the
slots still playing. Without branching every slot starts from its group's
start. With branching (``Branching``) a group starts ``initial`` slots at
the root and keeps the rest as its budget: after each env response, a path
whose reply entropy rose (``BranchController``: ``U(0,1) + w (H - H_init)``,
damped by the group's consecutive branching) branches -- a spare slot
restores the path's snapshot from before that reply (``TokenTextEnv
.get_state``/``set_state``: the env's state, its step count and the
conversation), copies the path's steps so far (as AEPO copies the tokens),
and samples its own reply there. A group whose paths have all ended spends
what budget is left on fresh samples from the root, so every slot ends with
exactly one trajectory. Works on every env whose unwrapped env has
``get_state``/``set_state`` (household, shell FreeForm, tools).

The reply entropy is the mean per-token entropy of the reply's first 20
tokens over log |V| -- the full distribution's, where AEPO's code reads the
top-10 log-probs vLLM returns.
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

from omnigym.policies.agent_rl.branching import POSITIONS, BranchController
from omnigym.policies.agent_rl.episodes import EpisodeRecord
from omnigym.policies.lm.token_replies import token_replies

log = logging.getLogger("omnigym.episodes")
EPISODE_ERROR = "episode_error"   # as omnigym.rllib.episode_control flags a step that raised


@dataclass
class Branching:
    initial: int | None = None      # paths started at the root per group (None: half the group, at least 1)
    threshold: float = 0.5          # branch when the damped probability reaches it
    entropy_weight: float = 0.2
    damping: float = 0.05           # per consecutive branching round of the group
    beam: int = 2                   # a path branches into at most beam - 1 new paths per round


@dataclass
class Trajectory:
    group: int
    seed: int
    obs: list = field(default_factory=list)        # token observation each reply answered
    actions: list = field(default_factory=list)    # [K] reply ids
    logp: list = field(default_factory=list)       # [K] sampled log-probs
    mask: list = field(default_factory=list)       # [K] reply positions
    entropy: list = field(default_factory=list)    # reply entropy (normalised) per step
    rewards: list = field(default_factory=list)
    infos: list = field(default_factory=list)      # info of the state each reply acted in, then the last one
    parent: int | None = None                      # the trajectory this one branched from
    shared: int = 0                                # leading steps copied from the parent
    done: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.infos) and EPISODE_ERROR in self.infos[-1]

    def record(self) -> EpisodeRecord:
        return EpisodeRecord.from_infos(self.group, self.seed, self.rewards, self.infos)


def reply_entropy(token_entropy: torch.Tensor, mask: torch.Tensor, vocab_size: int) -> float:
    values = token_entropy[mask][:POSITIONS]
    return float(values.mean()) / math.log(vocab_size) if values.numel() else 0.0


def group_rollouts(model, tokenizer, envs: list, starts: list[tuple[int, int]], group_size: int, *,
                   temperature: float, top_p: float = 1.0, stop=(), max_batch_tokens: int = 65536,
                   branching: Branching | None = None, rng: np.random.Generator | None = None,
                   timers: dict | None = None, max_steps: int = 1000) -> list[Trajectory]:
    """One trajectory per slot; slot ``s`` belongs to group ``s // group_size``,
    which starts from ``starts[group] = (group id, seed)``. ``timers``
    (optional) accumulates seconds under "generation" and "env"."""
    if len(envs) != len(starts) * group_size:
        raise ValueError(f"{len(envs)} envs for {len(starts)} groups of {group_size}")
    rng = rng or np.random.default_rng()
    timers = timers if timers is not None else defaultdict(float)
    width = int(envs[0].response_tokens)
    vocab = int(model.get_input_embeddings().num_embeddings)
    trajectories: list[Trajectory | None] = [None] * len(envs)
    observations: dict[int, dict] = {}
    controller = BranchController(*(() if branching is None else (branching.threshold, branching.entropy_weight,
                                                                    branching.damping)), rng=rng)
    initial = group_size if branching is None else max(1, min(group_size, branching.initial or group_size // 2))

    def start(slot: int) -> None:
        group, seed = starts[slot // group_size]
        t0 = time.perf_counter()
        obs, info = envs[slot].reset(seed=int(seed))
        timers["env"] += time.perf_counter() - t0
        trajectories[slot] = Trajectory(group=group, seed=int(seed), infos=[info])
        observations[slot] = obs

    for slot in range(len(envs)):
        if slot % group_size < initial:
            start(slot)
    for _ in range(max_steps):
        active = [s for s, t in enumerate(trajectories) if t is not None and not t.done]
        if not active:
            spare = _spare_of_finished_groups(trajectories, group_size)
            if not spare:
                break
            for slot in spare:
                start(slot)
            continue
        snapshots = {s: envs[s].get_state() for s in active} if branching is not None else {}
        t0 = time.perf_counter()
        batch = {k: torch.as_tensor(np.stack([observations[s][k] for s in active])) for k in observations[active[0]]}
        with torch.no_grad():
            out = token_replies(model, tokenizer, batch, width, temperature=temperature, top_p=top_p, stop=stop,
                                max_batch_tokens=max_batch_tokens)
        timers["generation"] += time.perf_counter() - t0
        entropies = {s: reply_entropy(out["token_entropy"][j], out["token_mask"][j], vocab) for j, s in enumerate(active)}
        if branching is not None:
            _branch(active, entropies, trajectories, snapshots, envs, starts, group_size, controller, branching,
                    observations)
        t0 = time.perf_counter()
        for j, slot in enumerate(active):
            traj = trajectories[slot]
            action = out["actions"][j].numpy()
            traj.obs.append(observations[slot])
            traj.actions.append(action)
            traj.logp.append(out["token_logp"][j].numpy())
            traj.mask.append(out["token_mask"][j].numpy())
            traj.entropy.append(entropies[slot])
            obs, reward, terminated, truncated, info = envs[slot].step(action)
            traj.rewards.append(float(reward))
            traj.infos.append(info)
            traj.done = bool(terminated or truncated)
            observations[slot] = obs
        timers["env"] += time.perf_counter() - t0
    return [t for t in trajectories if t is not None]


def _spare_of_finished_groups(trajectories: list, group_size: int) -> list[int]:
    """Unused slots of groups with no path still playing: they start fresh from the root."""
    spare = []
    for first in range(0, len(trajectories), group_size):
        members = trajectories[first:first + group_size]
        if all(t is None or t.done for t in members):
            spare += [first + i for i, t in enumerate(members) if t is None]
    return spare


def _branch(active, entropies, trajectories, snapshots, envs, starts, group_size, controller, branching,
            observations) -> None:
    """Fork paths whose entropy rose into spare slots of their group (module docstring)."""
    for slot in active:
        traj = trajectories[slot]
        if not traj.actions:                      # the root reply: its entropy is the path's reference
            controller.start(slot, entropies[slot])
            continue
        group = slot // group_size
        for _ in range(branching.beam - 1):
            members = range(group * group_size, (group + 1) * group_size)
            spare = [s for s in members if trajectories[s] is None]
            if not spare or not controller.decide(slot, group, entropies[slot]):
                break
            child = spare[0]
            seed = starts[group][1]
            try:   # a live env of the same task, then the path's state
                envs[child].reset(seed=int(seed))
                observations[child] = envs[child].set_state(snapshots[slot])
            except Exception as exc:   # noqa: BLE001 -- a failed restore loses the branch, not the rollout
                log.warning("branch of seed %s not taken: %s: %s", seed, type(exc).__name__, exc)
                break
            trajectories[child] = Trajectory(group=traj.group, seed=traj.seed, obs=list(traj.obs),
                                             actions=list(traj.actions), logp=list(traj.logp), mask=list(traj.mask),
                                             entropy=list(traj.entropy), rewards=list(traj.rewards),
                                             infos=list(traj.infos), parent=slot, shared=len(traj.actions))
            controller.start(child, controller.initial.get(slot, entropies[slot]))
    controller.end_round(sorted({s // group_size for s in active}))
