"""Small, dependency-light statistics for evaluation results.

Only ``numpy`` and the standard library are used so that summaries can be
computed anywhere the core package imports; SciPy is deliberately not
required. The Student t quantile is obtained by bisection on an exact t CDF
(regularised incomplete beta function), which is accurate for any confidence
level and any number of degrees of freedom.

Independent seeds, not episodes: ``summarize`` receives episodes in groups
(``group_size`` resets of one seed) and every interval counts the seeds.
Resets of one seed are not independent draws: a deterministic agent repeats
itself exactly, so four copies of 60 seeds carry the evidence of 60
episodes, not 240. Success is a Wilson interval whose trials are the seeds
and whose rate is the mean of the per-seed success rates
(:func:`seed_wilson_interval`); return and steps are Student t intervals
over per-seed means. Why Wilson over seeds rather than the alternatives:

- a per-seed rate lies in [0, 1], so its variance is at most p(1 - p) for
  mean p; Wilson with n = seeds is therefore valid whatever the correlation
  inside a group: exact when every group is all-or-nothing (deterministic
  agents), conservative (about sqrt(group_size) wider) when the tries of a
  seed are independent, as for a random agent;
- a t or bootstrap interval over per-seed rates collapses to a point when
  every seed succeeds, the usual case for an expert;
- an estimated design effect (Korn and Graubard's effective sample size) is
  undefined at 0% and 100% and jumps next to them: one success in 240
  would give a narrower interval than none.

With ``group_size`` 1 every episode is its own seed and nothing changes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import NormalDist
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "wilson_interval",
    "seed_wilson_interval",
    "mean_interval",
    "t_quantile",
    "pass_at_k",
    "pass_hat_k",
    "summarize",
]


# --------------------------------------------------------------------------
# Distributions
# --------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges fast only on one side of the mean.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t (``p`` in (0, 1), ``df`` > 0) by bisection.

    Bisection on the exact CDF is slower than a closed-form approximation
    but is only ever called a handful of times per report and stays accurate
    for the tiny sample sizes (df = 1, 2, ...) evaluations often have.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:  # pragma: no cover - only for absurd p with df ~ 0
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


# --------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------


def _wilson(p: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval for rate ``p`` observed over ``n`` trials."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    # At 0% and 100% the bound is exactly 0 or 1 (rounding would leave 0.9999...).
    return (0.0 if p == 0.0 else max(0.0, center - half), 1.0 if p == 1.0 else min(1.0, center + half))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Preferred over the normal (Wald) interval because it stays inside [0, 1]
    and keeps sensible width at 0/n and n/n, which are common in agent
    evaluations. With no trials nothing is known, so (0, 1) is returned.
    """
    _check_confidence(confidence)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    return _wilson(successes / n, n, confidence)


def seed_wilson_interval(groups: Sequence[Sequence[bool]], confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval for a success rate over seeds: ``groups`` holds the
    outcomes of each seed's resets; the trials are the seeds and the rate is
    the mean of their success rates (see the module docstring for why).
    Equals :func:`wilson_interval` when each group holds one episode."""
    _check_confidence(confidence)
    rates = [sum(map(bool, g)) / len(g) for g in groups if len(g)]
    if not rates:
        return (0.0, 1.0)
    return _wilson(sum(rates) / len(rates), len(rates), confidence)


def mean_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean with a Student t confidence interval: ``(mean, low, high)``.

    The t interval (rather than a normal one) matters because evaluation runs
    often have only a few episodes. A single value has no spread estimate, so
    its interval collapses to the value; no values give a NaN triple.
    """
    _check_confidence(confidence)
    x = np.asarray(list(values), dtype=float).ravel()
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if x.size == 1:
        return (mean, mean, mean)
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    half = t_quantile(0.5 + confidence / 2.0, x.size - 1) * sem
    return (mean, mean - half, mean + half)


# --------------------------------------------------------------------------
# pass@k and pass^k
# --------------------------------------------------------------------------


def _check_nck(n: int, c: int, k: int) -> None:
    if n < 0 or c < 0 or c > n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got k={k}")
    if k > n:
        raise ValueError(
            f"k={k} exceeds the number of samples n={n}; "
            "pass@k/pass^k need at least k attempts per problem"
        )


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k).

    The probability that at least one of k attempts, drawn without
    replacement from n attempts of which c succeeded, is a success.
    """
    _check_nck(n, c, k)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k (as in tau-bench): C(c, k) / C(n, k).

    The probability that all of k attempts succeed, i.e. a measure of
    reliability rather than of best-of-k capability.
    """
    _check_nck(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


# --------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------


def _num(x: float) -> float | None:
    """Plain float for JSON; NaN/inf become ``None`` so output is strict JSON."""
    x = float(x)
    return x if math.isfinite(x) else None


def _seed_means(values: Sequence[float], seeds: Sequence[Sequence[int]]) -> list[float]:
    """The mean of ``values`` over each seed's episodes (indices)."""
    return [float(np.mean([values[i] for i in idx])) for idx in seeds]


def _success_stats(success: Sequence[bool], seeds: Sequence[Sequence[int]]) -> dict[str, Any]:
    rates = _seed_means(success, seeds)
    return {"success_rate": float(np.mean(rates)) if rates else None,
            "success_ci": list(seed_wilson_interval([[success[i] for i in idx] for idx in seeds]))}


def summarize(records: Sequence[Mapping[str, Any]], group_size: int = 1) -> dict[str, Any]:
    """Aggregate episode records into a JSON-serialisable summary.

    Each record needs ``task_id``, ``seed``, ``group``, ``success``,
    ``return`` and ``length``. Episodes sharing ``(task_id, group)`` are
    repeated resets of the same seed: every rate and mean is the mean over
    seeds of the per-seed means (with equal group sizes, the episode mean)
    and every interval counts seeds, not episodes (``seeds`` says how many;
    see the module docstring). pass@k / pass^k are computed per group and
    averaged over the groups holding at least k episodes, for
    k = 1..group_size. Dictionary keys are strings so the result survives a
    JSON round trip unchanged. Undefined numbers (e.g. the mean of nothing)
    are ``None``.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    success = [bool(r["success"]) for r in records]
    returns = [float(r["return"]) for r in records]
    lengths = [float(r["length"]) for r in records]

    by_seed: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_seed[(str(r["task_id"]), int(r["group"]))].append(i)
    seeds = list(by_seed.values())

    r_mean, r_lo, r_hi = mean_interval(_seed_means(returns, seeds))
    l_mean, l_lo, l_hi = mean_interval(_seed_means(lengths, seeds))

    pass_k: dict[str, float] = {}
    pass_hat: dict[str, float] = {}
    for k in range(1, group_size + 1):
        eligible = [[success[i] for i in idx] for idx in seeds if len(idx) >= k]
        if not eligible:
            continue
        pass_k[str(k)] = float(np.mean([pass_at_k(len(g), sum(g), k) for g in eligible]))
        pass_hat[str(k)] = float(np.mean([pass_hat_k(len(g), sum(g), k) for g in eligible]))

    seeds_of_task: dict[str, list[list[int]]] = defaultdict(list)
    for (task_id, _), idx in by_seed.items():
        seeds_of_task[task_id].append(idx)
    per_task = {}
    for task_id in sorted(seeds_of_task):
        task_seeds = seeds_of_task[task_id]
        per_task[task_id] = {
            "episodes": sum(len(idx) for idx in task_seeds),
            "seeds": len(task_seeds),
            **_success_stats(success, task_seeds),
            "return_mean": _num(np.mean(_seed_means(returns, task_seeds))),
            "length_mean": _num(np.mean(_seed_means(lengths, task_seeds))),
        }

    return {
        "episodes": len(records),
        "seeds": len(seeds),
        **_success_stats(success, seeds),
        "return_mean": _num(r_mean),
        "return_ci": [_num(r_lo), _num(r_hi)],
        "length_mean": _num(l_mean),
        "length_ci": [_num(l_lo), _num(l_hi)],
        "pass_at_k": pass_k,
        "pass_hat_k": pass_hat,
        "per_task": per_task,
    }
