"""The shell family: commands built one argument at a time, masked by per-utility argument grammars (see grammar.py)."""
