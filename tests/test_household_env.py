"""HouseholdEnv against the environment contract of DESIGN.md §2: strict
gymnasium env in every mode, bad actions never raise, admissible == valid,
determinism, snapshots, state keys, partial observability, rewards."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import omnigym
from omnigym import info_keys as K
from omnigym.environments.household import actions as A
from omnigym.environments.household.catalog import CLASS_INDEX
from omnigym.environments.household.env import HouseholdEnv
from omnigym.environments.household.planner import plan_lines
from omnigym.environments.household.world import INSIDE

MODES = ("text", "discrete", "vector")
HOUSEHOLD_IDS = [e.id for e in omnigym.list_envs("household")]
SUITE_ID = "household/Household-v0"
ACTION_RE = re.compile(r"^\[(\w+)\](?: <(\w+)> \((\d+)\))?(?: <(\w+)> \((\d+)\))?$")


# ----------------------------------------------------------------- helpers
def _raw(mode: str = "text", env_id: str = SUITE_ID, **kw) -> HouseholdEnv:
    return omnigym.make(env_id, mode=mode, **kw).unwrapped


def _values_equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _assert_same(a, b, what=""):
    assert _values_equal(a, b), f"{what} differ:\n{a!r}\n!=\n{b!r}"


def _random_action(env: HouseholdEnv, info: dict, rng: random.Random, junk: float = 0.0):
    """A random admissible action in the env's action form (sometimes junk)."""
    adm = info[K.ADMISSIBLE_ACTIONS]
    if rng.random() < junk or not adm:
        return rng.choice(["[fly] <moon>", "[grab] <sofa>", "gibberish", "[open] <kitchen>"]) \
            if env.mode == "text" else rng.choice([-1, env.max_actions + 3, len(adm)])
    i = rng.randrange(len(adm))
    return adm[i] if env.mode == "text" else i


def _check_step_contract(env: HouseholdEnv, obs, info):
    assert env.observation_space.contains(obs), "observation outside observation_space"
    for key in (K.SUCCESS, K.INSTRUCTION, K.ADMISSIBLE_ACTIONS, K.ACTION_MASK, K.INVALID_ACTION,
                K.STATE_KEY, K.TASK_ID):
        assert key in info, f"info lacks {key!r}"
    assert type(info[K.INVALID_ACTION]) is bool
    assert type(info[K.SUCCESS]) is bool
    mask = info[K.ACTION_MASK]
    assert isinstance(mask, np.ndarray) and mask.dtype == np.bool_


def _hidden_state_candidate(env: HouseholdEnv):
    """(item, closed container) both outside the character's room, the item not
    already inside that container: moving it there changes nothing visible."""
    w = env.world
    room = w.char.room
    containers = [c for c in range(w.n) if w.has(c, "CAN_OPEN") and w.has(c, "CONTAINERS")
                  and w.has_state(c, "CLOSED") and w.room_of(c) != room and not w.inside_closed(c)]
    items = [i for i in range(w.n) if w.has(i, "GRABBABLE") and not w.is_held(i) and w.room_of(i) != room]
    for c in containers:
        for i in items:
            if w.parent[i] != c and i != c:
                return i, c
    return None


# ------------------------------------------------------- gymnasium checker
def test_every_household_id_is_registered_in_its_namespace():
    assert len(HOUSEHOLD_IDS) >= 2
    for env_id in HOUSEHOLD_IDS:
        assert env_id.startswith("household/") and re.search(r"-v\d+$", env_id), env_id
        assert env_id in gym.registry
    assert SUITE_ID in HOUSEHOLD_IDS


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("env_id", HOUSEHOLD_IDS)
def test_env_checker_passes(env_id, mode):
    env = omnigym.make(env_id, mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings are failures on the raw env
        check_env(env.unwrapped, skip_render_check=True)
    with warnings.catch_warnings():
        # the checker merely recommends the raw env when wrappers are applied
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        check_env(env, skip_render_check=True)
    env.close()


def test_env_checker_heldout_split_and_direct_construction():
    for mode in MODES:
        env = HouseholdEnv(split="heldout", mode=mode, render_mode="ansi")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=1)
        assert info[K.TASK_ID] in env.suite.splits["heldout"]
        assert isinstance(env.render(), str) and env.render().startswith("Task:")


# -------------------------------------------------- text actions: fuzzing
NEAR_MISSES = [
    "[putin] <mug>", "[grab] <nonexistent> (9999)", "[walk] <mug> (abc)", "[[grab]]",
    "<char0> [walk] <kitchen>", "[walk] <kitchen> (999999)", "[walk]", "[]", "[ ]", "[walk] <>",
    "[walk] < >", "[grab] <mug> (-1)", "[grab] <mug> (1e9)", "[put] <mug> <mug>", "[putin] <mug> <mug>",
    "[switchon] <kitchen>", "[open] <bedroom>", "[standup]", "[standup] <sofa>", "[sit] <fridge>",
    "[WALK] <KITCHEN>", "[walk]<kitchen>", "  [walk]   <kitchen>   ", "[walk] <kitchen>\n[grab] <mug>",
    "\n\n", "\x00", "[walk] <kitchen> <bedroom> <bathroom>", "[walk] <kitchen (2)>", "[walk] <<kitchen>>",
    "[walk] <kitchen> (2", "<char> [walk] <kitchen>", "<char12345678901234567890> [walk] <kitchen>",
    "walk to the kitchen", "pick up the mug", "put mug in fridge", "put the mug on the", "the", "please",
    "[grab] <character> (1)", "[walk] <character>", "[lookat] <tv>", "[turnto] <fridge> (0)",
    "[drink] <sofa>", "[read] <fridge>", "[eat] <bed>", "[wash] <fridge>", "[drop] <fridge>",
    "[grab] <mug> (99999999999999999999999999999999999)", "[walk] <kitchen> (" + "9" * 4000 + ")",
    "[" + "walk" * 1000 + "] <kitchen>", "[walk] " + "<kitchen> " * 2000, "é [walk] <kitchen>",
    "[walk] <kitchén>", "[ｗａｌｋ] <kitchen>", "\ud800", "[walk] <\ud800>", "🙂" * 50, "[put] <🙂> <🙂>",
]


def _fuzz_actions(rng: random.Random, n: int) -> list:
    printable = [chr(c) for c in range(32, 127)] + ["\t", "\n", "\r"]
    words = list(A.VERBS) + list(A.ALIASES) + ["mug", "fridge", "kitchen", "sofa", "in", "on", "the",
                                               "<", ">", "[", "]", "(", ")", "12", "<char0>"]
    out: list = []
    for k in range(n):
        kind = k % 12
        if kind == 0:
            out.append("".join(rng.choice(printable) for _ in range(rng.randrange(0, 80))))
        elif kind == 1:
            out.append("".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(rng.randrange(0, 40))))
        elif kind == 2:
            out.append(" ".join(rng.choice(words) for _ in range(rng.randrange(0, 8))))
        elif kind == 3:
            out.append(rng.choice(NEAR_MISSES))
        elif kind == 4:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))
        elif kind == 5:
            out.append(rng.choice([None, 0, -1, 7, 2**80, 3.5, float("nan"), True, [], ["[walk] <kitchen>"],
                                   {}, {"action": "[walk] <kitchen>"}, ("walk", 2, -1), np.int64(3),
                                   np.array(["[walk] <kitchen>"]), object(), b"[walk] <kitchen>",
                                   bytearray(b"[walk]"), 1j]))
        elif kind == 6 and k % 240 == 6:  # a few huge strings (100k characters)
            size = 100_000
            out.append(rng.choice([
                "".join(rng.choice("abcdefghij<>[]()0123") for _ in range(size)),
                "[walk] <" + "a" * size + ">",
                "[grab] " + "<mug> (12) " * (size // 11),
                "x" * size,
                "[" + "a" * size + "]",
                "put " + "mug " * (size // 4) + "in fridge",
            ]))
        else:
            # a bracketed line made of random parts (often nearly right)
            verb = rng.choice(list(A.VERBS) + ["fly", "Walk", "put_in", "switch on", ""])
            args = " ".join(f"<{rng.choice(words)}>" + (f" ({rng.randrange(-3, 120)})" if rng.random() < 0.5 else "")
                            for _ in range(rng.randrange(0, 4)))
            out.append(f"[{verb}] {args}")
    return out


def test_fuzzed_text_actions_never_raise():
    rng = random.Random(1234)
    env = _raw("text")
    obs, info = env.reset(seed=0)
    actions = _fuzz_actions(rng, 10_000)
    n_invalid = n_valid = 0
    for t, action in enumerate(actions):
        if t % 150 == 0:
            obs, info = env.reset(seed=t)
        if t % 7 == 0 and info[K.ADMISSIBLE_ACTIONS]:  # keep the state moving so checks see many situations
            obs, _, _, _, info = env.step(rng.choice(info[K.ADMISSIBLE_ACTIONS]))
            assert info[K.INVALID_ACTION] is False
        key_before = info[K.STATE_KEY]
        obs, reward, terminated, truncated, info = env.step(action)
        _check_step_contract(env, obs, info)
        assert isinstance(reward, float) and np.isfinite(reward)
        assert isinstance(terminated, bool) and truncated is False
        assert info["feedback"], f"no feedback for {action!r:.80}"
        if info[K.INVALID_ACTION]:
            n_invalid += 1
            assert "Invalid action" in obs[:8192], f"no explanation in the observation for {action!r:.80}"
            assert info["feedback"].startswith("Invalid action")
            assert len(info["feedback"]) > len("Invalid action: ")
            assert info[K.STATE_KEY] == key_before, f"invalid action {action!r:.80} changed the state"
        else:
            n_valid += 1
            assert info["feedback"].startswith("Last action: [")
    # the fuzz is not vacuous: both outcomes happen
    assert n_invalid > 5000 and n_valid > 10


def test_non_string_text_actions_say_why():
    env = _raw("text")
    env.reset(seed=3)
    for action in (None, 5, 2.5, [1, 2], {"a": 1}, object(), ("walk", 2, -1)):
        obs, _, _, _, info = env.step(action)
        assert info[K.INVALID_ACTION] is True
        assert "string" in info["feedback"] and type(action).__name__ in info["feedback"]
    # bytes are text the agent wrote: decoded, then parsed
    obs, _, _, _, info = env.step(b"[walk] <kitchen>")
    assert info[K.INVALID_ACTION] is False
    assert env.world.class_names[env.world.char.room] == "kitchen"


def test_long_whitespace_actions_are_parsed_quickly():
    # '[' + many spaces + 'x' makes `\[\s*([a-zA-Z_ ]+?)\s*\]` try O(n^3) splits;
    # '[walk] <' + spaces + 'x' does the same to `<\s*([^<>]+?)\s*>`.
    code = textwrap.dedent("""
        import time, omnigym
        env = omnigym.make("household/Household-v0", mode="text").unwrapped
        env.reset(seed=0)
        for text in ("[" + " " * 100_000 + "x", "[walk] <" + " " * 100_000 + "x"):
            t = time.perf_counter()
            obs, r, term, trunc, info = env.step(text)
            assert info["invalid_action"] is True
            print(round(time.perf_counter() - t, 3))
    """)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        pytest.fail("step() on a 100k-character whitespace action did not return within 3 s")
    assert out.returncode == 0, out.stderr
    assert all(float(t) < 1.0 for t in out.stdout.split())


def test_huge_numeric_ids_do_not_raise():
    env = _raw("text")
    env.reset(seed=0)
    obs, _, _, _, info = env.step("[walk] <kitchen> (" + "9" * 5000 + ")")
    assert info[K.INVALID_ACTION] is True and "Invalid action" in obs


# ------------------------------------------------------------ discrete mode
def test_discrete_bad_indices_are_invalid_not_exceptions():
    env = _raw("discrete")
    obs, info = env.reset(seed=5)
    n_adm = len(info[K.ADMISSIBLE_ACTIONS])
    assert 0 < n_adm < env.max_actions
    bad = [env.max_actions, env.max_actions + 1, 10**9, 2**70, -1, -2, -(10**9), n_adm, n_adm + 1,
           env.max_actions - 1, np.int64(n_adm), np.int64(-1), 1.5, -0.5, 0.25, float("nan"), float("inf"),
           "0", "1", "[walk] <kitchen>", "", None, [0], [0, 1], {}, np.array([0, 1]), 1j, object(),
           True, False, np.bool_(True), np.float64(1.5), np.array(2.7), b"0"]
    for action in bad:
        key = info[K.STATE_KEY]
        obs, reward, terminated, truncated, info = env.step(action)
        assert info[K.INVALID_ACTION] is True, f"{action!r} was accepted"
        assert info["feedback"].startswith("Invalid action"), action
        assert "Invalid action" in obs
        assert info[K.STATE_KEY] == key
        _check_step_contract(env, obs, info)
    # through the gymnasium wrappers too (the passive checker must not raise)
    wrapped = omnigym.make(SUITE_ID, mode="discrete")
    wrapped.reset(seed=5)
    for action in (-1, wrapped.action_space.n, 3.7, "x", None):
        _, _, _, _, info = wrapped.step(action)
        assert info[K.INVALID_ACTION] is True


def test_discrete_integral_index_types_are_accepted():
    env = _raw("discrete")
    for action in (0, np.int64(0), np.int32(0), np.array(0), 0.0):
        _, info = env.reset(seed=2)
        expected = info[K.ADMISSIBLE_ACTIONS][0]
        _, _, _, _, info = env.step(action)
        assert info[K.INVALID_ACTION] is False, repr(action)
        assert info["feedback"] == f"Last action: {expected} (done)."


def test_discrete_non_integral_numpy_floats_are_invalid():
    env = _raw("discrete")
    env.reset(seed=2)
    for action in (np.float64(1.5), np.float32(0.5), np.array(2.7)):
        _, _, _, _, info = env.step(action)
        assert info[K.INVALID_ACTION] is True, f"{action!r} was floored to an index"


def test_discrete_index_executes_the_same_action_as_its_text():
    rng = random.Random(7)
    disc, text = _raw("discrete"), _raw("text")
    steps = 0
    for seed in range(6):
        o_d, i_d = disc.reset(seed=seed)
        o_t, i_t = text.reset(seed=seed)
        # the same state; only the system message's "how to act" differs
        _assert_same((o_d, {**i_d, K.TURN: None}), (o_t, {**i_t, K.TURN: None}), "reset")
        assert i_d[K.TURN][1:] == i_t[K.TURN][1:] and i_d[K.TURN][0] != i_t[K.TURN][0]
        for _ in range(35):
            adm = i_d[K.ADMISSIBLE_ACTIONS]
            index = rng.randrange(len(adm))
            o_d, r_d, te_d, tr_d, i_d = disc.step(index)
            o_t, r_t, te_t, tr_t, i_t = text.step(adm[index])
            assert i_d[K.INVALID_ACTION] is False
            assert i_d["feedback"] == f"Last action: {adm[index]} (done)."
            _assert_same((o_d, r_d, te_d, tr_d, i_d), (o_t, r_t, te_t, tr_t, i_t), f"seed {seed} step")
            steps += 1
            if te_d:
                break
    assert steps > 100


# ------------------------------------------------- action mask/admissible
def test_action_mask_matches_admissible_and_never_overflows():
    env = _raw("discrete")
    rng = random.Random(0)
    most = 0
    for seed in range(300):
        obs, info = env.reset(seed=seed)
        for _ in range(40):
            mask, adm = info[K.ACTION_MASK], info[K.ADMISSIBLE_ACTIONS]
            assert mask.dtype == np.bool_ and mask.shape == (env.action_space.n,)
            assert int(mask.sum()) == len(adm) and mask[:len(adm)].all()
            raw = A.admissible(env.world)  # before the env's cap: nothing may be dropped
            assert len(raw) <= env.max_actions, f"seed {seed}: {len(raw)} admissible > {env.max_actions}"
            assert len(adm) == len(raw) and len(set(adm)) == len(adm)
            most = max(most, len(raw))
            obs, _, terminated, _, info = env.step(rng.randrange(len(adm)))
            assert info[K.INVALID_ACTION] is False
            if terminated:
                break
    assert most > 10  # the walk really visits states with many actions


def test_every_admissible_action_is_valid():
    env = _raw("text")
    rng = random.Random(3)
    checked = 0
    for seed in range(12):
        obs, info = env.reset(seed=100 + seed)
        for _ in range(25):
            snap = env.get_state()
            adm = info[K.ADMISSIBLE_ACTIONS]
            sample = adm if len(adm) <= 40 else rng.sample(adm, 40)
            for action in sample:
                env.set_state(snap)
                _, _, _, _, after = env.step(action)
                assert after[K.INVALID_ACTION] is False, f"admissible {action!r} was rejected: {after['feedback']}"
                assert after["feedback"] == f"Last action: {action} (done)."
                checked += 1
            obs, info = env.set_state(snap)
            obs, _, terminated, _, info = env.step(rng.choice(adm))
            if terminated:
                break
    assert checked > 2000


def test_admissible_actions_are_canonical_virtualhome_lines():
    env = _raw("text")
    _, info = env.reset(seed=11)
    for action in info[K.ADMISSIBLE_ACTIONS]:
        m = ACTION_RE.match(action)
        assert m and m.group(1) in A.VERBS, action


# --------------------------------------------------------------- determinism
@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_episode(mode):
    envs = [_raw(mode), _raw(mode)]
    for seed in (0, 17, 123456):
        rng = random.Random(seed)
        first = [e.reset(seed=seed) for e in envs]
        _assert_same(first[0], first[1], "reset")
        info = first[0][1]
        for _ in range(40):
            action = _random_action(envs[0], info, rng, junk=0.2)
            steps = [e.step(action) for e in envs]
            _assert_same(steps[0], steps[1], f"mode {mode} seed {seed}")
            info = steps[0][4]
            if steps[0][2]:
                break
    # a used env reset with the seed equals a fresh one
    fresh = _raw(mode)
    _assert_same(envs[0].reset(seed=17), fresh.reset(seed=17), "reused vs fresh env")


def test_same_seed_through_gymnasium_make_and_vector_env():
    a = omnigym.make(SUITE_ID, mode="vector")
    b = omnigym.make(SUITE_ID, mode="vector")
    oa, ia = a.reset(seed=9)
    ob, ib = b.reset(seed=9)
    _assert_same((oa, ia), (ob, ib), "make()")
    vec = gym.vector.SyncVectorEnv([lambda: omnigym.make(SUITE_ID, mode="vector") for _ in range(3)])
    obs, infos = vec.reset(seed=[4, 4, 4])
    assert obs.shape == (3,) + a.observation_space.shape
    assert (obs[0] == obs[1]).all() and (obs[1] == obs[2]).all()
    obs, *_ = vec.step(np.zeros(3, dtype=np.int64))
    assert (obs[0] == obs[1]).all()
    vec.close()


def test_same_seed_same_episode_across_processes():
    # Python's hash randomisation must not leak into scenes, observations or plans.
    code = textwrap.dedent("""
        import hashlib, random, omnigym
        from omnigym.environments.household.planner import plan_lines
        env = omnigym.make("household/Household-v0", mode="text").unwrapped
        h = hashlib.sha256()
        for seed in range(5):
            obs, info = env.reset(seed=seed)
            h.update(obs.encode()); h.update(info["state_key"].encode())
            h.update(repr(plan_lines(env.world, env.task.goal)).encode())
            rng = random.Random(seed)
            for _ in range(20):
                obs, r, term, trunc, info = env.step(rng.choice(info["admissible_actions"]))
                h.update(obs.encode()); h.update(info["state_key"].encode())
        print(h.hexdigest())
    """)
    digests = set()
    for hashseed in ("0", "1", "4242"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONHASHSEED": hashseed})
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_returned_arrays_are_not_reused_between_steps():
    # rollout buffers keep references: a later step must not rewrite earlier obs/masks
    env = _raw("vector")
    obs, info = env.reset(seed=6)
    kept = [(obs, info[K.ACTION_MASK], obs.copy(), info[K.ACTION_MASK].copy(), list(info[K.ADMISSIBLE_ACTIONS]))]
    rng = random.Random(0)
    for _ in range(15):
        obs, _, terminated, _, info = env.step(rng.randrange(len(info[K.ADMISSIBLE_ACTIONS])))
        kept.append((obs, info[K.ACTION_MASK], obs.copy(), info[K.ACTION_MASK].copy(),
                     list(info[K.ADMISSIBLE_ACTIONS])))
        if terminated:
            break
    env.reset(seed=7)
    for obs, mask, obs_copy, mask_copy, _ in kept:
        assert np.array_equal(obs, obs_copy) and np.array_equal(mask, mask_copy)


def test_snapshots_move_between_modes():
    text, vector = _raw("text"), _raw("vector")
    _, info = text.reset(seed=10)
    for action in info[K.ADMISSIBLE_ACTIONS][:1] + plan_lines(text.world, text.task.goal)[:2]:
        _, _, _, _, info = text.step(action)
    obs_v, info_v = vector.set_state(text.get_state())
    assert info_v[K.STATE_KEY] == info[K.STATE_KEY]
    assert info_v[K.ADMISSIBLE_ACTIONS] == info[K.ADMISSIBLE_ACTIONS]
    assert vector.observation_space.contains(obs_v)


def test_different_seeds_give_different_scenes():
    env = _raw("text")
    scenes, observations = set(), set()
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        scenes.add((tuple(env.world.class_names), env.world.get_state()))
        observations.add(obs)
    assert len(scenes) == 20
    assert len(observations) >= 19


def test_task_option_picks_the_task():
    env = _raw("text")
    _, info = env.reset(seed=0, options={"task": "put_in:mug:fridge"})
    assert info[K.TASK_ID] == "put_in:mug:fridge" and info[K.INSTRUCTION] == "put the mug in the fridge"
    assert "mug" in env.world.by_class and "fridge" in env.world.by_class
    assert info[K.SUCCESS] is False  # the scene starts with the goal unsatisfied


# ------------------------------------------------------------------ snapshots
def _trajectory(env, actions):
    return [env.step(a) for a in actions]


@pytest.mark.parametrize("mode", MODES)
def test_snapshot_round_trip(mode):
    rng = random.Random(42)
    env = _raw(mode)
    obs, info = env.reset(seed=31)
    for _ in range(7):
        obs, _, terminated, _, info = env.step(_random_action(env, info, rng, junk=0.2))
        assert not terminated
    snap = env.get_state()
    at_snap = (obs, info)
    actions, trajectory = [], []
    cur_info = info
    for _ in range(10):
        action = _random_action(env, cur_info, rng, junk=0.2)
        step = env.step(action)
        actions.append(action)
        trajectory.append(step)
        cur_info = step[4]
    assert env.world.get_state() != snap["world"] or all(s[4][K.INVALID_ACTION] for s in trajectory)

    _assert_same(env.set_state(snap), at_snap, "set_state(obs, info)")
    _assert_same(_trajectory(env, actions), trajectory, "replayed trajectory")

    # into another env, reset with another seed (another scene) ...
    other = _raw(mode)
    other.reset(seed=999)
    _assert_same(other.set_state(snap), at_snap, "set_state into another env")
    _assert_same(_trajectory(other, actions), trajectory, "trajectory in another env")
    # ... and into one that was never reset
    fresh = _raw(mode)
    _assert_same(fresh.set_state(snap), at_snap, "set_state into a fresh env")
    _assert_same(_trajectory(fresh, actions), trajectory, "trajectory in a fresh env")
    # the snapshot itself was not changed by playing on
    _assert_same(env.set_state(snap), at_snap, "second restore")


def test_snapshot_branching_is_independent():
    env = _raw("text")
    _, info = env.reset(seed=8)
    snap = env.get_state()
    outcomes = {}
    for action in info[K.ADMISSIBLE_ACTIONS]:
        env.set_state(snap)
        _, _, _, _, after = env.step(action)
        outcomes[action] = after[K.STATE_KEY]
    # every branch restarts from the same state: replay order does not matter
    for action in reversed(info[K.ADMISSIBLE_ACTIONS]):
        env.set_state(snap)
        assert env.step(action)[4][K.STATE_KEY] == outcomes[action]


# ------------------------------------------------------------------ state_key
def test_state_key_equal_for_equal_states():
    a, b = _raw("text"), _raw("vector")
    _, ia = a.reset(seed=12)
    _, ib = b.reset(seed=12)
    assert ia[K.STATE_KEY] == ib[K.STATE_KEY]  # the key does not depend on the rendering
    start = ia[K.STATE_KEY]
    w = a.world
    here = w.names[w.char.room]
    elsewhere = next(w.names[r] for r in w.rooms if r != w.char.room)
    assert w.char.near == -1 and w.char.facing == -1
    _, _, _, _, i1 = a.step(f"[walk] {elsewhere}")
    assert i1[K.STATE_KEY] != start
    _, _, _, _, i2 = a.step(f"[walk] {here}")
    assert i2[K.INVALID_ACTION] is False
    assert i2[K.STATE_KEY] == start  # same state reached by another path


def test_state_key_changes_exactly_when_the_state_changes():
    env = _raw("text")
    rng = random.Random(5)
    changed = unchanged = 0
    for seed in range(15):
        _, info = env.reset(seed=seed)
        for _ in range(30):
            before_state, before_key = env.world.get_state(), info[K.STATE_KEY]
            _, _, terminated, _, info = env.step(rng.choice(info[K.ADMISSIBLE_ACTIONS]))
            same = env.world.get_state() == before_state
            assert (info[K.STATE_KEY] == before_key) == same
            changed += not same
            unchanged += same
            if terminated:
                break
    assert changed > 100


@pytest.mark.parametrize("mode", ["text", "vector"])
def test_state_key_separates_text_identical_states(mode):
    env = _raw(mode)
    for seed in range(50):
        obs, info = env.reset(seed=seed)
        found = _hidden_state_candidate(env)
        if found:
            break
    else:
        pytest.fail("no scene with a closed container in another room")
    item, container = found
    snap = env.get_state()
    parent, rel, state, char = snap["world"]
    parent, rel = list(parent), list(rel)
    parent[item], rel[item] = container, INSIDE  # hidden: inside a closed container, in another room
    moved = dict(snap, world=(tuple(parent), tuple(rel), state, char))
    obs2, info2 = env.set_state(moved)
    assert env.world.inside_closed(item) and env.world.room_of(item) != env.world.char.room
    obs1, info1 = env.set_state(snap)
    _assert_same(obs1, obs2, "observations")  # the agent cannot tell them apart ...
    assert info1[K.ADMISSIBLE_ACTIONS] == info2[K.ADMISSIBLE_ACTIONS]
    assert info1[K.STATE_KEY] != info2[K.STATE_KEY]  # ... the key can


def test_state_key_method_matches_info_and_covers_the_goal():
    env = _raw("text")
    _, info = env.reset(seed=3, options={"task": "put_in:mug:fridge"})
    assert info[K.STATE_KEY] == env.state_key()
    snap = env.get_state()
    # the very same world posing another task is another situation
    _, other = env.set_state(dict(snap, task=env.suite.task("put_in:mug:microwave")))
    assert other[K.STATE_KEY] != info[K.STATE_KEY] and other[K.STATE_KEY] == env.state_key()
    assert env.set_state(snap)[1][K.STATE_KEY] == info[K.STATE_KEY]
    _, _, _, _, info = env.step(info[K.ADMISSIBLE_ACTIONS][0])
    assert info[K.STATE_KEY] == env.state_key()


# -------------------------------------------------------- partial observability
def _scene_with_hidden_item(env):
    for seed in range(200):
        env.reset(seed=seed)
        w = env.world
        for c in range(w.n):
            if w.has(c, "CAN_OPEN") and w.has_state(c, "CLOSED") and not w.has_state(c, "ON"):
                inside = [i for i in w.children[c] if w.rel[i] == INSIDE and w.has(i, "GRABBABLE")]
                if inside and not w.inside_closed(c):
                    return c, inside[0]
    pytest.fail("no closed container with something grabbable inside in 200 scenes")


def test_closed_containers_hide_their_contents():
    env = _raw("text")
    container, item = _scene_with_hidden_item(env)
    w = env.world
    cname, iname = w.names[container], w.names[item]
    _, _, _, _, info = env.step(f"[walk] {w.names[w.room_of(container)]}")
    obs, _, _, _, info = env.step(f"[walk] {cname}")
    assert info[K.INVALID_ACTION] is False
    assert cname in obs and iname not in obs
    assert not any(iname in a for a in info[K.ADMISSIBLE_ACTIONS])
    for verb in ("walk", "grab"):
        obs, _, _, _, info = env.step(f"[{verb}] {iname}")
        assert info[K.INVALID_ACTION] is True, f"[{verb}] reached a hidden object"
        assert iname not in obs.split("You see:")[1].split("\n")[0]
    # a text observation that names its class only, e.g. "[grab] <mug>", cannot bind to it either
    only_instance = len(w.by_class[w.class_names[item]]) == 1
    if only_instance:
        _, _, _, _, info = env.step(f"[grab] <{w.class_names[item]}>")
        assert info[K.INVALID_ACTION] is True
    obs, _, _, _, info = env.step(f"[open] {cname}")
    assert info[K.INVALID_ACTION] is False
    assert iname in obs
    assert f"[walk] {iname}" in info[K.ADMISSIBLE_ACTIONS]
    assert f"[grab] {iname}" in info[K.ADMISSIBLE_ACTIONS]  # close: directly inside what we stand at
    _, _, _, _, info = env.step(f"[grab] {iname}")
    assert info[K.INVALID_ACTION] is False and env.world.is_held(item)
    # closing it again hides the rest but not what we carry
    obs, _, _, _, info = env.step(f"[close] {cname}")
    assert info[K.INVALID_ACTION] is False and iname in obs


def test_feedback_does_not_reveal_hidden_objects():
    env = _raw("text")
    for seed in range(300):
        env.reset(seed=seed)
        w = env.world
        found = [(c, i) for c in range(w.n) if w.has(c, "CAN_OPEN") and w.has_state(c, "CLOSED")
                 for i in w.children[c] if w.rel[i] == INSIDE and w.has(i, "GRABBABLE")
                 and len(w.by_class[w.class_names[i]]) == 1 and not w.inside_closed(c)]
        if found:
            break
    container, item = found[0]
    env.step(f"[walk] {w.names[w.room_of(container)]}")
    env.step(f"[walk] {w.names[container]}")
    hidden_id = f"({w.nodes[item].id})"
    for probe in (f"[grab] <{w.class_names[item]}>", f"grab {w.class_names[item]}", f"[walk] <{w.class_names[item]}>"):
        obs, _, _, _, info = env.step(probe)
        assert info[K.INVALID_ACTION] is True
        assert hidden_id not in info["feedback"], f"{probe!r} revealed the hidden object: {info['feedback']}"
        assert "inside something closed" not in info["feedback"], info["feedback"]


def test_documented_action_spellings_are_accepted():
    env = _raw("text")
    _, info = env.reset(seed=0)
    w = env.world
    kitchen = w.by_class["kitchen"][0]
    for spelling in ("[walk] <kitchen>", "[walk] <kitchen> (%d)" % w.nodes[kitchen].id, "<char0> [walk] <kitchen>",
                     "[Walk] <Kitchen>", "[walk]<kitchen>", "  [walk]  <kitchen>  ", "walk to the kitchen",
                     "go to kitchen", "[run] <kitchen>", b"[walk] <kitchen>", "[walk] <kitchen>\n[walk] <bedroom>"):
        env.reset(seed=0)
        _, _, _, _, info = env.step(spelling)
        assert info[K.INVALID_ACTION] is False, f"{spelling!r}: {info['feedback']}"
        assert env.world.char.room == env.world.by_class["kitchen"][0], spelling


def test_other_rooms_are_not_observed():
    env = _raw("text")
    obs, info = env.reset(seed=4)
    w = env.world
    away = [i for i in range(w.n) if not w.is_room[i] and w.room_of(i) != w.char.room]
    assert away
    for i in away:
        assert w.names[i] not in obs
    _, _, _, _, info = env.step(f"[walk] {w.names[away[0]]}")
    assert info[K.INVALID_ACTION] is True


# ------------------------------------------------------- rewards, termination
def test_shortest_plan_solves_and_terminates_with_reward_one():
    env = omnigym.make(SUITE_ID, mode="text")
    for seed in range(15):
        obs, info = env.reset(seed=seed)
        plan = plan_lines(env.unwrapped.world, env.unwrapped.task.goal)
        assert plan
        for t, action in enumerate(plan):
            assert action in info[K.ADMISSIBLE_ACTIONS]
            obs, reward, terminated, truncated, info = env.step(action)
            assert info[K.INVALID_ACTION] is False
            last = t == len(plan) - 1
            assert terminated is last and info[K.SUCCESS] is last and truncated is False
            assert reward == (1.0 if last else 0.0)
        assert info["goal_progress"] == 1.0


def test_shortest_plan_in_discrete_mode():
    env = _raw("discrete")
    _, info = env.reset(seed=21)
    for action in plan_lines(env.world, env.task.goal):
        _, reward, terminated, _, info = env.step(info[K.ADMISSIBLE_ACTIONS].index(action))
    assert terminated and info[K.SUCCESS] and reward == 1.0


def test_make_expert_is_the_planner_agent_in_every_mode():
    from omnigym.agents import ExpertAgent
    for mode in MODES:
        env = omnigym.make(SUITE_ID, mode=mode)
        expert = env.unwrapped.make_expert(unused_option=1)  # unknown kwargs are ignored
        assert expert.name == "expert" and expert is not env.unwrapped.make_expert()
        agent = ExpertAgent()
        for seed in range(4):
            obs, info = env.reset(seed=seed)
            agent.reset(env=env, seed=seed)
            shortest = len(plan_lines(env.unwrapped.world, env.unwrapped.task.goal))
            for t in range(shortest):
                obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
                assert info[K.INVALID_ACTION] is False
            assert terminated and info[K.SUCCESS] and reward == 1.0, (mode, seed)


def test_expert_replans_when_the_world_is_not_where_its_plan_expected():
    env = _raw("text")
    expert = env.make_expert()
    obs, info = env.reset(seed=5)
    expert.reset(env=env)
    start = env.get_state()
    first = expert.act(obs, info)
    obs, _, _, _, info = env.step(first)
    # the world goes back to the start behind the expert's back (a restored branch):
    obs, info = env.set_state(start)
    assert expert.act(obs, info) == first  # it plans again instead of replaying step two
    # it planned, but another actor moved first: every later action is still valid and reaches the goal
    for seed in range(6, 12):
        obs, info = env.reset(seed=seed)
        expert.reset(env=env)
        planned = expert.act(obs, info)
        other = next(a for a in reversed(info[K.ADMISSIBLE_ACTIONS]) if a != planned)
        obs, info = env.step(other)[0::4]
        for _ in range(40):
            obs, _, terminated, _, info = env.step(expert.act(obs, info))
            assert not info[K.INVALID_ACTION], info["feedback"]
            if terminated:
                break
        assert info[K.SUCCESS], seed


def test_invalid_penalty_makes_invalid_actions_cost():
    env = omnigym.make(SUITE_ID, mode="text", invalid_penalty=0.25)
    _, info = env.reset(seed=0)
    _, reward, terminated, _, info = env.step("[fly] <moon>")
    assert info[K.INVALID_ACTION] and reward == pytest.approx(-0.25) and not terminated
    _, reward, _, _, info = env.step(info[K.ADMISSIBLE_ACTIONS][0])
    assert not info[K.INVALID_ACTION] and reward == 0.0
    denv = omnigym.make(SUITE_ID, mode="discrete", invalid_penalty=1.0)
    denv.reset(seed=0)
    assert denv.step(denv.action_space.n - 1)[1] == pytest.approx(-1.0)
    # default: no penalty
    plain = omnigym.make(SUITE_ID, mode="text")
    plain.reset(seed=0)
    assert plain.step("[fly] <moon>")[1] == 0.0


def test_time_limit_truncates():
    env = omnigym.make(SUITE_ID, mode="text")
    limit = env.spec.max_episode_steps
    assert limit and limit > 0
    env.reset(seed=0)
    for t in range(limit):
        _, _, terminated, truncated, _ = env.step("[lookat] <nothing>")
        assert not terminated
        assert truncated is (t == limit - 1)


# ------------------------------------------------------------------ turns
def test_text_modes_emit_the_turn_of_each_step():
    for mode in ("text", "discrete"):
        env = _raw(mode)
        obs, info = env.reset(seed=2)
        system, first = info[K.TURN]
        assert system["role"] == "system" and env.task.instruction in system["content"]
        assert first == {"role": "user", "content": obs}
        action = info[K.ADMISSIBLE_ACTIONS][1]
        obs, _, _, _, info = env.step(action if mode == "text" else 1)
        assert info[K.TURN] == [{"role": "assistant", "content": action}, {"role": "user", "content": obs}]
        bad = "[fly] <moon>" if mode == "text" else 10**6
        obs, _, _, _, info = env.step(bad)
        assert info[K.INVALID_ACTION]
        assert info[K.TURN] == [{"role": "assistant", "content": str(bad)}, {"role": "user", "content": obs}]
        assert "Invalid action" in obs
        # a restored snapshot returns the turn of its moment, not the latest one
        snap, at_snap = env.get_state(), info[K.TURN]
        env.step(0 if mode == "discrete" else info[K.ADMISSIBLE_ACTIONS][0])
        assert env.set_state(snap)[1][K.TURN] == at_snap


def test_vector_mode_has_no_turns():
    env = _raw("vector")
    _, info = env.reset(seed=2)
    assert K.TURN not in info
    _, _, _, _, info = env.step(0)
    assert K.TURN not in info


def test_text_action_cut_to_the_action_space():
    env = _raw("text")
    env.reset(seed=0)
    _, _, _, _, info = env.step("[walk] <kitchen>" + " " * env.action_space.max_length)
    assert info[K.INVALID_ACTION] and str(env.action_space.max_length) in info["feedback"]
    assert len(info[K.TURN][0]["content"]) == env.action_space.max_length


def test_obs_mode_and_action_mode_are_not_constructor_arguments():
    with pytest.raises(TypeError):
        HouseholdEnv(obs_mode="vector")
    env = HouseholdEnv(mode="vector")
    assert (env.obs_mode, env.action_mode) == ("vector", "discrete")


# ------------------------------------------------------------------ vector mode
def test_vector_observation_layout_and_action_block():
    env = _raw("vector")
    layout = env.layout
    start, end = layout.offsets()["actions"]
    assert end == layout.size and end - start == 3 * env.max_actions
    assert env.observation_space.shape == (layout.size,) and env.observation_space.dtype == np.float32
    rng = random.Random(2)
    checked = 0
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        for _ in range(25):
            assert obs.dtype == np.float32 and obs.shape == (layout.size,)
            assert env.observation_space.contains(obs)
            adm = info[K.ADMISSIBLE_ACTIONS]
            block = obs[start:end].reshape(env.max_actions, 3)
            assert ((block[:, 0] != 0) == info[K.ACTION_MASK]).all()
            assert (block[len(adm):] == 0).all()
            for row, action in zip(block, adm):
                m = ACTION_RE.match(action)
                verb, a_cls, b_cls = m.group(1), m.group(2), m.group(4)
                assert row[0] == A.VERB_INDEX[verb] + 1
                assert row[1] == (CLASS_INDEX[a_cls] + 1 if a_cls else 0)
                assert row[2] == (CLASS_INDEX[b_cls] + 1 if b_cls else 0)
                checked += 1
            obs, _, terminated, _, info = env.step(rng.randrange(len(adm)))
            if terminated:
                break
    assert checked > 1000


def test_vector_goal_block_tracks_progress():
    env = _raw("vector")
    obs, info = env.reset(seed=3)
    g0, g1 = env.layout.offsets()["goal"]
    before = obs[g0:g1].copy()
    assert before.any()
    for action in plan_lines(env.world, env.task.goal):
        obs, *_ , info = env.step(info[K.ADMISSIBLE_ACTIONS].index(action))
    assert info[K.SUCCESS]
    after = obs[g0:g1]
    slot = env.layout.goal_slot
    n = len(env.task.goal)
    assert [after[k * slot + slot - 1] for k in range(n)] == [1.0] * n


# ------------------------------------------------------------------ bad configs
@pytest.mark.parametrize("kwargs, names", [
    ({"mode": "nope"}, ["text", "discrete", "vector"]),
    ({"templates": ["put_inn"]}, ["put_in", "put_on"]),
    ({"suite": "no_such_suite"}, ["household"]),
    ({"render_mode": "human"}, ["ansi"]),
])
def test_bad_constructor_arguments_name_valid_choices(kwargs, names):
    with pytest.raises(ValueError) as exc:
        HouseholdEnv(**kwargs)
    for name in names:
        assert name in str(exc.value), f"{name!r} missing from: {exc.value}"
    # through make() as well
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's own note about an unknown render_mode
        omnigym.make(SUITE_ID, **kwargs)


def test_unknown_split_names_the_splits():
    with pytest.raises((KeyError, ValueError)) as exc:
        HouseholdEnv(split="test")
    assert "train" in str(exc.value) and "heldout" in str(exc.value)


def test_step_before_reset_is_a_usage_error():
    with pytest.raises(gym.error.ResetNeeded):
        HouseholdEnv().step("[walk] <kitchen>")
    with pytest.raises(gym.error.ResetNeeded):
        HouseholdEnv(mode="discrete").step(0)
    with pytest.raises(gym.error.ResetNeeded):
        omnigym.make(SUITE_ID).step("[walk] <kitchen>")
    with pytest.raises(gym.error.ResetNeeded):
        HouseholdEnv().get_state()


@pytest.mark.parametrize("typo, expected", [
    ("household/PutInn-v0", "household/PutIn-v0"),
    ("household/putin-v0", "household/PutIn-v0"),
    ("household/SwitchOn-v1", "household/SwitchOn-v0"),
    ("houshold/Heat-v0", "household/Heat-v0"),
    ("PutIn", "household/PutIn-v0"),
])
def test_make_misspelt_id_suggests_close_matches(typo, expected):
    with pytest.raises(gym.error.Error) as exc:
        omnigym.make(typo)
    assert expected in str(exc.value), str(exc.value)
