"""Agents: what acts in an environment (random, expert, a trained checkpoint,
an LM). Networks live in ``omnigym.policies``; an agent may wrap one.

Two shapes, and every harness accepts both:

- a **single agent** has ``act(obs, info) -> action`` and optionally
  ``reset(env=..., seed=..., member=...)``, called after every env reset
  (a plain callable ``f(obs, info)`` works too);
- a **batched agent** has ``act_batch(observations, infos) -> actions`` and
  optionally ``reset_batch(envs, seeds, members)``: it sees a whole batch
  at once (every member of a group, several groups), which is what a batched
  LM generator or a diffusion sampler needs. One that keeps memory per
  episode (an LM's conversation) also takes ``slots=`` in both: each row's
  slot, a number that stays with an episode until ``reset_batch`` starts a
  new one in it (finished episodes leave the batch, so rows shift).

``as_batched(agent, slots)`` gives any agent the batched shape (a single
agent gets one copy per slot, so per-episode memory never mixes), and
``resolve_agent`` turns a name into an agent:

- ``random``: a uniformly random *admissible* action when the env lists them
  (the action mask in discrete mode, ``admissible_actions`` in text mode),
  else ``action_space.sample()``;
- ``expert``: the env family's expert (``env.unwrapped.make_expert()``; see
  ``omnigym info``);
- ``lm`` / ``lm:PATH``: a causal LM acting in text families
  (``omnigym.policies.lm``), SmolLM2-135M-Instruct or a local model folder;
- ``package.module:Name``: any importable class or factory;
- a run folder of ``omnigym train`` or an RLlib checkpoint: the trained RLModule
  (or, for runs of the offline loop such as ``algo=sft``, the agent its learner saves).
"""
from __future__ import annotations

import copy
import importlib

import numpy as np

from omnigym import info_keys as K


class RandomAgent:
    name = "random"

    def __init__(self, seed: int = 0, **_):
        self.base_seed = seed
        self.rng = np.random.default_rng(seed)
        self.action_space = None

    def reset(self, env=None, seed=None, member=None) -> None:
        # Seeded per episode so every (seed, member) pair is reproducible.
        self.rng = np.random.default_rng([self.base_seed, seed or 0, member or 0])
        if env is not None:
            self.action_space = env.action_space

    def act(self, obs, info):
        mask = info.get(K.ACTION_MASK)
        space = self.action_space
        if mask is not None and space is not None and hasattr(space, "n"):
            valid = np.flatnonzero(mask)
            if len(valid):
                return int(self.rng.choice(valid))
        actions = info.get(K.ADMISSIBLE_ACTIONS)
        if actions:
            return actions[int(self.rng.integers(len(actions)))]
        if space is None:
            raise ValueError("RandomAgent needs reset(env=...) for envs without admissible actions")
        space.seed(int(self.rng.integers(2**31)))
        return space.sample()


class ExpertAgent:
    """The env family's expert, built the same way for every family: the
    unwrapped env's ``make_expert()`` gives a fresh expert each episode."""

    name = "expert"

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.expert = None

    def reset(self, env=None, seed=None, member=None) -> None:
        if env is None:
            raise ValueError("the expert needs the environment: call reset(env=...)")
        factory = getattr(env.unwrapped, "make_expert", None)
        if factory is None:
            raise ValueError(f"{_env_name(env)} has no expert; use random, a checkpoint or 'module:Class'")
        self.expert = factory(**self.kwargs)
        if hasattr(self.expert, "reset"):
            self.expert.reset(env=env, seed=seed, member=member)

    def act(self, obs, info):
        if self.expert is None:
            raise ValueError("call reset(env=...) before act(): the expert is made per episode")
        return self.expert.act(obs, info)


class CallableAgent:
    """Adapts ``f(obs, info)`` to the agent protocol."""

    def __init__(self, fn, name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")

    def act(self, obs, info):
        return self.fn(obs, info)


class PerSlotAgent:
    """A single agent as a batched one: one copy per slot, so each slot keeps
    its own episode memory (a plan, an rng) however the batch is composed."""

    def __init__(self, agent, slots: int):
        self.name = agent_name(agent)
        self.copies = [agent] + [copy.deepcopy(agent) for _ in range(slots - 1)]

    def reset_slot(self, slot: int, env, seed, member) -> None:
        agent = self.copies[slot]
        if hasattr(agent, "reset"):
            agent.reset(env=env, seed=seed, member=member)

    def act_slots(self, slots: list[int], observations: list, infos: list) -> list:
        return [self.copies[s].act(o, i) for s, o, i in zip(slots, observations, infos)]


class NativeBatchAgent:
    """A batched agent behind the same slot interface as ``PerSlotAgent``."""

    def __init__(self, agent):
        import inspect
        self.agent = agent
        self.name = agent_name(agent)
        self._pending: list = []
        self._slot_aware = "slots" in inspect.signature(agent.act_batch).parameters

    def reset_slot(self, slot: int, env, seed, member) -> None:
        self._pending.append((slot, env, seed, member))

    def act_slots(self, slots: list[int], observations: list, infos: list) -> list:
        if self._pending and hasattr(self.agent, "reset_batch"):
            started, envs, seeds, members = map(list, zip(*self._pending))
            if self._slot_aware:
                self.agent.reset_batch(envs, seeds, members, slots=started)
            else:
                self.agent.reset_batch(envs, seeds, members)
        self._pending = []
        if self._slot_aware:
            actions = list(self.agent.act_batch(list(observations), list(infos), slots=list(slots)))
        else:
            actions = list(self.agent.act_batch(list(observations), list(infos)))
        if len(actions) != len(observations):
            raise ValueError(f"{self.name}.act_batch returned {len(actions)} actions for "
                             f"{len(observations)} observations")
        return actions


def as_batched(agent, slots: int):
    """``agent`` behind the slot interface the rollout uses (see the module docstring)."""
    return NativeBatchAgent(agent) if hasattr(agent, "act_batch") else PerSlotAgent(agent, slots)


def _import(path: str):
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"agent {path!r}: write 'package.module:Name'")
    return getattr(importlib.import_module(module), attr)


def _env_name(env) -> str:
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


def resolve_agent(spec, env_id: str | None = None, **kwargs):
    """An agent from a name, an import path, an object or a callable."""
    if not isinstance(spec, str):
        if hasattr(spec, "act") or hasattr(spec, "act_batch"):
            return spec
        if callable(spec):
            return CallableAgent(spec)
        raise TypeError(f"an agent needs act(obs, info), act_batch(observations, infos) or to be callable, "
                        f"got {type(spec).__name__}")
    if spec == "random":
        return RandomAgent(**kwargs)
    if spec == "expert":
        if env_id is not None:
            from omnigym.registry import entry
            if not entry(env_id).expert:
                raise ValueError(f"{env_id} has no expert; available: random, a checkpoint or 'module:Class'")
        return ExpertAgent(**kwargs)
    if spec == "lm" or spec.startswith("lm:"):
        # A causal LM (omnigym.policies.lm): "lm" is SmolLM2-135M-Instruct, "lm:PATH" a local model folder.
        from omnigym.policies.lm.agent import LMAgent
        path = spec[len("lm:"):] if spec != "lm" else None
        return LMAgent(**({"model": path} if path else {}), **kwargs)
    from omnigym.offline_train import load_agent, offline_checkpoint
    if offline_checkpoint(spec) is not None:
        # A run of the offline loop (algo=sft): the agent its learner saved, e.g. an LMAgent.
        return load_agent(spec, **kwargs)
    from omnigym.rllib.inference import is_checkpoint
    if is_checkpoint(spec):
        from omnigym.rllib.inference import RLModuleAgent
        return RLModuleAgent.from_checkpoint(spec, **kwargs)
    if ":" in spec:
        obj = _import(spec)
        agent = obj(**kwargs) if isinstance(obj, type) else obj
        return resolve_agent(agent)
    raise ValueError(f"unknown agent {spec!r}; use random, expert, lm, lm:PATH, 'module:Class' or a checkpoint folder")


def agent_name(agent) -> str:
    return getattr(agent, "name", type(agent).__name__)
