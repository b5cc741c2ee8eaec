"""Agent-RL objectives for LM policies.

- ``advantages.py``: group advantage estimators (GRPO, Dr.GRPO, RLOO,
  GiGPO, SPO's tracker) as pure functions over reply rows;
- ``losses.py``: token-level policy losses (PPO-clip with clip-higher and
  dual clip, GSPO, AEPO, Clip-Cov, KL-Cov), their aggregations, KL to a
  reference and the entropy bonus, one ``LossConfig`` choosing the variant;
- ``branching.py``: AEPO's entropy-balanced rollout decisions (segment
  entropy, the global/branch budget split, when a path branches).
"""
