"""Registers the tools family's ids: the whole suite and one id per template."""
from __future__ import annotations

from omnigym.registry import register
from omnigym.tasks.tools import DEFAULT_SUITE, load_tools_suite

ENTRY = "omnigym.environments.tools.env:ToolEnv"
EXPERT = "scripted tool calls from the known problem (privileged): the fewest turns to the answer"


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _register() -> None:
    suite = load_tools_suite(DEFAULT_SUITE)
    common = dict(family="tools", modes=("text",), max_episode_steps=suite.max_steps, suite=suite.name,
                  expert=EXPERT)
    register(f"tools/Tools-v{suite.version}", ENTRY, doc=suite.doc, kwargs={"suite": suite.name}, **common)
    for template in suite.templates:
        example = next(t for t in suite.tasks.values() if t.template == template)
        register(f"tools/{camel(template)}-v{suite.version}", ENTRY,
                 doc=f"{template}: e.g. {example.instruction}",
                 kwargs={"suite": suite.name, "templates": [template]}, **common)


_register()
