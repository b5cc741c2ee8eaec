"""Advantage estimators against hand-computed cases (policies/agent_rl/advantages.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from omnigym.policies.agent_rl import advantages as adv


def test_grpo_normalises_within_each_group_with_the_unbiased_std():
    # group a: scores 1, 0, 0 -> mean 1/3, unbiased std sqrt(1/3); group b: one row keeps its raw score
    out = adv.grpo([1.0, 0.0, 0.0, 0.7], ["a", "a", "a", "b"])
    sd = math.sqrt(1 / 3)
    np.testing.assert_allclose(out, [(2 / 3) / (sd + 1e-6), (-1 / 3) / (sd + 1e-6), (-1 / 3) / (sd + 1e-6),
                                     0.7 / (1 + 1e-6)])


def test_a_group_with_equal_scores_has_zero_advantage_not_nan():
    assert np.all(adv.grpo([1.0, 1.0], ["g", "g"]) == 0.0)


def test_dr_grpo_only_centres():
    np.testing.assert_allclose(adv.dr_grpo([1.0, 0.0, 0.0, 2.0], [0, 0, 0, 1]), [2 / 3, -1 / 3, -1 / 3, 2.0])


def test_rloo_subtracts_the_mean_of_the_others():
    # row 0: 3 - mean(1, 2) = 1.5; row 1: 1 - 2.5 = -1.5; row 2: 2 - 2 = 0; singleton keeps 5
    np.testing.assert_allclose(adv.rloo([3.0, 1.0, 2.0, 5.0], [0, 0, 0, 1]), [1.5, -1.5, 0.0, 5.0])


def test_discounted_returns_run_backwards_within_each_episode():
    out = adv.discounted_returns([0.0, 0.0, 1.0, 2.0], ["e1", "e1", "e1", "e2"], gamma=0.5)
    np.testing.assert_allclose(out, [0.25, 0.5, 1.0, 2.0])


def gigpo_case(**kw):
    """Two episodes of one group. e1: s0 -> s1 -> s2, success (return 1, reward at the end);
    e2: s0 -> s1 (an invalid step there) -> s3, failure. Steps from s0 and s1 share anchors."""
    rows = dict(episode_returns=[1, 1, 1, 0, 0, 0], step_rewards=[0, 0, 1, 0, 0, 0],
                groups=["g"] * 6, episodes=["e1"] * 3 + ["e2"] * 3,
                anchors=["s0", "s1", "s2", "s0", "s1", "s3"], valid=[1, 1, 1, 1, 0, 1], gamma=0.5)
    rows.update(kw)
    return adv.gigpo(**rows)


def test_gigpo_episode_and_anchor_step_advantages_by_hand():
    out = gigpo_case()
    # episode scores after the invalid penalty: 1, 1, 1, 0, -0.1, 0 -> mean 2.9/6 over all rows (cross steps)
    episode = np.array([1, 1, 1, 0, -0.1, 0]) - 2.9 / 6
    # returns (gamma 0.5, penalty in rewards): e1 = 0.25, 0.5, 1; e2 = -0.05, -0.1, 0
    # anchor s0: 0.25 vs -0.05 -> +-0.15; s1: 0.5 vs -0.1 -> +-0.3; s2, s3 alone -> 0
    step = np.array([0.15, 0.3, 0.0, -0.15, -0.3, 0.0])
    np.testing.assert_allclose(out, episode + step, atol=1e-12)
    np.testing.assert_allclose(gigpo_case(omega=0.5), episode + 0.5 * step, atol=1e-12)


def test_gigpo_per_episode_statistics_and_std_mode():
    # cross_steps=False: statistics over one score per episode (first rows: 1 and 0) -> mean 0.5
    out = gigpo_case(cross_steps=False, omega=0.0)
    np.testing.assert_allclose(out, np.array([1, 1, 1, 0, -0.1, 0]) - 0.5, atol=1e-12)
    # mean_std_norm: episode std over episodes is sqrt(0.5); each step group of two has std sqrt(2)*|d|
    out = gigpo_case(cross_steps=False, std=True)
    ep = (np.array([1, 1, 1, 0, -0.1, 0]) - 0.5) / (math.sqrt(0.5) + 1e-6)
    st = np.array([1, 1, 0, -1, -1, 0]) * (1 / math.sqrt(2))   # (x - mean) / std of two values = +-1/sqrt(2)
    np.testing.assert_allclose(out, ep + st, atol=1e-5)


def test_gigpo_groups_steps_only_by_the_state_key_not_the_text():
    # the same observation text in two different states: with state keys the steps are not compared
    by_state = gigpo_case(anchors=["k0", "k1", "k2", "k0", "k9", "k3"], omega=1.0)
    by_text = gigpo_case()
    assert by_state[1] == pytest.approx(by_text[1] - 0.3) and by_state[4] == pytest.approx(by_text[4] + 0.3)
    assert by_state[0] == pytest.approx(by_text[0])


def test_similarity_anchors_cluster_within_groups_only():
    texts = ["you are in the kitchen. a mug.", "you are in the kitchen. a mug!", "the bedroom.",
             "you are in the kitchen. a mug."]
    groups = ["a", "a", "a", "b"]
    exact = adv.similarity_anchors(texts, groups, threshold=1.0)
    assert exact[0] != exact[1] and exact[0] != exact[3] and len(set(exact)) == 4
    close = adv.similarity_anchors(texts, groups, threshold=0.9)
    assert close[0] == close[1] and close[2] != close[0] and close[3] != close[0]


def test_spo_tracker_offline_start_advantage_and_update():
    t = adv.SPOTracker(rho_min=0.875)
    t.init_offline("x", [1, 0, 0, 0, 0, 0, 0, 0])           # 1 of 8: v = 1.5 / 9, alpha + beta = 8
    assert t.alpha["x"] == pytest.approx(8 * 1.5 / 9) and t.beta["x"] == pytest.approx(8 * 7.5 / 9)
    assert t.value("x") == pytest.approx(1.5 / 9) and t.value("new") == 0.5
    np.testing.assert_allclose(t.weights(["x", "new"]), [math.sqrt(1.5 / 9 * 7.5 / 9) + 0.05, 0.55])
    # batch advantages use the values before the update: r - v = 1 - 1/6, 0 - 0.5, then z-scored
    raw = np.array([1 - 1.5 / 9, -0.5])
    np.testing.assert_allclose(t.advantages(["x", "new"], [1, 0]), (raw - raw.mean()) / (raw.std(ddof=1) + 1e-8))
    assert t.rho(0.0) == 0.96 and t.rho(1.0) == 0.875 and t.rho(0.06 * math.log2(1 / 0.9)) == pytest.approx(0.9)
    t.update("x", 1.0, drift=0.0)
    assert t.alpha["x"] == pytest.approx(0.96 * 8 * 1.5 / 9 + 1) and t.beta["x"] == pytest.approx(0.96 * 8 * 7.5 / 9)
    with pytest.raises(ValueError, match="rewards in \\[0, 1\\]"):
        t.update("x", 2.0, drift=0.0)
    clone = adv.SPOTracker()
    clone.load_state_dict(t.state_dict())
    assert clone.value("x") == t.value("x")
