from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ScorerConfig:
    """Options of the action scorer (``policy=scorer``).

    The observation is ``[state | action table]``: the last
    ``slots * fields`` numbers are small integer ids describing each action
    slot (0 = empty). Envs describe this layout themselves (see
    ``HouseholdEnv.policy_layout``), and ``omnigym train`` passes it here.
    """

    state_dim: int = 0                  # length of the state part of the observation
    slots: int = 0                      # action slots (= Discrete n)
    fields: int = 3                     # ids per action (household: verb, object class, destination class)
    vocab: int = 128                    # ids are in [0, vocab)
    embed: int = 32                     # embedding size per field
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    masked_logit: float = -1e9
