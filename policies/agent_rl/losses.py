"""Token-level policy losses for LM agents, masked, one function per variant.

Every loss takes ``[rows, tokens]`` tensors -- ``logp`` (current policy,
differentiable), ``old_logp`` (the policy that sampled, or the one before
this update), ``advantages`` (``[rows]``, broadcast over tokens, or
``[rows, tokens]``) and ``mask`` (1 on reply tokens) -- and returns the
per-token loss ``L[i, t]`` and detached statistics; ``aggregate`` reduces
``L`` the way the config says. ``policy_loss`` picks the variant by name;
``LossConfig`` holds the knobs with the reference recipes' defaults
(verl's ``core_algos.py``; GSPO's, Clip-Cov's, KL-Cov's and AEPO's scripts).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
VARIANTS = ("clip", "gspo", "aepo", "clip_cov", "kl_cov")
KL_KINDS = ("k1", "abs", "k2", "k3")


@dataclass
class LossConfig:
    variant: str = "clip"            # clip (PPO / DAPO clip-higher / dual clip), gspo, aepo, clip_cov, kl_cov
    clip_low: float = 0.2
    clip_high: float = 0.2           # DAPO's clip-higher: 0.28
    dual_clip: float | None = None   # c > 1 bounds the loss of negative advantages (verl 3.0, DAPO/SPO 10.0)
    aggregation: str = "token-mean"
    scale: float | None = None       # seq-mean-token-sum-norm's constant (Dr.GRPO); None: the padded reply length
    kl_coef: float = 0.0             # KL to a frozen reference policy (needs ref_logp)
    kl_kind: str = "k3"
    entropy_coef: float = 0.0
    aepo_entropy_alpha: float = 0.2  # AEPO's entropy-aware advantage A * (1 + alpha * standardised entropy)
    cov_ratio: float = 2e-4          # Clip-Cov / KL-Cov: fraction of reply tokens selected by covariance
    cov_bounds: tuple[float, float] = (1.0, 5.0)   # Clip-Cov's covariance window
    kl_cov_coef: float = 1.0         # KL-Cov's beta

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown loss variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        if self.kl_kind not in KL_KINDS:
            raise ValueError(f"unknown KL estimator {self.kl_kind!r}; choose one of {', '.join(KL_KINDS)}")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1 (got {self.dual_clip})")


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean", scale: float | None = None):
    """Reduce a per-token ``[rows, tokens]`` loss over the reply tokens.
    ``seq-mean-token-sum-norm`` divides the sum by rows x ``scale`` (the
    padded reply length when None): Dr.GRPO's constant normaliser, per row
    so that its scale stays comparable to ``token-mean``."""
    mask = mask.to(values.dtype)
    masked = values * mask
    if mode == "token-mean":
        return masked.sum() / mask.sum().clamp(min=1.0)
    per_row_tokens = mask.sum(-1)
    rows = (per_row_tokens > 0).to(values.dtype)
    if mode == "seq-mean-token-mean":
        return (masked.sum(-1) / per_row_tokens.clamp(min=1.0) * rows).sum() / rows.sum().clamp(min=1.0)
    if mode == "seq-mean-token-sum":
        return masked.sum(-1).sum() / rows.sum().clamp(min=1.0)
    if mode == "seq-mean-token-sum-norm":
        return masked.sum() / (values.shape[0] * (scale or values.shape[-1]))
    raise ValueError(f"unknown aggregation {mode!r}; choose one of {', '.join(AGGREGATIONS)}")


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimators of KL(current || reference): k1 = lp - ref, |k1|,
    k2 = (lp - ref)^2 / 2, k3 = exp(d) - d - 1 with d = ref - lp (clamped as verl does)."""
    if kind == "k1":
        return logp - ref_logp
    if kind == "abs":
        return (logp - ref_logp).abs()
    if kind == "k2":
        return 0.5 * (logp - ref_logp) ** 2
    if kind == "k3":
        d = (ref_logp - logp).clamp(-20.0, 20.0)
        return (d.exp() - d - 1.0).clamp(-10.0, 10.0)
    raise ValueError(f"unknown KL estimator {kind!r}; choose one of {', '.join(KL_KINDS)}")


def _broadcast(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return (advantages if advantages.dim() == 2 else advantages[:, None]).to(like.dtype).expand_as(like)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def clip_loss(logp, old_logp, advantages, mask, cfg: LossConfig, upper=None):
    """PPO-clip per token with separate low/high bounds (DAPO's clip-higher)
    and, for negative advantages, the dual-clip bound ``-A * c``. ``upper``
    replaces the upper clip bound (AEPO passes a stop-gradient one)."""
    loss, stats, _ = _clip_loss_and_clipped(logp, old_logp, advantages, mask, cfg, upper)
    return loss, stats


def _clip_loss_and_clipped(logp, old_logp, advantages, mask, cfg: LossConfig, upper=None):
    """``clip_loss``'s loss and statistics, and which tokens the clip bound (Clip-Cov needs them)."""
    mask = mask.to(logp.dtype)
    adv = _broadcast(advantages, logp)
    log_ratio = (logp - old_logp).clamp(-20.0, 20.0)
    ratio = log_ratio.exp()
    upper = 1.0 + cfg.clip_high if upper is None else upper
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(torch.clamp(ratio, min=1.0 - cfg.clip_low), max=upper)
    loss = torch.maximum(unclipped, clipped)
    was_clipped = clipped > unclipped
    stats = {"clip_fraction": _masked_mean(was_clipped.to(logp.dtype), mask).detach(),
             "approx_kl": _masked_mean(-log_ratio, mask).detach()}
    if cfg.dual_clip is not None:
        bounded = torch.minimum(loss, -adv * cfg.dual_clip)
        stats["dual_clip_fraction"] = _masked_mean(((loss > bounded) & (adv < 0)).to(logp.dtype), mask).detach()
        loss = torch.where(adv < 0, bounded, loss)
    return loss, stats, was_clipped


def gspo_loss(logp, old_logp, advantages, mask, cfg: LossConfig):
    """GSPO: one ratio per reply, the geometric mean of its token ratios
    (``exp`` of the mean log-ratio), carried by each token with that token's
    own gradient; clipped, without dual clip."""
    mask = mask.to(logp.dtype)
    adv = _broadcast(advantages, logp)
    log_ratio = (logp - old_logp).clamp(-20.0, 20.0)
    seq = (log_ratio * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
    ratio = (seq.detach() + logp - logp.detach()).clamp(max=10.0).exp()
    unclipped, clipped = -adv * ratio, -adv * ratio.clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    stats = {"clip_fraction": _masked_mean((clipped > unclipped).to(logp.dtype), mask).detach(),
             "approx_kl": _masked_mean(-log_ratio, mask).detach()}
    return torch.maximum(unclipped, clipped), stats


def entropy_aware_advantages(advantages, entropy, mask, alpha: float = 0.2):
    """AEPO: ``A * (1 + alpha * H_hat)``, ``H_hat`` the token entropy
    standardised over the batch's reply tokens (std 0 counts as 1), detached."""
    mask = mask.to(entropy.dtype)
    h = entropy.detach()
    mean = _masked_mean(h, mask)
    tokens = mask.sum()
    var = (((h - mean) ** 2) * mask).sum() / (tokens - 1).clamp(min=1.0)
    std = var.sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return _broadcast(advantages, entropy) * (1.0 + alpha * (h - mean) / std)


def aepo_loss(logp, old_logp, advantages, mask, cfg: LossConfig, entropy=None):
    """AEPO: the entropy-aware advantage, and a stop-gradient upper bound
    ``(1 + eps_high) * r / sg(r)``: a token whose ratio passed it keeps the
    gradient ``(1 + eps_high) * A * grad logp`` instead of none."""
    if entropy is None:
        raise ValueError("the aepo loss needs the token entropies of the current policy")
    adv = entropy_aware_advantages(advantages, entropy, mask, cfg.aepo_entropy_alpha)
    ratio = (logp - old_logp).clamp(-20.0, 20.0).exp()
    upper = (1.0 + cfg.clip_high) * ratio / ratio.detach()
    return clip_loss(logp, old_logp, adv, mask, cfg, upper=upper)


def _covariance(logp, advantages, mask):
    """Centred product of advantage and log-prob per reply token (both means over reply tokens)."""
    adv = _broadcast(advantages, logp)
    lp = logp.detach()
    return (adv - _masked_mean(adv, mask)) * (lp - _masked_mean(lp, mask))


def clip_cov_loss(logp, old_logp, advantages, mask, cfg: LossConfig, generator=None):
    """Clip-Cov: the clip loss, with a random ``cov_ratio`` share of the
    reply tokens whose covariance lies in ``cov_bounds`` (and which were not
    clipped) contributing no gradient."""
    mask = mask.to(logp.dtype)
    loss, stats, clipped = _clip_loss_and_clipped(logp, old_logp, advantages, mask, cfg)
    cov = _covariance(logp, advantages, mask)
    low, high = cfg.cov_bounds
    eligible = ((mask > 0) & ~clipped & (cov > low) & (cov < high)).flatten().nonzero().squeeze(-1)
    n_select = min(max(int(cfg.cov_ratio * float(mask.sum())), 1), eligible.numel())
    keep = torch.ones_like(loss).flatten()
    if n_select:
        chosen = eligible[torch.randperm(eligible.numel(), generator=generator, device=eligible.device)[:n_select]]
        keep[chosen] = 0.0
    stats["cov_selected"] = torch.tensor(float(n_select))
    return loss * keep.view_as(loss), stats


def kl_cov_loss(logp, old_logp, advantages, mask, cfg: LossConfig):
    """KL-Cov: the unclipped policy gradient ``-A * r``, plus ``kl_cov_coef
    * |log r|`` on the top ``cov_ratio`` share of reply tokens by covariance."""
    mask = mask.to(logp.dtype)
    adv = _broadcast(advantages, logp)
    log_ratio = (logp - old_logp).clamp(-20.0, 20.0)
    loss = -adv * log_ratio.exp()
    cov = _covariance(logp, advantages, mask).masked_fill(mask == 0, float("-inf")).flatten()
    k = min(max(int(cfg.cov_ratio * float(mask.sum())), 1), int(mask.sum()))
    penalty = torch.zeros_like(loss).flatten()
    if k:
        top = cov.topk(k).indices
        penalty[top] = cfg.kl_cov_coef * log_ratio.flatten()[top].abs()
    stats = {"approx_kl": _masked_mean(-log_ratio, mask).detach(), "cov_selected": torch.tensor(float(k))}
    return loss + penalty.view_as(loss), stats


def policy_loss(cfg: LossConfig, *, logp, old_logp, advantages, mask, entropy=None, ref_logp=None,
                generator=None) -> tuple[torch.Tensor, dict]:
    """The configured variant, aggregated, plus the KL-to-reference and
    entropy terms; returns the scalar loss and detached statistics."""
    if cfg.variant == "clip":
        per_token, stats = clip_loss(logp, old_logp, advantages, mask, cfg)
    elif cfg.variant == "gspo":
        per_token, stats = gspo_loss(logp, old_logp, advantages, mask, cfg)
    elif cfg.variant == "aepo":
        per_token, stats = aepo_loss(logp, old_logp, advantages, mask, cfg, entropy=entropy)
    elif cfg.variant == "clip_cov":
        per_token, stats = clip_cov_loss(logp, old_logp, advantages, mask, cfg, generator=generator)
    else:
        per_token, stats = kl_cov_loss(logp, old_logp, advantages, mask, cfg)
    # GSPO is defined with sequence-mean aggregation whatever the config says.
    mode = "seq-mean-token-mean" if cfg.variant == "gspo" else cfg.aggregation
    loss = aggregate(per_token, mask, mode, cfg.scale)
    stats["policy_loss"] = loss.detach()
    if cfg.kl_coef:
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs the reference policy's log-probs (ref_logp)")
        kl = aggregate(kl_penalty(logp, ref_logp, cfg.kl_kind), mask, mode, cfg.scale)
        loss = loss + cfg.kl_coef * kl
        stats["kl_ref"] = kl.detach()
    if entropy is not None:
        mean_entropy = _masked_mean(entropy, mask.to(entropy.dtype))
        stats["entropy"] = mean_entropy.detach()
        if cfg.entropy_coef:
            loss = loss - cfg.entropy_coef * mean_entropy
    return loss, stats
