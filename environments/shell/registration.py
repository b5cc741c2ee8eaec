"""Registers the shell family's ids: free-form tasks (panels from their suite)
and command construction (one id over every utility, one per utility)."""
from __future__ import annotations

from omnigym.registry import register
from omnigym.tasks.shell import DEFAULT_SUITE, load_shell_suite

_freeform = load_shell_suite(DEFAULT_SUITE)
register("shell/FreeForm-v0", "omnigym.environments.shell.freeform_env:ShellTaskEnv", family="shell",
         doc="free-form shell tasks (counting, searching, archiving, permissions, text), one command per turn",
         modes=("text",), max_episode_steps=_freeform.max_steps, suite=_freeform.name,
         kwargs={"suite": _freeform.name}, expert="types the task's reference solution (privileged)")

CONSTRUCT = "omnigym.environments.shell.construct_env:ShellConstructEnv"
CONSTRUCT_MODES = ("discrete", "text", "vector")
# Construction has no task suite: seeds pick the utility (and nothing else is random).
CONSTRUCT_PANELS = {"train": (0, 50), "test": (100_000, 50)}
register("shell/Construct-v0", CONSTRUCT, family="shell",
         doc="ShIOEnv command construction over every utility with a grammar (one argument per step)",
         modes=CONSTRUCT_MODES, max_episode_steps=10, panels=CONSTRUCT_PANELS)


def _register_utilities() -> None:
    from omnigym.environments.shell.grammar import available_utilities
    for util in available_utilities():
        register(f"shell/Construct{util.capitalize()}-v0", CONSTRUCT, family="shell",
                 doc=f"ShIOEnv command construction for {util}", modes=CONSTRUCT_MODES,
                 kwargs={"utility": util}, max_episode_steps=10, panels=CONSTRUCT_PANELS)


_register_utilities()
