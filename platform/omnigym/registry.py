"""Environment ids: registration under family namespaces, ``make``, listing.

Families register their ids with ``register`` (a thin layer over
``gymnasium.register`` that also keeps what ``omnigym list``/``info`` show:
family, modes, one-line doc, task suite, expert, panels). ``import omnigym``
imports every family's registration module: they register string entry
points and import no simulator, so plain ``gymnasium.make("household/...")``,
``gymnasium.make("omnigym:robots/Push-v0")`` and RLlib's string env ids work
once the package is imported, and the import stays light (tested).

Panels: every id has named seed panels. Ids with a task suite take the
suite's (``train``, ``test`` and ``heldout`` where the suite holds tasks out);
every other id has ``DEFAULT_PANELS``.
"""
from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass, field

import gymnasium

# Family name -> module whose import registers that family's ids.
FAMILY_MODULES = {
    "household": "omnigym.environments.household.registration",
    "shell": "omnigym.environments.shell.registration",
    "robots": "omnigym.environments.robots.registration",
    "tools": "omnigym.environments.tools.registration",
}


# Seeds for tuning and training vs seeds never used for either.
DEFAULT_PANELS = {"train": (0, 50), "test": (100_000, 50)}


@dataclass(frozen=True)
class EnvEntry:
    id: str
    family: str
    doc: str
    modes: tuple[str, ...] = ("default",)
    suite: str | None = None
    expert: str | None = None           # one line on what the expert is; made by env.unwrapped.make_expert()
    kwargs: dict = field(default_factory=dict)
    # Named seed panels for ids without a task suite: {"train": (first_seed, episodes)}.
    panels: dict = field(default_factory=lambda: dict(DEFAULT_PANELS))


_ENTRIES: dict[str, EnvEntry] = {}
_loaded = False


def register(id: str, entry_point, *, family: str, doc: str, modes=("default",), kwargs=None,
             max_episode_steps: int | None = None, suite: str | None = None,
             expert: str | None = None, panels: dict | None = None) -> None:
    """Register an environment id with gymnasium and with omnigym's catalog.
    ``entry_point``: a ``"module:Class"`` string keeps registration free (the
    module is imported by ``make``). ``expert``: one line describing the
    family's expert (the env's ``make_expert()`` builds it). ``panels``: named
    seed ranges ``{"test": (first_seed, episodes)}`` for ids without a task
    suite (default ``DEFAULT_PANELS``)."""
    namespace = id.split("/", 1)[0] if "/" in id else None
    if namespace != family:
        raise ValueError(f"id {id!r} must live in its family's namespace: '{family}/Name-vN'")
    gymnasium.register(id=id, entry_point=entry_point, kwargs=dict(kwargs or {}),
                       max_episode_steps=max_episode_steps)
    _ENTRIES[id] = EnvEntry(id, family, doc, tuple(modes), suite, expert, dict(kwargs or {}),
                            {name: (int(first), int(n)) for name, (first, n) in (panels or DEFAULT_PANELS).items()})


def load_families() -> None:
    """Import every family's registrations once (a broken optional family
    warns instead of hiding the others)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for family, module in FAMILY_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:  # pragma: no cover - depends on optional installs
            warnings.warn(f"omnigym family {family!r} unavailable: {exc}", stacklevel=2)


def _unknown(env_id: str) -> gymnasium.error.Error:
    known = list(gymnasium.registry)
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.5)
    if not close:  # also match on the name alone ("PutIn" -> "household/PutIn-v0")
        lowered = {k.lower(): k for k in known}
        close = [lowered[k] for k in difflib.get_close_matches(env_id.lower(), list(lowered), n=3, cutoff=0.4)]
    hint = f" Did you mean: {', '.join(close)}?" if close else " Run `omnigym list` to see all ids."
    return gymnasium.error.UnregisteredEnv(f"no environment {env_id!r}.{hint}")


def make(env_id: str, **kwargs) -> gymnasium.Env:
    """``gymnasium.make`` after importing omnigym's families; unknown ids
    fail with the closest registered ids."""
    load_families()
    if env_id not in gymnasium.registry:
        raise _unknown(env_id)
    from omnigym.quiet import quiet_simulator_of
    quiet_simulator_of(gymnasium.registry[env_id])
    return gymnasium.make(env_id, **kwargs)


def entry(env_id: str) -> EnvEntry:
    """omnigym's catalog entry, or a plain one for any other gymnasium id."""
    load_families()
    if env_id in _ENTRIES:
        return _ENTRIES[env_id]
    if env_id not in gymnasium.registry:
        raise _unknown(env_id)
    spec = gymnasium.registry[env_id]
    return EnvEntry(env_id, spec.namespace or "gymnasium", f"gymnasium environment {env_id}")


def panels_of(env_id: str) -> dict[str, tuple[str | None, list[int]]]:
    """Every named panel of an id: ``{name: (split or None, seeds)}``."""
    suite = suite_of(env_id)
    if suite is not None:  # only panels whose split holds some of this id's tasks
        panels = suite.panels_for(entry(env_id).kwargs.get("templates"))
        return {p.name: (p.split, list(p.seeds)) for p in panels.values()}
    return {name: (None, list(range(first, first + n))) for name, (first, n) in entry(env_id).panels.items()}


def list_envs(family: str | None = None) -> list[EnvEntry]:
    load_families()
    return [e for i, e in sorted(_ENTRIES.items()) if family is None or e.family == family]


def _space_text(space) -> str:
    """Spaces as one readable line (a Text space's repr lists its whole charset)."""
    if isinstance(space, gymnasium.spaces.Text):
        return f"Text(max_length={space.max_length}, {len(space.character_set)} characters)"
    return str(space)


def describe_env(env_id: str) -> dict:
    """What ``omnigym info`` prints: spaces per mode, info keys, suite, doc."""
    from omnigym import info_keys
    e = entry(env_id)
    modes = {}
    for mode in e.modes:
        kwargs = {} if mode == "default" else {"mode": mode}
        env = make(env_id, **kwargs)
        try:
            _, info = env.reset(seed=0)
            modes[mode] = {"observation_space": _space_text(env.observation_space),
                           "action_space": _space_text(env.action_space),
                           "info_keys": sorted(info)}
        finally:
            env.close()
    out = {"id": e.id, "family": e.family, "doc": e.doc, "modes": modes,
           "max_episode_steps": gymnasium.registry[env_id].max_episode_steps,
           "contract_keys": info_keys.DOCS}
    if e.suite:
        out["suite"] = e.suite
        suite = suite_of(env_id)
        if suite is not None:
            out["splits"] = {k: len(v) for k, v in suite.splits.items()}
            out["templates"] = list(suite.templates)
    out["panels"] = {name: (f"{split} split, " if split else "") + f"seeds {seeds[0]}..{seeds[-1]}"
                     for name, (split, seeds) in panels_of(env_id).items()}
    if e.expert:
        out["expert"] = e.expert
    return out


def suite_of(env_id: str):
    """The TaskSuite behind an id (None for ids without one)."""
    e = entry(env_id)
    if not e.suite:
        return None
    from omnigym.suites import load_family_suite
    return load_family_suite(e.family, e.suite)
