"""README.md's commands, run as a user runs them: in README order, from one
temporary directory outside the repository, with the repository's venv on
``PATH`` (``.venv/bin/omnigym`` in the README points there).

Markers in README.md, an HTML comment on the line before a code block:

    <!-- readme-test: skip (why) -->   the block is not run
    <!-- readme-test: file NAME -->    the block is a user's file, written to NAME

Every other ```bash block runs line by line and every other ```python block
runs as a script. ``ADJUSTED`` lists the few commands that run smaller, or
only compose their config, and why; a new README command is tested as printed.
Each command is one test; running one alone first runs the commands before it
(a later command may use what an earlier one made).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_BIN = ROOT / ".venv" / "bin"
MARKER = re.compile(r"<!--\s*readme-test:\s*(skip|file)\b\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")

# Small PPO settings (as tests/test_train.py): these runs check that the commands work, not learning.
SMALL_TRAINING = ["iterations=1", "algo.training.train_batch_size_per_learner=400", "algo.training.minibatch_size=100",
                  "algo.training.num_epochs=1", "policy.config.hidden=[32,32]", "evaluation.episodes=3",
                  "progress=false"]


def small_training(words: list[str]) -> list[str]:
    return [w for w in words if not w.startswith("iterations=")] + SMALL_TRAINING


def compose_only(words: list[str]) -> list[str]:
    return [*words, "--print-config"]


def replacing(old: str, new: str):
    return lambda words: [new if w == old else w for w in words]


def appending(*extra: str):
    return lambda words: [*words, *extra]


# (regex matched at the start of the command, with `.venv/bin/` dropped; how it runs, or None: skipped; why).
# The first match wins.
ADJUSTED = [
    (r"omnigym check --all", None, "checks every id for minutes; tests/test_contract.py checks each id"),
    (r"omnigym bench ", appending("--steps", "500", "--repeats", "1"), "measures for half a minute"),
    (r"omnigym rollout robots/PushT-v0 .*--episodes 100", replacing("100", "2"),
     "100 filmed episodes; 2 show the recording and the exports"),
    (r"omnigym train env=cartpole iterations=20$", small_training, "the tour's run, which the next command evaluates"),
    (r"omnigym train env=cartpole env\.id=user/Corridor-v0 env\.modules=\[my_envs\.py\] iterations=\d+$",
     small_training, "the user env's run, which the next command evaluates"),
    (r"omnigym train ", compose_only, "trains for minutes (tests/test_train.py trains); the config must compose"),
]

# (text in the command or script, text its output must hold): what a reader is told to expect.
EXPECTED = [
    ("omnigym eval CartPole-v1 --agent runs/", "ppo"),
    ('print(register_suite("my_chores.yaml"))', "'household/MyChoresTidyUp-v0'"),
    ("omnigym list --family household --import-module my_suite.py", "household/MyChoresReadingCorner-v0"),
    ("omnigym eval household/MyChores-v0", "heldout"),
    ("--agent runs/ppo-user-corridor-v0-s0", "ppo"),
]


@dataclass(frozen=True)
class Step:
    line: int             # README line of the command or of the block's first line
    kind: str             # "bash", "python", "file" or "skip"
    text: str             # the command, the script or the file's content
    note: str = ""        # file: its name; skip: why

    @property
    def label(self) -> str:
        first = plain(self.text) if self.kind == "bash" else (self.text.strip().splitlines() or [""])[0]
        return re.sub(r"[^\w./=:\[\], -]", "", f"README:{self.line} {first}")[:90]


def bash_commands(lines: list[str], first_line: int):
    """(line, command) for each command of a bash block: continuations joined, comments dropped."""
    pending, start = "", first_line
    for n, line in enumerate(lines, first_line):
        if not pending:
            start = n
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, (pending + line).strip()
        pending = ""


def readme_steps(text: str) -> list[Step]:
    steps, marker, lines = [], None, text.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            found = MARKER.search(lines[i])
            if found:
                marker = found.groups()
            elif lines[i].strip():
                marker = None  # a marker belongs to the block right after it
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        lang, body, first = fence.group(1), lines[i + 1:end], i + 2
        if marker and marker[0] == "skip":
            steps.append(Step(first, "skip", "\n".join(body), marker[1].strip("() ")))
        elif marker and marker[0] == "file":
            steps.append(Step(first, "file", "\n".join(body) + "\n", marker[1]))
        elif lang == "bash":
            steps += [Step(n, "bash", command) for n, command in bash_commands(body, first)]
        elif lang == "python":
            steps.append(Step(first, "python", "\n".join(body) + "\n"))
        marker, i = None, end + 1
    return steps


def words(command: str) -> list[str]:
    """The command's words as the shell splits them (quotes removed, a trailing comment dropped)."""
    return shlex.split(command, comments=True)


def plain(command: str) -> str:
    """The command as matched against ``ADJUSTED``: its words, without the `.venv/bin/` prefix."""
    return " ".join(words(command)).removeprefix(".venv/bin/")


def adjustment(command: str):
    """(how it runs, why) for a README command; (None, why) when it is skipped."""
    for pattern, how, why in ADJUSTED:
        if re.match(pattern, plain(command)):
            return how, why
    return (lambda w: w), ""


STEPS = readme_steps(README.read_text())


class ReadmeSession:
    """One user's directory; runs the README's steps in order, each once."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.results: dict[int, subprocess.CompletedProcess | None] = {}
        path = os.environ.get("PATH", "")
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        # A user's own Minari folder: the README creates a dataset by name, which must be new.
        self.env.update(PATH=f"{VENV_BIN}{os.pathsep}{path}", MINARI_DATASETS_PATH=str(workdir / "minari"))

    def through(self, index: int):
        for i in range(index + 1):
            if i not in self.results:
                self.results[i] = self._run(STEPS[i])
        return self.results[index]

    def _run(self, step: Step):
        if step.kind == "file":
            (self.workdir / step.note).write_text(step.text)
            return None
        if step.kind == "python":
            args, stdin = [str(VENV_BIN / "python"), "-"], step.text
        elif step.kind == "bash":
            how, _ = adjustment(step.text)
            if how is None:
                return None
            args, stdin = how(words(step.text)), ""
            if args[0].startswith(".venv/bin/"):  # the repository's venv, wherever the user is
                args[0] = str(VENV_BIN / args[0].removeprefix(".venv/bin/"))
            args = ["bash", "-c", shlex.join(args)]
        else:
            return None
        return subprocess.run(args, cwd=self.workdir, env=self.env, input=stdin, text=True,
                              capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("readme_user")
    assert not workdir.resolve().is_relative_to(ROOT)
    return ReadmeSession(workdir)


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[s.label for s in STEPS])
def test_readme_step(index, session):
    step = STEPS[index]
    if step.kind == "skip":
        pytest.skip(step.note)
    if step.kind == "bash" and adjustment(step.text)[0] is None:
        pytest.skip(adjustment(step.text)[1])
    proc = session.through(index)
    if step.kind == "file":
        assert (session.workdir / step.note).is_file()
        return
    shown = (f"README line {step.line}:\n{step.text}\n--- stdout\n{proc.stdout[-3000:]}"
             f"\n--- stderr\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, shown
    assert "Traceback" not in proc.stderr, shown
    for needle, expected in EXPECTED:
        if needle in step.text:
            assert expected in proc.stdout, shown


def test_the_readme_shows_what_a_new_user_needs():
    """The examples the tour promises exist and are run, not skipped."""
    files = {s.note for s in STEPS if s.kind == "file"}
    assert {"my_chores.yaml", "my_suite.py", "my_envs.py"} <= files
    run = [plain(s.text) for s in STEPS if s.kind == "bash" and adjustment(s.text)[0] is not None]
    for needed in ("omnigym list", "omnigym play household/", "omnigym eval CartPole-v1 --agent runs/",
                   "omnigym eval household/MyChores-v0 --import-module my_suite.py",
                   "omnigym eval user/Corridor-v0 --import-module my_envs.py",
                   "omnigym train env=cartpole env.id=user/Corridor-v0 env.modules=[my_envs.py]"):
        assert any(command.startswith(needed) for command in run), needed
    assert sum(s.kind == "python" for s in STEPS) >= 3


def test_every_adjustment_still_matches_a_readme_command():
    commands = [plain(s.text) for s in STEPS if s.kind == "bash"]
    for pattern, _, why in ADJUSTED:
        assert any(re.match(pattern, c) for c in commands), f"no README command matches {pattern!r} ({why})"


def test_markers_and_blocks_are_read_as_written():
    text = """\
intro
<!-- readme-test: skip (slow) -->
```bash
make demo
```
<!-- readme-test: file a.py -->
```python
x = 1
```
```bash
# a comment
omnigym eval X \\
    --panel 0..3   # seeds
omnigym list
```
```yaml
not: run
```
"""
    steps = readme_steps(text)
    assert [(s.kind, s.note) for s in steps] == [("skip", "slow"), ("file", "a.py"), ("bash", ""), ("bash", "")]
    assert words(steps[2].text) == ["omnigym", "eval", "X", "--panel", "0..3"]
    assert (steps[2].line, steps[3].line) == (12, 14)
    assert plain(".venv/bin/omnigym  list   # all") == "omnigym list"
    assert small_training(words("omnigym train env=cartpole iterations=20  # PPO"))[:3] == [
        "omnigym", "train", "env=cartpole"]
