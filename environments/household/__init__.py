"""The household family: a VirtualHome-like symbolic world (see env.py)."""
