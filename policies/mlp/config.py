from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MLPConfig:
    """Options of the MLP actor-critic (``policy=mlp`` in ``omnigym train``)."""

    hidden: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "tanh"             # tanh | relu | silu
    shared_trunk: bool = False           # one trunk for actor and critic (cheaper) or two (PPO default)
    log_std_init: float = 0.0            # Box actions: initial log standard deviation
    masked_logit: float = -1e9           # logit given to masked actions: never sampled
