"""The RLlib bridge: omnigym envs and policies on RLlib's new API stack.

Ray is imported only inside these modules, never by ``import omnigym``.
"""
