"""``omnigym check``: gymnasium's ``check_env`` plus every omnigym convention.

One function per convention of DESIGN §2, each returning ``None`` when it
holds or a one-line reason when it does not; ``check_id`` runs them all on
every mode of an id and ``omnigym check ID|--all`` prints the table. The test
suite runs it over every registered id, so a new env is checked the moment it
is registered (as gymnasium's own test suite does for its envs).
"""
from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from omnigym import info_keys as K
from omnigym.agents import ExpertAgent, RandomAgent
from omnigym.episodes import values_equal
from omnigym.registry import entry, make, panels_of

CHECKS = ("gymnasium", "info keys", "determinism", "snapshot", "state key", "bad actions", "reset guard",
          "expert")
STEPS = 6  # steps walked by the checks that follow a trajectory


@dataclass
class CheckResult:
    env_id: str
    mode: str
    results: dict = field(default_factory=dict)   # check -> None (holds), "skip: why" or the failure

    @property
    def ok(self) -> bool:
        return all(r is None or r.startswith("skip") for r in self.results.values())

    def failures(self) -> dict:
        return {k: v for k, v in self.results.items() if v is not None and not v.startswith("skip")}


def _make(env_id: str, mode: str, **kwargs):
    return make(env_id, **({} if mode == "default" else {"mode": mode}), **kwargs)


def _walk(env, seed: int, steps: int = STEPS):
    """(obs, info) of the reset and of up to ``steps`` random-agent steps, with the actions."""
    agent = RandomAgent(seed=seed)
    obs, info = env.reset(seed=seed)
    agent.reset(env=env, seed=seed)
    trail, actions = [(obs, info)], []
    for _ in range(steps):
        action = agent.act(obs, info)
        obs, _, terminated, truncated, info = env.step(action)
        trail.append((obs, info))
        actions.append(action)
        if terminated or truncated:
            break
    return trail, actions


def check_gymnasium(env_id: str, mode: str) -> str | None:
    from gymnasium.utils.env_checker import check_env
    env = _make(env_id, mode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gymnasium's advice (e.g. unbounded Box) is not a failure
            check_env(env.unwrapped, skip_render_check=True, skip_close_check=True)
    finally:
        env.close()
    return None


def check_info_keys(env, seed: int) -> str | None:
    trail, _ = _walk(env, seed)
    reset_keys = set(trail[0][1])
    missing = [k for k in K.REQUIRED_KEYS if k not in reset_keys]
    if missing:
        return f"reset info lacks {missing}"
    expected = reset_keys - set(K.RESET_ONLY_KEYS)
    for t, (_, info) in enumerate(trail[1:], 1):
        if set(info) != expected:
            return (f"step {t} info keys differ from reset's: missing {sorted(expected - set(info))}, "
                    f"extra {sorted(set(info) - expected)}")
    return None


def check_determinism(env, seed: int) -> str | None:
    a, actions = _walk(env, seed)
    b, _ = _walk(env, seed)
    for t, ((oa, ia), (ob, ib)) in enumerate(zip(a, b)):
        if not values_equal(oa, ob) or ia.get(K.STATE_KEY) != ib.get(K.STATE_KEY):
            return f"two runs of seed {seed} differ at step {t}"
    return None if len(a) == len(b) else f"two runs of seed {seed} have different lengths"


def check_snapshot(env, seed: int) -> str | None:
    core = env.unwrapped
    if not hasattr(core, "get_state"):
        return "no get_state()/set_state()"
    agent = RandomAgent(seed=seed)
    obs, info = env.reset(seed=seed)
    agent.reset(env=env, seed=seed)
    for _ in range(2):  # snapshot mid-episode, not only at the start
        obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
        if terminated or truncated:
            obs, info = env.reset(seed=seed)
    snapshot = core.get_state()
    action = agent.act(obs, info)
    after = env.step(action)
    for _ in range(2):  # move away, then come back
        if after[2] or after[3]:
            break
        after2 = env.step(agent.act(after[0], after[4]))
        if after2[2] or after2[3]:
            break
    restored = core.set_state(snapshot)
    if not (isinstance(restored, tuple) and len(restored) == 2):
        return f"set_state returned {type(restored).__name__}, not (obs, info)"
    r_obs, r_info = restored
    if not values_equal(r_obs, obs) or r_info.get(K.STATE_KEY) != info[K.STATE_KEY]:
        return "set_state's (obs, info) differ from those seen when the snapshot was taken"
    replay = env.step(action)
    if not values_equal(replay[0], after[0]) or replay[1] != after[1] or \
            replay[4][K.STATE_KEY] != after[4][K.STATE_KEY]:
        return "the step after set_state differs from the step after the snapshot"
    try:
        pickle.loads(pickle.dumps(snapshot))
    except Exception as exc:  # noqa: BLE001 - some backends hold live handles; say so, do not fail
        return f"skip: snapshot not picklable ({type(exc).__name__}); round trip holds"
    return None


def check_state_key(env, seed: int, probe_steps: int = 3, max_pairs: int = 4) -> str | None:
    """``state_key()`` is a method equal to the info's, and a key says
    everything that affects the future: from two moments that share a key
    (restored from their snapshots), the same actions give the same rewards,
    ends and keys. (Observations may differ under one key: feedback about the
    last action is text, not state.)"""
    core = env.unwrapped
    if not callable(getattr(core, "state_key", None)):
        return "env.unwrapped.state_key() is missing"
    moments: dict = {}
    for s in (seed, seed + 1, seed + 2):
        agent = RandomAgent(seed=s)
        obs, info = env.reset(seed=s)
        agent.reset(env=env, seed=s)
        for _ in range(STEPS + 1):
            key = info[K.STATE_KEY]
            if not isinstance(key, str) or not key:
                return f"state_key must be a non-empty str, got {key!r}"
            if key != core.state_key():
                return "info['state_key'] differs from env.unwrapped.state_key()"
            moments.setdefault(key, []).append(core.get_state() if hasattr(core, "get_state") else None)
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            if terminated or truncated:
                break
    shared = [snaps[:2] for snaps in moments.values() if len(snaps) > 1 and snaps[0] is not None][:max_pairs]
    for first, second in shared:
        futures, actions = [], None
        for snapshot in (first, second):
            obs, info = core.set_state(snapshot)
            agent, future, taken = RandomAgent(seed=seed), [], []
            agent.reset(env=env, seed=seed)
            for t in range(probe_steps if actions is None else len(actions)):
                action = agent.act(obs, info) if actions is None else actions[t]
                taken.append(action)
                obs, reward, terminated, truncated, info = core.step(action)
                future.append((reward, terminated, info[K.STATE_KEY]))
                if terminated:
                    break
            futures.append(future)
            actions = actions or taken
        if futures[0] != futures[1]:
            return "two moments with one state_key have different futures under the same actions"
    return None


def bad_actions(space: gym.Space) -> list:
    """Actions a careless or hostile agent might send, for ``space``."""
    common = [None, object(), {"a": 1}, ["a", 1]]
    if isinstance(space, gym.spaces.Discrete):
        return common + [-1, int(space.n) + 5, 1.5, "0", b"\xff", True, np.array([0, 1]), float("nan")]
    if isinstance(space, gym.spaces.Text):
        return common + [7, 2.5, "", " ", "x" * (space.max_length + 10), b"\xff\xfe", np.zeros(3)]
    if isinstance(space, gym.spaces.Box):
        wrong = np.zeros(tuple(d + 1 for d in space.shape))
        nan = np.full(space.shape, np.nan)
        return common + ["push", wrong, nan, np.full(space.shape, np.inf)]
    return common


def check_bad_actions(env, seed: int) -> str | None:
    env.reset(seed=seed)
    for action in bad_actions(env.action_space):
        try:
            obs, _, terminated, truncated, info = env.step(action)
        except Exception as exc:  # noqa: BLE001 - the check is exactly that nothing raises
            return f"{_short(action)} raised {type(exc).__name__}: {exc}"
        if not info.get(K.INVALID_ACTION):
            return f"{_short(action)} was not flagged invalid_action"
        if terminated or truncated:
            env.reset(seed=seed)
    if isinstance(env.action_space, gym.spaces.Box) and np.all(np.isfinite(env.action_space.high)):
        _, _, _, _, info = env.step(env.action_space.high * 2 + 1)
        if info.get(K.INVALID_ACTION) or not info.get(K.ACTION_CLIPPED):
            return "an out-of-bounds action must be clipped and reported as action_clipped, not invalid"
    return None


def check_reset_guard(env_id: str, mode: str) -> str | None:
    env = _make(env_id, mode)
    try:
        env.unwrapped.step(env.action_space.sample())
    except gym.error.ResetNeeded:
        return None
    except Exception as exc:  # noqa: BLE001
        return f"step before reset raised {type(exc).__name__}, not gymnasium's ResetNeeded"
    finally:
        env.close()
    return "step before reset did not raise ResetNeeded"


def check_expert(env, env_id: str, seed: int) -> str | None:
    if not entry(env_id).expert:
        return "skip: no expert"
    agent = ExpertAgent()
    obs, info = env.reset(seed=seed)
    agent.reset(env=env, seed=seed)
    while True:
        obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
        if terminated or truncated:
            break
    return None if info.get(K.SUCCESS) else f"the expert did not solve seed {seed}"


def check_id(env_id: str, modes: list[str] | None = None, expert: bool = True) -> list[CheckResult]:
    """Every check on every mode of ``env_id`` (the expert on the first mode only)."""
    e = entry(env_id)
    seed = panels_of(env_id)["train"][1][0]
    out = []
    for i, mode in enumerate(modes or e.modes):
        result = CheckResult(env_id, mode)
        env = _make(env_id, mode)
        try:
            steps = {
                "gymnasium": lambda: check_gymnasium(env_id, mode),
                "info keys": lambda: check_info_keys(env, seed),
                "determinism": lambda: check_determinism(env, seed),
                "snapshot": lambda: check_snapshot(env, seed),
                "state key": lambda: check_state_key(env, seed),
                "bad actions": lambda: check_bad_actions(env, seed),
                "reset guard": lambda: check_reset_guard(env_id, mode),
                "expert": (lambda: check_expert(env, env_id, seed)) if expert and i == 0
                else (lambda: "skip: checked in the first mode"),
            }
            for name in CHECKS:
                try:
                    result.results[name] = steps[name]()
                except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
                    result.results[name] = f"raised {type(exc).__name__}: {str(exc)[:200]}"
        finally:
            env.close()
        out.append(result)
    return out


def format_table(results: list[CheckResult]) -> str:
    width = max([len(f"{r.env_id} [{r.mode}]") for r in results] + [10])
    head = f"{'environment':<{width}}  " + "  ".join(f"{c:^11}" for c in CHECKS)
    lines = [head, "-" * len(head)]
    for r in results:
        cells = []
        for c in CHECKS:
            v = r.results.get(c)
            cells.append("ok" if v is None else "-" if v.startswith("skip") else "FAIL")
        lines.append(f"{r.env_id + ' [' + r.mode + ']':<{width}}  " + "  ".join(f"{c:^11}" for c in cells))
    failed = [r for r in results if not r.ok]
    for r in failed:
        for name, why in r.failures().items():
            lines.append(f"FAIL {r.env_id} [{r.mode}] {name}: {why}")
    lines.append(f"\n{len(results) - len(failed)}/{len(results)} (id, mode) pairs pass every check.")
    return "\n".join(lines)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
