"""Agent-RL objectives for LM policies: group advantage estimators
(``advantages.py``: GRPO, Dr.GRPO, RLOO, GiGPO, SPO's tracker) as pure
functions over reply rows, which the token-level learners broadcast over
each reply's tokens.
"""
