"""Registers the household ids: one per suite (every template) and one per
template, all in every mode. ``omnigym.make("household/PutIn-v0", mode="discrete")``."""
from __future__ import annotations

from omnigym.registry import register
from omnigym.suites import suite_names
from omnigym.tasks.household import DEFAULT_SUITE, load_household_suite

ENTRY = "omnigym.environments.household.env:HouseholdEnv"
EXPERT = "shortest plan from the true state (privileged); re-plans when the world differs from the plan"
MODES = ("text", "discrete", "vector")


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def register_suite(name_or_path: str) -> list[str]:
    """Register a suite's ids (also for a user's own YAML file); returns them."""
    suite = load_household_suite(name_or_path)
    prefix = "" if suite.name == DEFAULT_SUITE else camel(suite.name)
    version = suite.version
    ids = []
    common = dict(family="household", modes=MODES, max_episode_steps=suite.max_steps,
                  suite=suite.path if prefix else suite.name, expert=EXPERT)
    suite_id = f"household/{camel(suite.name)}-v{version}"
    register(suite_id, ENTRY, doc=suite.doc or f"all tasks of the {suite.name} suite",
             kwargs={"suite": suite.path if prefix else suite.name}, **common)
    ids.append(suite_id)
    for template in suite.templates:
        example = next(t for t in suite.tasks.values() if t.template == template)
        env_id = f"household/{prefix}{camel(template)}-v{version}"
        register(env_id, ENTRY, doc=f"{template}: e.g. '{example.instruction}'",
                 kwargs={"suite": suite.path if prefix else suite.name, "templates": [template]}, **common)
        ids.append(env_id)
    return ids


for _name in suite_names("household"):
    register_suite(_name)
