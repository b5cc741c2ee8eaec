"""Hydra configs of ``omnigym train`` (groups: algo, env, policy, resources)."""
