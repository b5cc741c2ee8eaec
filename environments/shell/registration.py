"""Registers the shell family's ids."""
from __future__ import annotations

from omnigym.registry import register

register("shell/FreeForm-v0", "omnigym.environments.shell.freeform_env:ShellTaskEnv", family="shell",
         doc="free-form shell tasks (counting, searching, archiving, permissions, text), one command per turn",
         modes=("text",), max_episode_steps=8,
         expert="omnigym.environments.shell.freeform_env:ShellExpert")

CONSTRUCT = "omnigym.environments.shell.construct_env:ShellConstructEnv"
register("shell/Construct-v0", CONSTRUCT, family="shell",
         doc="ShIOEnv command construction over every utility with a grammar (one argument per step)",
         modes=("discrete", "text", "vector"), max_episode_steps=10)


def _register_utilities() -> None:
    from omnigym.environments.shell.grammar import available_utilities
    for util in available_utilities():
        register(f"shell/Construct{util.capitalize()}-v0", CONSTRUCT, family="shell",
                 doc=f"ShIOEnv command construction for {util}", modes=("discrete", "text", "vector"),
                 kwargs={"utility": util}, max_episode_steps=10)


_register_utilities()
