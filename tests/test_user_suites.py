"""A user's own household suite: panels on splits that come out empty, the ids
``register_suite`` makes, and a suite that could pass for the built-in one."""
from __future__ import annotations

import textwrap

import gymnasium
import pytest

import omnigym
from omnigym import info_keys as K
from omnigym import registry
from omnigym.environments.household.registration import register_suite
from omnigym.suites import load_suite
from omnigym.tasks.household import load_household_suite

# The README's first example: 2 x 2 x 1 combinations, too few to hold any out.
READING_CORNER = """\
    name: my_chores
    version: 0
    doc: Evening chores with books, candles and lamps.
    max_steps: 40
    heldout_fraction: 0.3
    templates:
      reading_corner:
        instruction: put the {obj} on the {surface} and turn on the {lamp}
        goal: [["ON", "{obj}", "{surface}"], [STATE, "{lamp}", "ON"]]
        slots: {obj: [book, candle], surface: [desk, nightstand], lamp: [tablelamp]}
"""
TIDY_UP = """\
      tidy_up:
        instruction: put the {obj} on the {surface}
        goal: [["ON", "{obj}", "{surface}"]]
        slots: {obj: [book, cellphone, remotecontrol], surface: [coffeetable, sofa, nightstand]}
"""


def write(tmp_path, text: str, name: str = "my_chores.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def registrations():
    """Ids registered by a test are removed after it (other tests list every household id)."""
    before = set(gymnasium.registry)
    yield
    for env_id in set(gymnasium.registry) - before:
        del gymnasium.registry[env_id]
        registry._ENTRIES.pop(env_id, None)


def test_default_panels_skip_a_split_that_is_empty(tmp_path):
    suite = load_suite(write(tmp_path, READING_CORNER))
    assert suite.splits["heldout"] == ()
    assert set(suite.panels) == {"train", "test"}


def test_a_written_panel_on_an_empty_split_says_why_in_one_line(tmp_path):
    path = write(tmp_path, READING_CORNER + "    panels:\n      heldout: {split: heldout, episodes: 5}\n")
    with pytest.raises(ValueError) as exc:
        load_household_suite(str(path))
    message = str(exc.value)
    assert "\n" not in message
    assert "panel 'heldout'" in message and "too few slot combinations to hold any out" in message
    assert "remove the panel" in message


def test_a_panel_on_an_unknown_split_names_the_splits(tmp_path):
    path = write(tmp_path, READING_CORNER + "    panels:\n      quick: {split: test, episodes: 5}\n")
    with pytest.raises(ValueError, match=r"unknown split 'test'; splits: train, heldout"):
        load_suite(path)


def test_register_suite_returns_the_documented_ids_and_they_play_the_users_tasks(tmp_path, registrations):
    path = write(tmp_path, READING_CORNER + TIDY_UP + "    panels:\n      train: {split: train, episodes: 20}\n")
    ids = register_suite(path)
    assert ids == ["household/MyChores-v0", "household/MyChoresReadingCorner-v0", "household/MyChoresTidyUp-v0"]
    assert {e.id for e in omnigym.list_envs("household")} >= set(ids)
    panels = registry.panels_of("household/MyChores-v0")
    assert panels["train"] == ("train", list(range(20))) and panels["heldout"][0] == "heldout"
    env = omnigym.make("household/MyChoresTidyUp-v0", mode="discrete")
    _, info = env.reset(seed=0)
    assert info[K.TASK_ID].startswith("tidy_up:")
    env.close()


def test_a_users_suite_named_like_the_built_in_one_is_refused(tmp_path, registrations):
    """Its ids would be the built-in suite's: before, the built-in tasks were silently played instead."""
    path = write(tmp_path, READING_CORNER.replace("name: my_chores", "name: household"), "copy.yaml")
    with pytest.raises(ValueError, match="built-in suite's; give yours another 'name:'"):
        register_suite(str(path))
    assert registry.entry("household/Household-v0").suite == "household"


def test_an_id_of_one_template_has_only_the_panels_its_tasks_fill(tmp_path):
    suite = load_suite(write(tmp_path, READING_CORNER + TIDY_UP))
    assert set(suite.panels_for(["tidy_up"])) == {"train", "test", "heldout"}
    assert set(suite.panels_for(["reading_corner"])) == {"train", "test"}   # 2 x 2: nothing held out
    assert suite.panels_for(None) == suite.panels


def test_a_written_panel_replacing_a_default_keeps_its_split(tmp_path):
    suite = load_suite(write(tmp_path, READING_CORNER + "    panels:\n      test: {first_seed: 7, episodes: 3}\n"))
    assert suite.panel("test").split == "train" and suite.panel("test").seeds == (7, 8, 9)
