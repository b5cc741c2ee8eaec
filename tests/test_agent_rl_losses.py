"""Token-level policy losses against hand-computed cases (policies/agent_rl/losses.py)."""
from __future__ import annotations

import math

import pytest
import torch

from omnigym.policies.agent_rl import losses as L
from omnigym.policies.agent_rl.losses import LossConfig


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_clip_loss_clips_each_side_and_clip_higher_widens_the_top():
    # one row, three tokens with ratios 1.5, 0.5, 1.1; advantage +1 then -1
    old = t([0.0, 0.0, 0.0])
    lp = torch.log(t([1.5, 0.5, 1.1]))
    mask = t([1, 1, 1])
    pos, stats = L.clip_loss(lp, old, torch.tensor([1.0]), mask, LossConfig())
    # A > 0: -min(r A, clip(r) A) = -[1.2, 0.5, 1.1]
    torch.testing.assert_close(pos, -t([1.2, 0.5, 1.1]))
    assert float(stats["clip_fraction"]) == pytest.approx(1 / 3)
    neg, _ = L.clip_loss(lp, old, torch.tensor([-1.0]), mask, LossConfig())
    # A < 0: max(r, clip(r)) -> [1.5, 0.8, 1.1]
    torch.testing.assert_close(neg, t([1.5, 0.8, 1.1]))
    higher, _ = L.clip_loss(lp, old, torch.tensor([1.0]), mask, LossConfig(clip_high=0.28))
    torch.testing.assert_close(higher, -t([1.28, 0.5, 1.1]))


def test_dual_clip_bounds_the_loss_of_negative_advantages():
    lp, old, mask = torch.log(t([5.0, 0.5])), t([0.0, 0.0]), t([1, 1])
    loss, stats = L.clip_loss(lp, old, torch.tensor([-1.0]), mask, LossConfig(dual_clip=3.0))
    torch.testing.assert_close(loss, t([3.0, 0.8]))          # max(5, 1.2) = 5 -> min(5, 3) = 3
    assert float(stats["dual_clip_fraction"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        LossConfig(dual_clip=0.5)


def test_aggregations_by_hand():
    values = t([1.0, 2.0, 3.0], [4.0, 0.0, 0.0])
    mask = t([1, 1, 1], [1, 0, 0])
    assert float(L.aggregate(values, mask, "token-mean")) == pytest.approx(10 / 4)
    assert float(L.aggregate(values, mask, "seq-mean-token-mean")) == pytest.approx((2 + 4) / 2)
    assert float(L.aggregate(values, mask, "seq-mean-token-sum")) == pytest.approx((6 + 4) / 2)
    assert float(L.aggregate(values, mask, "seq-mean-token-sum-norm")) == pytest.approx(10 / (2 * 3))
    assert float(L.aggregate(values, mask, "seq-mean-token-sum-norm", scale=5)) == pytest.approx(10 / 10)
    with pytest.raises(ValueError, match="unknown aggregation"):
        LossConfig(aggregation="mean")


def test_kl_estimators():
    lp, ref = t([math.log(0.5)]), t([math.log(0.25)])
    d = math.log(0.25) - math.log(0.5)
    assert float(L.kl_penalty(lp, ref, "k1")) == pytest.approx(-d)
    assert float(L.kl_penalty(lp, ref, "abs")) == pytest.approx(abs(d))
    assert float(L.kl_penalty(lp, ref, "k2")) == pytest.approx(0.5 * d * d)
    assert float(L.kl_penalty(lp, ref, "k3")) == pytest.approx(math.exp(d) - d - 1)


def test_gspo_uses_the_sequence_ratio_with_each_tokens_own_gradient():
    lp = torch.log(t([1.2, 0.9, 1.0], [1.0, 1.0, 1.0])).requires_grad_(True)
    old, mask = torch.zeros(2, 3, dtype=torch.float64), t([1, 1, 0], [1, 1, 1])
    cfg = LossConfig(variant="gspo", clip_low=0.5, clip_high=0.5)
    per_token, _ = L.gspo_loss(lp, old, torch.tensor([1.0, 1.0]), mask, cfg)
    s0 = math.exp((math.log(1.2) + math.log(0.9)) / 2)         # the third token is padding
    torch.testing.assert_close(per_token[0, :2], -t([s0, s0])[0])
    per_token.mul(mask).sum().backward()
    torch.testing.assert_close(lp.grad[0, :2], -t([s0, s0])[0])   # d/dlp of -A s = -A s (each token)


def test_entropy_aware_advantage_by_hand():
    entropy, mask = t([1.0, 3.0], [2.0, 9.0]), t([1, 1], [1, 0])
    out = L.entropy_aware_advantages(torch.tensor([2.0, -1.0]), entropy, mask, alpha=0.2)
    mean, std = 2.0, 1.0                                       # reply tokens 1, 3, 2 (the 9 is padding)
    expect = t([2 * (1 + 0.2 * (1 - mean) / std), 2 * (1 + 0.2 * (3 - mean) / std)],
               [-1 * (1 + 0.2 * (2 - mean) / std), -1 * (1 + 0.2 * (9 - mean) / std)])
    torch.testing.assert_close(out, expect)


def test_aepo_keeps_a_bounded_gradient_above_the_clip_where_ppo_has_none():
    lp = torch.log(t([2.0])).requires_grad_(True)
    old, mask, entropy = t([0.0]), t([1.0]), t([1.0])
    cfg = LossConfig(variant="aepo")
    loss, _ = L.policy_loss(cfg, logp=lp, old_logp=old, advantages=torch.tensor([1.0]), mask=mask, entropy=entropy)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(-1.2) and float(lp.grad) == pytest.approx(-1.2)
    lp.grad = None
    ppo, _ = L.policy_loss(LossConfig(), logp=lp, old_logp=old, advantages=torch.tensor([1.0]), mask=mask)
    ppo.backward()
    assert float(ppo.detach()) == pytest.approx(-1.2) and float(lp.grad) == 0.0
    with pytest.raises(ValueError, match="token entropies"):
        L.policy_loss(cfg, logp=lp, old_logp=old, advantages=torch.tensor([1.0]), mask=mask)


def test_clip_cov_detaches_a_share_of_tokens_inside_the_covariance_window():
    torch.manual_seed(0)
    lp = torch.randn(4, 50, dtype=torch.float64)
    adv = torch.tensor([3.0, -3.0, 1.0, -1.0], dtype=torch.float64)
    mask = torch.ones(4, 50, dtype=torch.float64)
    cfg = LossConfig(variant="clip_cov", clip_low=1.0, clip_high=1.0, cov_ratio=0.02, cov_bounds=(0.5, 5.0))
    full, _ = L.clip_loss(lp, lp.detach(), adv, mask, cfg)
    out, stats = L.clip_cov_loss(lp, lp.detach(), adv, mask, cfg, generator=torch.Generator().manual_seed(1))
    zeroed = (out == 0) & (full != 0)
    assert int(zeroed.sum()) == int(stats["cov_selected"]) == 4        # floor(0.02 * 200)
    cov = L._covariance(lp, adv, mask)
    assert bool(((cov[zeroed] > 0.5) & (cov[zeroed] < 5.0)).all())


def test_kl_cov_penalises_the_top_covariance_tokens():
    lp = torch.log(t([1.5, 1.0, 0.8], [1.0, 1.2, 1.0]))
    old = torch.zeros(2, 3, dtype=torch.float64)
    adv, mask = torch.tensor([1.0, -1.0]), torch.ones(2, 3, dtype=torch.float64)
    cfg = LossConfig(variant="kl_cov", cov_ratio=1 / 6, kl_cov_coef=1.0)
    out, stats = L.kl_cov_loss(lp, old, adv, mask, cfg)
    base = -adv[:, None].double() * lp.exp()
    cov = L._covariance(lp, adv, mask).flatten()
    top = int(cov.argmax())
    expect = base.flatten().clone()
    expect[top] += abs(float(lp.flatten()[top]))
    torch.testing.assert_close(out.flatten(), expect)
    assert int(stats["cov_selected"]) == 1


def test_policy_loss_adds_kl_to_the_reference_and_the_entropy_bonus():
    lp, old, mask = t([0.0, 0.0]), t([0.0, 0.0]), t([1, 1])
    ref, entropy = torch.log(t([0.5, 0.5])), t([1.0, 3.0])
    base, _ = L.policy_loss(LossConfig(), logp=lp, old_logp=old, advantages=torch.tensor([1.0]), mask=mask)
    cfg = LossConfig(kl_coef=0.1, entropy_coef=0.01)
    loss, stats = L.policy_loss(cfg, logp=lp, old_logp=old, advantages=torch.tensor([1.0]), mask=mask,
                                entropy=entropy, ref_logp=ref)
    d = math.log(0.5)
    assert float(loss) == pytest.approx(float(base) + 0.1 * (math.exp(d) - d - 1) - 0.01 * 2.0)
    assert float(stats["entropy"]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="ref_logp"):
        L.policy_loss(cfg, logp=lp, old_logp=old, advantages=torch.tensor([1.0]), mask=mask)
    with pytest.raises(ValueError, match="unknown loss variant"):
        LossConfig(variant="ppo2")
