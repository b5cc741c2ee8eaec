"""Registers the household ids: one per suite (every template) and one per
template, all in every mode. ``omnigym.make("household/PutIn-v0", mode="discrete")``.

A suite file of your own registers the same way: ``register_suite(path)``
makes ``household/<Name>-v<version>`` (every template of the suite) and
``household/<Name><Template>-v<version>`` (one per template), ``<Name>`` the
suite's ``name`` in CamelCase, and returns them. The built-in suite's ids
have no prefix (``household/Household-v0``, ``household/PutIn-v0``).
"""
from __future__ import annotations

from pathlib import Path

from omnigym.registry import register
from omnigym.suites import suite_names
from omnigym.tasks.household import DEFAULT_SUITE, load_household_suite

ENTRY = "omnigym.environments.household.env:HouseholdEnv"
EXPERT = "shortest plan from the true state (privileged); re-plans when the world differs from the plan"
MODES = ("text", "discrete", "vector")


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _built_in(suite) -> bool:
    from omnigym.tasks import household
    return Path(suite.path).resolve().parent == Path(household.__file__).resolve().parent


def register_suite(name_or_path: str | Path) -> list[str]:
    """Register a suite's ids (a built-in suite's name, or the path of a YAML
    file of your own); returns them."""
    suite = load_household_suite(name_or_path)
    built_in = _built_in(suite)
    if not built_in and suite.name in suite_names("household"):
        # Its ids would replace the built-in suite's.
        raise ValueError(f"{suite.path}: the suite name {suite.name!r} is a built-in suite's; "
                         f"give yours another 'name:' (its ids are named after it)")
    prefix = "" if built_in and suite.name == DEFAULT_SUITE else camel(suite.name)
    # A built-in suite is found by name; a user's file by its absolute path, from any directory.
    where = suite.name if built_in else suite.path
    version = suite.version
    ids = []
    common = dict(family="household", modes=MODES, max_episode_steps=suite.max_steps, suite=where, expert=EXPERT)
    suite_id = f"household/{camel(suite.name)}-v{version}"
    register(suite_id, ENTRY, doc=suite.doc or f"all tasks of the {suite.name} suite",
             kwargs={"suite": where}, **common)
    ids.append(suite_id)
    for template in suite.templates:
        example = next(t for t in suite.tasks.values() if t.template == template)
        env_id = f"household/{prefix}{camel(template)}-v{version}"
        register(env_id, ENTRY, doc=f"{template}: e.g. '{example.instruction}'",
                 kwargs={"suite": where, "templates": [template]}, **common)
        ids.append(env_id)
    return ids


for _name in suite_names("household"):
    register_suite(_name)
