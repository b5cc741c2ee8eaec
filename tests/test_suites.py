"""Declarative task suites: the household suite's compositional splits, fixed
seed panels, user-defined YAML suites and the errors a bad YAML file gives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

import omnigym
from omnigym import info_keys as K
from omnigym.suites import Task, TaskSuite, heldout_split, load_family_suite, load_suite, suite_names
from omnigym.tasks.household import load_household_suite

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite() -> TaskSuite:
    return load_household_suite()


# ------------------------------------------------------------ household suite
def test_household_suite_loads(suite):
    assert suite.name == "household" and suite.max_steps > 0
    assert "household" in suite_names("household")
    assert load_household_suite("household") is suite  # by name, cached
    assert len(suite.templates) >= 5 and len(suite.tasks) > 50
    for task in suite.tasks.values():
        assert task.template in suite.templates
        assert task.id.split(":")[0] == task.template
        assert task.instruction and "{" not in task.instruction
        assert task.goal and all(len(p) == 3 and all(isinstance(x, str) for x in p) for p in task.goal)


def test_splits_are_disjoint_and_cover_every_task(suite):
    train, heldout = set(suite.splits["train"]), set(suite.splits["heldout"])
    assert train and heldout
    assert not train & heldout
    assert train | heldout == set(suite.tasks) == set(suite.splits["all"])
    assert len(suite.splits["train"]) == len(train)  # no duplicates
    assert len(suite.splits["heldout"]) == len(heldout)


def test_heldout_tasks_are_novel_compositions_of_seen_parts(suite):
    train = [suite.tasks[t] for t in suite.splits["train"]]
    seen_parts = {(t.template, part) for t in train for part in t.slots}
    train_combos = {(t.template, t.slots) for t in train}
    held_templates = set()
    for task_id in suite.splits["heldout"]:
        task = suite.tasks[task_id]
        assert len(task.slots) >= 2, f"{task_id}: a single-slot task cannot be a novel composition"
        for part in task.slots:
            assert (task.template, part) in seen_parts, f"{task_id}: {part} never seen in training"
        assert (task.template, task.slots) not in train_combos
        held_templates.add(task.template)
    # every template with at least two slots and enough combinations holds some out
    multi = {t.template for t in suite.tasks.values() if len(t.slots) >= 2}
    assert held_templates <= multi
    assert len(held_templates) >= len(multi) - 1


def test_every_template_still_trains(suite):
    for template in suite.templates:
        assert any(suite.tasks[t].template == template for t in suite.splits["train"]), template


def test_panels_have_fixed_seeds(suite):
    assert set(suite.panels) == {"train", "test", "heldout"}
    train, test, heldout = suite.panel("train"), suite.panel("test"), suite.panel("heldout")
    assert train.split == test.split == "train" and heldout.split == "heldout"
    assert train.seeds == tuple(range(0, 60))
    assert test.seeds == tuple(range(200000, 200060))  # the default: train's tasks on unseen seeds
    assert heldout.seeds == tuple(range(100000, 100060))
    assert not set(train.seeds) & set(heldout.seeds) and not set(train.seeds) & set(test.seeds)
    fresh = load_suite(suite.path)  # a second load (no cache) gives the very same panels and splits
    assert fresh.panels == suite.panels and fresh.splits == suite.splits


def test_splits_are_stable_across_processes():
    code = ("import json; from omnigym.tasks.household import load_household_suite as l; s = l();"
            "print(json.dumps({'h': list(s.splits['heldout']), 'p': {k: list(v.seeds) for k, v in s.panels.items()}}))")
    outs = []
    for hashseed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        outs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]
    here = load_household_suite()
    assert outs[0]["h"] == list(here.splits["heldout"])


def test_panel_episodes_pose_tasks_of_their_split(suite):
    from omnigym.environments.household.env import HouseholdEnv
    for name, panel in suite.panels.items():
        env = HouseholdEnv(split=panel.split)
        for seed in panel.seeds[:10]:
            _, info = env.reset(seed=seed)
            assert info[K.TASK_ID] in suite.splits[panel.split]


def test_unknown_panel_split_and_task_have_helpful_errors(suite):
    with pytest.raises(KeyError, match="train"):
        suite.split("test")
    with pytest.raises(KeyError, match="heldout"):
        suite.panel("nope")
    with pytest.raises(KeyError, match="put_in:mug:fridge"):
        suite.task("put_in:mug:fridgee")


def test_heldout_split_keeps_every_value_in_training():
    from omnigym.suites import expand_template
    spec = {"goal": [["INSIDE", "{a}", "{b}"]], "slots": {"a": ["x1", "x2", "x3", "x4"], "b": ["y1", "y2", "y3"]}}
    tasks = expand_template("t", spec)
    for fraction in (0.3, 0.6, 0.99):
        held = heldout_split(tasks, fraction)
        train = [t for t in tasks if t.id not in held]
        assert held, fraction
        for part in {p for t in tasks for p in t.slots}:
            assert any(part in t.slots for t in train), (fraction, part)
    single = expand_template("s", {"goal": [["HOLDS", "{a}", ""]], "slots": {"a": ["x", "y", "z"]}})
    assert heldout_split(single, 0.9) == set()


# ------------------------------------------------------ user-defined suites
USER_SUITE = """\
name: omnitest_user_suite
version: 3
doc: a tiny suite written by a user
max_steps: 25
heldout_fraction: 0.5
templates:
  fetch:
    instruction: fetch the {obj} and put it on the {surface}
    goal: [["ON", "{obj}", "{surface}"]]
    slots:
      obj: [mug, apple, book]
      surface: [kitchentable, coffeetable]
  power:
    instruction: turn on the {device}
    goal: [[STATE, "{device}", "ON"]]
    slots:
      device: [tv, microwave]
panels:
  quick: {split: train, first_seed: 7, episodes: 3}
"""


def _write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_user_suite_loads_from_a_path(tmp_path):
    path = _write(tmp_path, USER_SUITE)
    suite = load_household_suite(str(path))
    assert suite.name == "omnitest_user_suite" and suite.version == 3 and suite.max_steps == 25
    assert suite.templates == ("fetch", "power")
    assert set(suite.tasks) == {f"fetch:{o}:{s}" for o in ("mug", "apple", "book")
                                for s in ("kitchentable", "coffeetable")} | {"power:tv", "power:microwave"}
    assert suite.tasks["power:tv"].goal == (("STATE", "tv", "ON"),)
    assert suite.tasks["fetch:mug:coffeetable"].instruction == "fetch the mug and put it on the coffeetable"
    assert set(suite.splits["train"]) | set(suite.splits["heldout"]) == set(suite.tasks)
    assert suite.panel("quick").seeds == (7, 8, 9)
    assert Path(suite.path) == path.resolve()


@pytest.fixture
def restore_registry():
    """Registering a user's suite is global: undo it so later tests see the built-in ids only."""
    from omnigym import registry
    omnigym.list_envs()  # load the built-in families first
    gym_before, ours_before = set(gym.registry), dict(registry._ENTRIES)
    yield
    for env_id in set(gym.registry) - gym_before:
        del gym.registry[env_id]
    registry._ENTRIES.clear()
    registry._ENTRIES.update(ours_before)


def test_user_suite_registers_ids_that_make_and_reset(tmp_path, restore_registry):
    from omnigym.environments.household.planner import plan_lines
    from omnigym.environments.household.registration import register_suite
    path = _write(tmp_path, USER_SUITE)
    ids = register_suite(str(path))
    assert "household/OmnitestUserSuite-v3" in ids
    assert {"household/OmnitestUserSuiteFetch-v3", "household/OmnitestUserSuitePower-v3"} <= set(ids)
    listed = {e.id for e in omnigym.list_envs("household")}
    assert set(ids) <= listed
    assert "household/PutIn-v0" in listed  # the built-in ids are still there
    for env_id in ids:
        for mode in ("text", "discrete", "vector"):
            env = omnigym.make(env_id, mode=mode)
            assert env.spec.max_episode_steps == 25
            obs, info = env.reset(seed=0)
            assert env.observation_space.contains(obs)
            task = info[K.TASK_ID]
            if env_id.endswith("Power-v3"):
                assert task.startswith("power:")
            elif env_id.endswith("Fetch-v3"):
                assert task.startswith("fetch:")
            plan = plan_lines(env.unwrapped.world, env.unwrapped.task.goal)
            for action in plan:
                a = action if mode == "text" else info[K.ADMISSIBLE_ACTIONS].index(action)
                obs, reward, terminated, truncated, info = env.step(a)
            assert info[K.SUCCESS] and terminated and reward == 1.0
            env.close()


def test_register_unknown_suite_fails_with_the_choices():
    from omnigym.environments.household.registration import register_suite
    with pytest.raises(ValueError, match="household"):
        register_suite("no_such_suite")


# ------------------------------------------------------------- bad YAML files
BAD_SUITES = {
    "unknown_class": ("""\
        templates:
          grab_it:
            goal: [[HOLDS, "{obj}", ""]]
            slots: {obj: [mug, flux_capacitor]}
        """, ["grab_it", "flux_capacitor"]),
    "unknown_container_class": ("""\
        templates:
          stash:
            goal: [[INSIDE, mug, "{where}"]]
            slots: {where: [fridge, tardis]}
        """, ["stash", "tardis"]),
    "unknown_predicate": ("""\
        templates:
          levitate:
            goal: [[FLOATING, mug, ""]]
        """, ["levitate", "FLOATING", "INSIDE"]),
    "bare_on_state": ("""\
        templates:
          power:
            goal: [[STATE, "{device}", ON]]
            slots: {device: [tv]}
        """, ["power", "ON"]),
    "bare_on_kind": ("""\
        templates:
          place:
            goal: [[ON, mug, kitchentable]]
        """, ["place", "ON"]),
    "undefined_slot_in_goal": ("""\
        templates:
          put:
            goal: [[INSIDE, "{obj}", "{container}"]]
            slots: {obj: [mug]}
        """, ["put", "container"]),
    "undefined_slot_in_instruction": ("""\
        templates:
          put:
            instruction: put the {thing} away
            goal: [[HOLDS, "{obj}", ""]]
            slots: {obj: [mug]}
        """, ["put", "thing"]),
    "unknown_state": ("""\
        templates:
          melt:
            goal: [[STATE, mug, MELTED]]
        """, ["melt", "MELTED"]),
    "unknown_room": ("""\
        templates:
          move:
            goal: [[IN_ROOM, mug, garage]]
        """, ["move", "garage"]),
    "no_goal": ("""\
        templates:
          idle:
            instruction: do nothing
        """, ["idle", "goal"]),
    "not_a_suite": ("""\
        - just
        - a list
        """, ["templates"]),
    "invalid_yaml": ("""\
        templates: {a: [1, 2
        """, ["YAML"]),
    "bad_panel_split": ("""\
        templates:
          hold:
            goal: [[HOLDS, mug, ""]]
        panels:
          test: {split: test, first_seed: 0, episodes: 5}
        """, ["test"]),
    "too_many_predicates": ("""\
        templates:
          busy:
            goal: [[HOLDS, mug, ""], [HOLDS, cup, ""], [HOLDS, plate, ""], [HOLDS, bowl, ""]]
        """, ["busy"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_yaml_raises_value_error_naming_file_and_template(tmp_path, case):
    text, names = BAD_SUITES[case]
    path = _write(tmp_path, text, name=f"{case}.yaml")
    with pytest.raises(ValueError) as exc:
        load_household_suite(str(path))
    message = str(exc.value)
    assert str(path.resolve()) in message or str(path) in message, message
    for name in names:
        assert name in message, f"{name!r} not in: {message}"
    # registering it fails the same way, and registers nothing
    from omnigym.environments.household.registration import register_suite
    before = set(gym.registry)
    with pytest.raises(ValueError):
        register_suite(str(path))
    assert set(gym.registry) == before


def test_missing_suite_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="available"):
        load_household_suite(str(tmp_path / "absent.yaml"))


# Malformed files that should fail like the cases above (ValueError naming the
# file) but currently escape as TypeError/AttributeError or lose the file name.
MALFORMED = {
    # YAML 1.1 reads bare ON/OFF in *slot values* as booleans; the goal check
    # catches them only inside goals, then ":".join(...) of the task id fails.
    "bare_on_in_slot_values": """\
        templates:
          power:
            goal: [[STATE, "{device}", "{state}"]]
            slots: {device: [tv], state: [ON, OFF]}
        """,
    "numeric_slot_values": """\
        templates:
          hold:
            goal: [[HOLDS, "{obj}", ""]]
            slots: {obj: [1, 2]}
        """,
    "templates_is_a_list": """\
        templates:
          - hold
          - grab
        """,
    "templates_is_empty": """\
        templates:
        """,
    "panel_seed_not_a_number": """\
        templates:
          hold:
            goal: [[HOLDS, mug, ""]]
        panels:
          quick: {split: train, first_seed: x}
        """,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_yaml_raises_value_error_naming_the_file(tmp_path, case):
    path = _write(tmp_path, MALFORMED[case], name=f"{case}.yaml")
    with pytest.raises(ValueError) as exc:
        load_household_suite(str(path))
    assert str(path.resolve()) in str(exc.value) or str(path) in str(exc.value), str(exc.value)


# ------------------------------------------------- explicit tasks and panels
MIXED_SUITE = """\
name: mixed
templates:
  power:
    instruction: turn on the {device}
    goal: [[STATE, "{device}", "ON"]]
    slots: {device: [tv, radio]}
tasks:
  tidy_mug:
    instruction: put the mug in the sink
    goal: [[INSIDE, mug, sink]]
    hint: the sink is in the kitchen
  tidy_cup:
    instruction: put the cup in the sink
    goal: [[INSIDE, cup, sink]]
    template: tidy
    split: heldout
panels:
  train: {episodes: 4}
"""


def test_explicit_tasks_load_beside_templates(tmp_path):
    suite = load_household_suite(str(_write(tmp_path, MIXED_SUITE)))
    mug, cup = suite.task("tidy_mug"), suite.task("tidy_cup")
    assert (mug.template, mug.goal, mug.slots) == ("tidy_mug", (("INSIDE", "mug", "sink"),), ())
    assert mug.data == {"hint": "the sink is in the kitchen"} and cup.data == {}
    assert cup.template == "tidy" and suite.templates == ("power", "tidy_mug", "tidy")
    assert suite.splits["train"] == ("power:tv", "power:radio", "tidy_mug")
    assert suite.splits["heldout"] == ("tidy_cup",)
    assert suite.select("heldout", ["tidy"]) == [cup]
    # default panels take the train panel's episode count; the YAML's train panel keeps its defaults too
    assert {n: (p.split, p.seeds) for n, p in suite.panels.items()} == {
        "train": ("train", (0, 1, 2, 3)), "test": ("train", tuple(range(200000, 200004))),
        "heldout": ("heldout", tuple(range(100000, 100004)))}
    # explicit household tasks play like templated ones
    from omnigym.environments.household.env import HouseholdEnv
    _, info = HouseholdEnv(suite=suite, split="heldout").reset(seed=0)
    assert info[K.TASK_ID] == "tidy_cup" and info[K.INSTRUCTION] == "put the cup in the sink"


def test_a_suite_without_heldout_tasks_has_no_heldout_panel(tmp_path):
    path = _write(tmp_path, """\
        tasks:
          hold_mug: {instruction: pick up the mug, goal: [[HOLDS, mug, ""]]}
        """)
    suite = load_suite(path)
    assert set(suite.panels) == {"train", "test"} and suite.splits["heldout"] == ()
    assert suite.panel("train").seeds == tuple(range(50))


def test_task_data_does_not_break_hashing_and_equality():
    a = Task("t", "t", "do it", (), (), {"verify": {"stdout": "1"}})
    b = Task("t", "t", "do it", (), (), {"verify": {"stdout": "2"}})
    assert hash(a) == hash(b) and a != b and a == Task("t", "t", "do it", (), (), {"verify": {"stdout": "1"}})


EXPLICIT_ERRORS = {
    "no_instruction": ("tasks:\n  quiet: {goal: [[HOLDS, mug, \"\"]]}\n", ["quiet", "instruction"]),
    "bad_split": ("tasks:\n  t1: {instruction: x, goal: [[HOLDS, mug, \"\"]], split: test}\n", ["t1", "split"]),
    "goal_not_a_list": ("tasks:\n  t1: {instruction: x, goal: mug}\n", ["t1", "goal"]),
    "bare_on": ("tasks:\n  t1: {instruction: x, goal: [[STATE, tv, ON]]}\n", ["t1", "ON"]),
    "defined_twice": ("templates:\n  t1: {goal: [[HOLDS, mug, \"\"]]}\ntasks:\n  t1: {instruction: x}\n",
                      ["t1", "twice"]),
    "unknown_top_level_key": ("tasks:\n  t1: {instruction: x, goal: [[HOLDS, mug, \"\"]]}\npannels: {}\n",
                              ["pannels"]),
    "household_validation": ("tasks:\n  t1: {instruction: x, goal: [[HOLDS, flux_capacitor, \"\"]]}\n",
                             ["t1", "flux_capacitor"]),
}


@pytest.mark.parametrize("case", sorted(EXPLICIT_ERRORS))
def test_bad_explicit_tasks_raise_value_error_naming_file_and_task(tmp_path, case):
    text, names = EXPLICIT_ERRORS[case]
    path = _write(tmp_path, text, name=f"{case}.yaml")
    with pytest.raises(ValueError) as exc:
        load_household_suite(str(path))
    for name in [str(path.resolve()), *names]:
        assert name in str(exc.value), f"{name!r} not in: {exc.value}"


def test_extras_go_through_the_family_hook(tmp_path):
    path = _write(tmp_path, "tasks:\n  t1: {instruction: x}\nfixture: {files: {a.txt: hi}}\n")
    seen = []
    suite = load_suite(path, parse_extras=lambda extras, where: seen.append(where) or {"parsed": extras})
    assert suite.extras == {"parsed": {"fixture": {"files": {"a.txt": "hi"}}}} and seen == [path]


# ------------------------------------------------------------ family loader
def test_load_family_suite_by_name_and_by_path_is_cached():
    by_name = load_family_suite("household", "household")
    assert load_family_suite("household") is by_name  # the family's DEFAULT_SUITE
    assert load_family_suite("household", by_name.path) is by_name
    assert load_household_suite() is by_name
    shell = load_family_suite("shell")
    assert shell.name == "freeform" and "fixture" in shell.extras and "freeform" in suite_names("shell")


@pytest.mark.parametrize("family, name, expected", [
    ("household", "no_such_suite", ["unknown household suite", "household", "a path to a .yaml file"]),
    ("shell", "nope", ["unknown shell suite", "freeform"]),
    ("gardening", "x", ["no task family 'gardening'", "household", "shell"]),
])
def test_load_family_suite_errors_list_the_choices(family, name, expected):
    with pytest.raises(ValueError) as exc:
        load_family_suite(family, name)
    for text in expected:
        assert text in str(exc.value), str(exc.value)


def test_every_household_id_has_suite_panels():
    for env_id in [e.id for e in omnigym.list_envs("household")]:
        panels = omnigym.registry.panels_of(env_id)
        assert panels["train"] == ("train", list(range(60)))
        assert panels["test"] == ("train", list(range(200000, 200060)))
        # a heldout panel only where this id's templates hold tasks out
        suite = omnigym.registry.suite_of(env_id)
        templates = omnigym.registry.entry(env_id).kwargs.get("templates") or suite.templates
        has_heldout = any(t.template in templates for t in suite.split("heldout"))
        assert ("heldout" in panels) == has_heldout, env_id
        if has_heldout:
            assert panels["heldout"][0] == "heldout"
