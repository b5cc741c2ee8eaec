import itertools
import json
import math

import pytest

from omnigym.stats import (
    mean_interval,
    pass_at_k,
    pass_hat_k,
    seed_wilson_interval,
    summarize,
    t_quantile,
    wilson_interval,
)


@pytest.mark.parametrize(
    "successes, n, expected",
    [
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (5, 10, (0.2366, 0.7634)),
        (8, 10, (0.4902, 0.9433)),
    ],
)
def test_wilson_known_values(successes, n, expected):
    lo, hi = wilson_interval(successes, n)
    assert lo == pytest.approx(expected[0], abs=1e-3)
    assert hi == pytest.approx(expected[1], abs=1e-3)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo90, hi90 = wilson_interval(5, 10, confidence=0.90)
    lo95, hi95 = wilson_interval(5, 10)
    assert lo95 < lo90 < 0.5 < hi90 < hi95
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


@pytest.mark.parametrize(
    "p, df, expected",
    [(0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 4, 2.7764), (0.975, 30, 2.0423),
     (0.95, 10, 1.8125), (0.995, 5, 4.0321), (0.025, 4, -2.7764)],
)
def test_t_quantile_table(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-3)


def test_mean_interval_known_value():
    mean, lo, hi = mean_interval([1, 2, 3, 4, 5])
    assert mean == 3.0
    assert (hi - lo) / 2 == pytest.approx(1.963, abs=1e-3)
    assert (mean - lo) == pytest.approx(hi - mean)


def test_mean_interval_edges():
    assert mean_interval([2.5]) == (2.5, 2.5, 2.5)
    assert all(math.isnan(v) for v in mean_interval([]))
    assert mean_interval([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)


def test_pass_k_edge_cases():
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 3) == 1.0
    assert pass_at_k(10, 8, 3) == 1.0  # fewer than k failures: some draw always wins
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_hat_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_hat_k(10, 2, 3) == 0.0
    assert pass_hat_k(4, 4, 4) == 1.0
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="exceeds"):
        pass_hat_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 0)


@pytest.mark.parametrize("n", range(1, 7))
def test_pass_k_brute_force(n):
    """Average over every k-subset of n attempts equals the closed forms."""
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(outcomes, k))
            any_ok = sum(any(s) for s in subsets) / len(subsets)
            all_ok = sum(all(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(any_ok)
            assert pass_hat_k(n, c, k) == pytest.approx(all_ok)


def _records():
    # task a: two groups of 3 resets -> successes [T,T,F] and [F,F,F]
    # task b: one group of 3 resets  -> successes [T,T,T]
    rows = [
        ("a", 0, 0, [True, True, False]),
        ("a", 1, 1, [False, False, False]),
        ("b", 7, 0, [True, True, True]),
    ]
    out = []
    for task, seed, group, results in rows:
        for i, ok in enumerate(results):
            out.append({"task_id": task, "seed": seed, "group": group, "success": ok,
                        "return": 1.0 if ok else -1.0, "length": 10 + i})
    return out


def test_summarize_synthetic():
    s = summarize(_records(), group_size=3)
    assert s["episodes"] == 9 and s["seeds"] == 3
    assert s["success_rate"] == pytest.approx(5 / 9)
    assert s["success_ci"] == pytest.approx(list(seed_wilson_interval([[1, 1, 0], [0, 0, 0], [1, 1, 1]])))
    assert s["return_mean"] == pytest.approx((5 - 4) / 9)
    lo, hi = s["return_ci"]
    assert lo < s["return_mean"] < hi
    assert s["length_mean"] == pytest.approx(11.0)

    assert list(s["pass_at_k"]) == ["1", "2", "3"]
    assert s["pass_at_k"]["1"] == pytest.approx(5 / 9)
    assert s["pass_at_k"]["2"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert s["pass_at_k"]["3"] == pytest.approx(2 / 3)
    assert s["pass_hat_k"]["2"] == pytest.approx((1 / 3 + 0.0 + 1.0) / 3)
    assert s["pass_hat_k"]["3"] == pytest.approx(1 / 3)

    assert list(s["per_task"]) == ["a", "b"]
    a, b = s["per_task"]["a"], s["per_task"]["b"]
    assert a["episodes"] == 6 and a["seeds"] == 2 and a["success_rate"] == pytest.approx(2 / 6)
    assert a["success_ci"] == pytest.approx(list(seed_wilson_interval([[1, 1, 0], [0, 0, 0]])))
    assert a["return_mean"] == pytest.approx((2 - 4) / 6)
    assert b["episodes"] == 3 and b["success_rate"] == 1.0 and b["length_mean"] == 11.0

    assert json.loads(json.dumps(s, allow_nan=False)) == s


def test_summarize_group_size_one_and_empty():
    recs = _records()
    for i, r in enumerate(recs):
        r["group"] = i
    s = summarize(recs)
    assert s["seeds"] == 9 and s["success_ci"] == pytest.approx(list(wilson_interval(5, 9)))
    assert s["pass_at_k"] == {"1": pytest.approx(5 / 9)}
    assert s["pass_hat_k"] == {"1": pytest.approx(5 / 9)}

    empty = summarize([])
    assert empty["episodes"] == 0
    assert empty["success_rate"] is None
    assert empty["success_ci"] == [0.0, 1.0]
    assert empty["per_task"] == {}
    json.dumps(empty, allow_nan=False)


def _copies(outcomes, group_size):
    """Records of ``group_size`` identical resets per seed (one task per seed)."""
    return [{"task_id": f"task_{seed:02d}", "seed": seed, "group": seed, "success": ok,
             "return": float(ok), "length": 5 + seed % 3}
            for seed, ok in enumerate(outcomes) for _ in range(group_size)]


def test_intervals_count_seeds_not_copies_of_a_deterministic_agent():
    one = summarize(_copies([True] * 60, 1))
    four = summarize(_copies([True] * 60, 4), group_size=4)
    assert four["episodes"] == 240 and four["seeds"] == 60
    lo, hi = four["success_ci"]
    assert (round(100 * lo, 1), hi) == (94.0, 1.0)  # 60 seeds, not 240 episodes ([98.4, 100])
    assert four["success_ci"] == pytest.approx(one["success_ci"])
    # Returns and steps too: four copies carry no more evidence than one.
    mixed = [seed % 3 != 0 for seed in range(60)]
    one, four = summarize(_copies(mixed, 1)), summarize(_copies(mixed, 4), group_size=4)
    for key in ("success_ci", "return_ci", "length_ci"):
        assert four[key] == pytest.approx(one[key])


def test_seed_wilson_interval():
    # One episode per seed: the plain Wilson interval.
    assert seed_wilson_interval([[True]] * 7 + [[False]] * 3) == pytest.approx(wilson_interval(7, 10))
    # Rate = mean of per-seed rates; trials = seeds, however many resets each.
    lo, hi = seed_wilson_interval([[1, 1, 0, 0], [1, 0, 0, 0]])
    assert lo < 3 / 8 < hi
    assert seed_wilson_interval([]) == (0.0, 1.0)
    with pytest.raises(ValueError):
        seed_wilson_interval([[1]], confidence=0.0)
