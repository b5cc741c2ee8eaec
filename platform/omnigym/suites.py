"""Declarative task suites: templates, compositional splits and seed panels.

A suite is a YAML file. Each template is a goal over named slots; every
combination of slot values is one task. The held-out split takes a stable,
hash-chosen fraction of each multi-slot template's combinations, with the rule
that every slot value still appears in some training task: held-out tasks are
*novel compositions of seen parts*. Panels fix the evaluation seeds::

    name: household
    version: 0
    max_steps: 40
    heldout_fraction: 0.3
    templates:
      put_in:
        instruction: put the {obj} in the {container}
        goal: [[INSIDE, "{obj}", "{container}"]]
        slots: {obj: [mug, apple], container: [fridge, microwave]}
    panels:
      train: {split: train, first_seed: 0, episodes: 50}
      heldout: {split: heldout, first_seed: 100000, episodes: 50}
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Task:
    id: str                      # "template:value1:value2"
    template: str
    instruction: str
    goal: tuple                  # tuple of predicate tuples
    slots: tuple = ()            # ((slot, value), ...)


@dataclass(frozen=True)
class Panel:
    name: str
    split: str
    seeds: tuple[int, ...]


@dataclass
class TaskSuite:
    name: str
    version: int
    max_steps: int
    tasks: dict[str, Task]
    splits: dict[str, tuple[str, ...]]
    panels: dict[str, Panel]
    doc: str = ""
    path: str | None = None
    templates: tuple[str, ...] = field(default=())

    def split(self, name: str) -> list[Task]:
        if name not in self.splits:
            raise KeyError(f"suite {self.name!r} has no split {name!r}; splits: {sorted(self.splits)}")
        return [self.tasks[t] for t in self.splits[name]]

    def select(self, split: str, templates: list[str] | None = None) -> list[Task]:
        """The tasks of ``split``, only those of ``templates`` when given (what an env plays)."""
        tasks = self.split(split)
        if templates:
            unknown = set(templates) - set(self.templates)
            if unknown:
                raise ValueError(f"unknown templates {sorted(unknown)}; suite has {list(self.templates)}")
            tasks = [t for t in tasks if t.template in templates]
        if not tasks:
            raise ValueError(f"no tasks in split {split!r} for templates {templates}")
        return tasks

    def panel(self, name: str) -> Panel:
        if name not in self.panels:
            raise KeyError(f"suite {self.name!r} has no panel {name!r}; panels: {sorted(self.panels)}")
        return self.panels[name]

    def task(self, task_id: str) -> Task:
        if task_id not in self.tasks:
            import difflib
            close = difflib.get_close_matches(task_id, list(self.tasks), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"suite {self.name!r} has no task {task_id!r}{hint}")
        return self.tasks[task_id]


def _stable_fraction(text: str) -> float:
    """A hash in [0, 1) that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") / 2**64


def _fill(value, bindings: dict[str, str]):
    if isinstance(value, str):
        return value.format(**bindings)
    if isinstance(value, bool):  # YAML 1.1 reads bare ON/OFF/YES/NO as booleans
        raise ValueError(f"a goal holds the boolean {value}; quote words like \"ON\" and \"OFF\"")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"goal entries must be strings, got {value!r}")
    return tuple(_fill(v, bindings) for v in value)


def expand_template(name: str, spec: dict) -> list[Task]:
    slots = spec.get("slots") or {}
    names = list(slots)
    out = []
    for values in itertools.product(*(slots[s] for s in names)):
        bindings = dict(zip(names, values))
        goal = tuple(_fill(tuple(p), bindings) for p in spec["goal"])
        instruction = spec.get("instruction", name).format(**bindings)
        task_id = ":".join([name, *values])
        out.append(Task(task_id, name, instruction, goal, tuple(bindings.items())))
    return out


def heldout_split(tasks: list[Task], fraction: float) -> set[str]:
    """Hold out a hash-chosen fraction of combinations, keeping every slot
    value of the template in at least one training task."""
    if len(tasks) < 2 or not tasks[0].slots or len(tasks[0].slots) < 2 or fraction <= 0:
        return set()
    held: set[str] = set()
    seen_in_train: dict[tuple, int] = {}
    for t in tasks:
        for part in t.slots:
            seen_in_train[part] = seen_in_train.get(part, 0) + 1
    for t in sorted(tasks, key=lambda t: _stable_fraction(t.id)):
        if _stable_fraction(t.id) >= fraction:
            break
        if all(seen_in_train[part] > 1 for part in t.slots):
            held.add(t.id)
            for part in t.slots:
                seen_in_train[part] -= 1
    return held


def _check_template(path: Path, name, tspec) -> None:
    """Structural checks with messages that name the file and template."""
    where = f"{path}: template {name!r}"
    if not isinstance(tspec, dict):
        raise ValueError(f"{where} must be a mapping with 'goal', 'slots' and 'instruction'")
    if not isinstance(tspec.get("goal"), list) or not tspec["goal"]:
        raise ValueError(f"{where} needs a non-empty goal list, e.g. [[HOLDS, mug, \"\"]]")
    slots = tspec.get("slots") or {}
    if not isinstance(slots, dict):
        raise ValueError(f"{where}: 'slots' must map slot names to lists of values")
    for slot, values in slots.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: slot {slot!r} needs a non-empty list of values")
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise ValueError(f"{where}: slot {slot!r} has non-string values {bad}; quote them "
                             "(YAML reads ON/OFF/yes/no as booleans and digits as numbers)")


def load_suite(path: str | Path, validate=None) -> TaskSuite:
    """Load a suite file. ``validate(task)`` may raise ValueError for tasks a
    family cannot pose; the message names the file and template."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("templates"), dict) or not spec["templates"]:
        raise ValueError(f"{path}: a suite needs a non-empty 'templates' mapping (name: {{goal, slots, ...}})")
    fraction = float(spec.get("heldout_fraction", 0.3))
    tasks: dict[str, Task] = {}
    train: list[str] = []
    heldout: list[str] = []
    for name, tspec in spec["templates"].items():
        _check_template(path, name, tspec)
        try:
            expanded = expand_template(str(name), tspec)
        except (KeyError, IndexError) as exc:
            raise ValueError(f"{path}: template {name!r} uses an undefined slot {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"{path}: template {name!r}: {exc}") from exc
        for task in expanded:
            if validate is not None:
                try:
                    validate(task)
                except ValueError as exc:
                    raise ValueError(f"{path}: template {name!r}, task {task.id}: {exc}") from exc
            tasks[task.id] = task
        held = set(tspec.get("heldout", ())) or heldout_split(expanded, fraction)
        for task in expanded:
            (heldout if task.id in held else train).append(task.id)
    splits = {"train": tuple(train), "heldout": tuple(heldout), "all": tuple(tasks)}
    panels = {}
    panel_specs = spec.get("panels") or {}
    if not isinstance(panel_specs, dict):
        raise ValueError(f"{path}: 'panels' must be a mapping of name: {{split, first_seed, episodes}}")
    for pname, pspec in panel_specs.items():
        pspec = pspec if isinstance(pspec, dict) else {}
        split = pspec.get("split", pname)
        if split not in splits or not splits[split]:
            raise ValueError(f"{path}: panel {pname!r} uses empty or unknown split {split!r}")
        first, count = pspec.get("first_seed", 0), pspec.get("episodes", 50)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (first, count)):
            raise ValueError(f"{path}: panel {pname!r}: first_seed and episodes must be integers")
        panels[pname] = Panel(pname, split, tuple(range(first, first + count)))
    return TaskSuite(
        name=spec.get("name", path.stem), version=int(spec.get("version", 0)),
        max_steps=int(spec.get("max_steps", 50)), tasks=tasks, splits=splits,
        panels=panels, doc=spec.get("doc", ""), path=str(path),
        templates=tuple(spec["templates"]),
    )
