"""Declarative task suites: templates, explicit tasks, compositional splits and seed panels.

A suite is a YAML file. Each template is a goal over named slots; every
combination of slot values is one task. The held-out split takes a stable,
hash-chosen fraction of each multi-slot template's combinations, with the rule
that every slot value still appears in some training task: held-out tasks are
*novel compositions of seen parts*. A suite may also list tasks one by one
under ``tasks`` (id: instruction, an optional goal, template and split, and
any fields of the family's own, kept in ``Task.data``). Top-level keys other
than the ones below (e.g. the shell ``fixture``) go to ``TaskSuite.extras``
through the family's ``parse_extras`` hook::

    name: household                      # ids are named after it (default: the file name)
    version: 0                           # the -vN of the ids
    doc: chores in procedural apartments # one line for `omnigym list`
    max_steps: 40                        # episode limit of every id
    heldout_fraction: 0.3                # share of combinations held out (default 0.3)
    templates:
      put_in:
        instruction: put the {obj} in the {container}
        goal: [[INSIDE, "{obj}", "{container}"]]
        slots: {obj: [mug, apple], container: [fridge, microwave]}
    tasks:
      tidy_mug:
        instruction: put the mug in the sink
        goal: [[INSIDE, mug, sink]]
        split: heldout                   # default: train
    panels:
      train: {split: train, first_seed: 0, episodes: 50}

Panels fix the evaluation seeds. Every suite has ``train`` (train split,
seeds from 0), ``test`` (train split, seeds from 200000: the same tasks on
unseen scenes) and, when it holds tasks out, ``heldout`` (heldout split,
seeds from 100000); panels in the YAML replace these defaults by name, and
the defaults take the ``train`` panel's episode count. A default panel whose
split is empty is left out; a panel written in the YAML on an empty split is
an error that says why.

Families: ``load_family_suite(family, name_or_path)`` finds a suite by name
in ``tasks/<family>/`` (or takes a path) and applies that package's hooks:
``validate_task(task)`` (raise ValueError for a task the family cannot pose)
and ``parse_extras(extras, path) -> extras`` (check and normalise the
top-level extras; without it a suite may have none). ``DEFAULT_SUITE`` in the
package names the suite loaded when no name is given (else the family name).
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

SUITE_KEYS = {"name", "version", "doc", "max_steps", "heldout_fraction", "templates", "tasks", "panels"}
TEMPLATE_KEYS = {"instruction", "goal", "slots", "heldout"}
TASK_KEYS = {"instruction", "goal", "template", "split"}
SPLITS = ("train", "heldout")
DEFAULT_EPISODES = 50
DEFAULT_HELDOUT_FRACTION = 0.3
# Where each default panel's seeds start: test and heldout never reuse training seeds.
DEFAULT_PANELS = {"train": ("train", 0), "test": ("train", 200_000), "heldout": ("heldout", 100_000)}


@dataclass(frozen=True)
class Task:
    id: str                      # "template:value1:value2", or the id given under `tasks`
    template: str
    instruction: str
    goal: tuple = ()             # tuple of predicate tuples
    slots: tuple = ()            # ((slot, value), ...)
    # The family's own fields (e.g. a shell task's verify and solution); read-only by convention.
    data: dict = field(default_factory=dict, hash=False)


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
    extras: dict = field(default_factory=dict)   # top-level fields of the family's own

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

    def panels_for(self, templates: list[str] | None = None) -> dict[str, Panel]:
        """The panels an env of ``templates`` (None: all) can play: those whose
        split holds some of its tasks. A template of one slot holds nothing
        out, so an id of that template alone has no heldout panel."""
        if not templates:
            return dict(self.panels)
        return {name: p for name, p in self.panels.items()
                if any(self.tasks[t].template in templates for t in self.splits[p.split])}

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


def _fill(value, bindings: dict[str, str] | None):
    """A goal entry with its slots filled (``bindings=None``: taken as written)."""
    if isinstance(value, str):
        return value if bindings is None else value.format(**bindings)
    if isinstance(value, bool):  # YAML 1.1 reads bare ON/OFF/YES/NO as booleans
        raise ValueError(f"a goal holds the boolean {value}; quote words like \"ON\" and \"OFF\"")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"goal entries must be strings, got {value!r}")
    return tuple(_fill(v, bindings) for v in value)


def expand_template(name: str, spec: dict) -> list[Task]:
    slots = spec.get("slots") or {}
    names = list(slots)
    data = {k: v for k, v in spec.items() if k not in TEMPLATE_KEYS}
    out = []
    for values in itertools.product(*(slots[s] for s in names)):
        bindings = dict(zip(names, values))
        goal = tuple(_fill(tuple(p), bindings) for p in spec["goal"])
        instruction = spec.get("instruction", name).format(**bindings)
        task_id = ":".join([name, *values])
        out.append(Task(task_id, name, instruction, goal, tuple(bindings.items()), dict(data)))
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


def _explicit_task(path: Path, task_id, spec) -> tuple[Task, str]:
    """One task listed under ``tasks``, and its split."""
    where = f"{path}: task {task_id!r}"
    if not isinstance(spec, dict) or not isinstance(spec.get("instruction"), str) or not spec["instruction"]:
        raise ValueError(f"{where} must be a mapping with an 'instruction' string")
    goal = spec.get("goal") or []
    if not isinstance(goal, list) or not all(isinstance(p, list) for p in goal):
        raise ValueError(f"{where}: 'goal' must be a list of predicates, e.g. [[HOLDS, mug, \"\"]]")
    split = spec.get("split", "train")
    if split not in SPLITS:
        raise ValueError(f"{where}: split must be one of {list(SPLITS)}, got {split!r}")
    try:
        goal = tuple(_fill(p, None) for p in goal)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    data = {k: v for k, v in spec.items() if k not in TASK_KEYS}
    return Task(str(task_id), str(spec.get("template", task_id)), spec["instruction"], goal, (), data), split


def _validated(path: Path, where: str, task: Task, validate) -> Task:
    if validate is not None:
        try:
            validate(task)
        except ValueError as exc:
            raise ValueError(f"{path}: {where}task {task.id}: {exc}") from exc
    return task


def _why_empty(split: str, spec: dict) -> str:
    """Why a split a panel names has no tasks, and what to do about it (the end of a one-line error)."""
    if split != "heldout":
        return "; every task is held out (split: heldout): leave some in training"
    fraction = spec.get("heldout_fraction", DEFAULT_HELDOUT_FRACTION)
    return (f": too few slot combinations to hold any out at heldout_fraction {fraction} (a held-out "
            "combination needs a template of 2+ slots and must leave each slot value in some training "
            "task); add slot values, raise heldout_fraction, give a task split: heldout, or remove the panel")


def _panels(path: Path, spec: dict, splits: dict) -> dict[str, Panel]:
    panel_specs = spec.get("panels") or {}
    if not isinstance(panel_specs, dict):
        raise ValueError(f"{path}: 'panels' must be a mapping of name: {{split, first_seed, episodes}}")
    train_spec = panel_specs.get("train")
    episodes = train_spec.get("episodes", DEFAULT_EPISODES) if isinstance(train_spec, dict) else DEFAULT_EPISODES
    specs = {name: {"split": split, "first_seed": first, "episodes": episodes}
             for name, (split, first) in DEFAULT_PANELS.items() if splits[split]}
    specs.update({name: p if isinstance(p, dict) else {} for name, p in panel_specs.items()})
    panels = {}
    for pname, pspec in specs.items():
        # A written panel that replaces a default keeps the default's split unless it names one.
        split = pspec.get("split", DEFAULT_PANELS[pname][0] if pname in DEFAULT_PANELS else pname)
        if split not in splits:
            raise ValueError(f"{path}: panel {pname!r} uses unknown split {split!r}; splits: {', '.join(SPLITS)}")
        if not splits[split]:
            raise ValueError(f"{path}: panel {pname!r} uses the {split} split, which is empty"
                             f"{_why_empty(split, spec)}")
        first, count = pspec.get("first_seed", 0), pspec.get("episodes", DEFAULT_EPISODES)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (first, count)):
            raise ValueError(f"{path}: panel {pname!r}: first_seed and episodes must be integers")
        panels[pname] = Panel(pname, split, tuple(range(first, first + count)))
    return panels


def load_suite(path: str | Path, validate=None, parse_extras=None) -> TaskSuite:
    """Load a suite file. ``validate(task)`` may raise ValueError for tasks a
    family cannot pose; the message names the file and template.
    ``parse_extras(extras, path)`` checks and returns the top-level fields
    outside ``SUITE_KEYS``; without it a suite may have none."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    templates, explicit = (spec.get("templates"), spec.get("tasks")) if isinstance(spec, dict) else (None, None)
    if not (isinstance(templates, dict) and templates) and not (isinstance(explicit, dict) and explicit):
        raise ValueError(f"{path}: a suite needs a non-empty 'templates' mapping (name: {{goal, slots, ...}}) "
                         "or 'tasks' mapping (id: {instruction, ...})")
    for key, value in (("templates", templates), ("tasks", explicit)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{path}: '{key}' must be a mapping, got {type(value).__name__}")
    fraction = float(spec.get("heldout_fraction", DEFAULT_HELDOUT_FRACTION))
    tasks: dict[str, Task] = {}
    split_of: dict[str, str] = {}
    for name, tspec in (templates or {}).items():
        _check_template(path, name, tspec)
        try:
            expanded = expand_template(str(name), tspec)
        except (KeyError, IndexError) as exc:
            raise ValueError(f"{path}: template {name!r} uses an undefined slot {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"{path}: template {name!r}: {exc}") from exc
        held = set(tspec.get("heldout", ())) or heldout_split(expanded, fraction)
        for task in expanded:
            tasks[task.id] = _validated(path, f"template {name!r}, ", task, validate)
            split_of[task.id] = "heldout" if task.id in held else "train"
    for task_id, tspec in (explicit or {}).items():
        task, split = _explicit_task(path, task_id, tspec)
        if task.id in tasks:
            raise ValueError(f"{path}: task {task.id!r} is defined twice")
        tasks[task.id] = _validated(path, "", task, validate)
        split_of[task.id] = split
    splits = {s: tuple(t for t in tasks if split_of[t] == s) for s in SPLITS}
    splits["all"] = tuple(tasks)
    extras = {k: v for k, v in spec.items() if k not in SUITE_KEYS}
    if parse_extras is not None:
        extras = parse_extras(extras, path)
    elif extras:
        raise ValueError(f"{path}: unknown top-level keys {sorted(extras)}; a suite has {sorted(SUITE_KEYS)}")
    return TaskSuite(
        name=spec.get("name", path.stem), version=int(spec.get("version", 0)),
        max_steps=int(spec.get("max_steps", 50)), tasks=tasks, splits=splits,
        panels=_panels(path, spec, splits), doc=spec.get("doc", ""), path=str(path),
        templates=tuple(dict.fromkeys(t.template for t in tasks.values())), extras=extras,
    )


# ------------------------------------------------------------------ families
def _family_package(family: str):
    module = f"omnigym.tasks.{family}"
    if not family.isidentifier():
        raise ValueError(f"no task family {family!r}; families: {family_names()}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, "omnigym.tasks"):
            raise
        raise ValueError(f"no task family {family!r}; families: {family_names()}") from None


def family_names() -> list[str]:
    from omnigym import tasks
    return sorted(p.name for p in Path(tasks.__file__).parent.iterdir() if (p / "__init__.py").exists())


def suite_names(family: str) -> list[str]:
    """The suites of a family: every ``*.yaml`` in ``tasks/<family>/``."""
    folder = Path(_family_package(family).__file__).parent
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_family_suite(family: str, name_or_path: str | Path | None = None) -> TaskSuite:
    """A suite of ``family`` by name (``tasks/<family>/<name>.yaml``) or by
    path to a YAML file, checked by the family's hooks; cached per file."""
    package = _family_package(family)
    name = str(name_or_path or getattr(package, "DEFAULT_SUITE", family))
    if name in suite_names(family):
        path = Path(package.__file__).parent / f"{name}.yaml"
    else:
        path = Path(name)
        if path.suffix not in (".yaml", ".yml") or not path.exists():
            raise ValueError(f"unknown {family} suite {name!r}; available: {suite_names(family)} "
                             f"or a path to a .yaml file")
    return _load_family_suite(family, str(path.resolve()))


@lru_cache(maxsize=64)
def _load_family_suite(family: str, path: str) -> TaskSuite:
    package = _family_package(family)
    return load_suite(path, validate=getattr(package, "validate_task", None),
                      parse_extras=getattr(package, "parse_extras", None))
