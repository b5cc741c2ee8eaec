"""MLP actor-critic with action masking (Discrete) or a diagonal Gaussian (Box)."""
