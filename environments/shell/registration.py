"""Registers the shell family's ids."""
from __future__ import annotations

from omnigym.registry import register

register("shell/FreeForm-v0", "omnigym.environments.shell.freeform_env:ShellTaskEnv", family="shell",
         doc="free-form shell tasks (counting, searching, archiving, permissions, text), one command per turn",
         modes=("text",), max_episode_steps=8,
         expert="omnigym.environments.shell.freeform_env:ShellExpert")
