"""Argument grammars for GNU coreutils/findutils/grep utilities (``grammars/NAME.json``), written by ``omnigym.environments.shell.generate_grammars``."""
