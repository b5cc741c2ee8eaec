"""ShellTaskEnv: free-form shell tasks, one whole command per turn, sandboxed.

On reset the observation states the task and how to act; after each command
it shows that command's (truncated) stdout, stderr and exit status -- the new
text only, never a transcript; ``info["turn"]`` holds the chat messages the
step added (``omnigym.conversation``). After every command a verifier checks
the command's stdout and the scratch file system; the episode ends on
success or after ``max_steps`` commands. Every command runs in
``omnigym.sandbox`` (no network, private scratch, limits); one persistent
sandbox serves the whole env and is restored to the task's start state on
reset. ``make_expert()`` types the task's reference solution.
``info["admissible_actions"]`` offers a few read-only exploratory commands
(what the random agent picks from); any command is accepted.

``state_key()`` covers the task, the scratch file system and the last
command's outcome (the verifier reads its stdout, so two states that differ
only in it are different situations).
"""
from __future__ import annotations

import copy
import shlex

import gymnasium as gym

from omnigym import contract
from omnigym import conversation as chat
from omnigym import info_keys as K
from omnigym.environments.shell.sandboxed import SandboxedEnv
from omnigym.environments.shell.tasks import fixture_files, setup_command, verify
from omnigym.text import fit_text, text_space

MAX_OBS = 8192
MAX_COMMAND = 4096
HOW_TO_ACT = ("You work in a bash shell, in a sandboxed project directory (no network). Each turn, write one "
              "shell command (pipes and && are fine); you will see its output, errors and exit status. The "
              "episode ends as soon as the task is done.")


def exploration_commands(fixture: dict) -> list[str]:
    """Read-only commands that look around the fixture: what a random agent
    (and ``omnigym play``) picks from. Any other command is accepted too.
    Their output is deterministic (no timestamps, sorted listings)."""
    tops = {path.split("/", 1)[0] + ("/" if "/" in path else "") for path in fixture}
    dirs = sorted(t.rstrip("/") for t in tops if t.endswith("/"))
    files = sorted(t for t in tops if not t.endswith("/"))
    return (["ls", "ls -a", "pwd", "find . -type f | sort"] + [f"ls {shlex.quote(d)}" for d in dirs]
            + [c for f in map(shlex.quote, files) for c in (f"cat {f}", f"wc -l {f}")])


class ShellTaskEnv(SandboxedEnv, gym.Env):
    """``suite``: a shell suite's name or path; ``tasks``: play only these task
    ids (of any split), else the tasks of ``split``."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, suite: str = "freeform", split: str = "train", tasks: list[str] | None = None,
                 sandbox=None, output_chars: int = 1500, mode: str = "text", invalid_penalty: float = 0.0,
                 render_mode: str | None = None):
        if mode != "text":
            raise ValueError(f"free-form shell tasks have only mode 'text', got {mode!r}")
        from omnigym.tasks.shell import load_shell_suite
        self.suite = load_shell_suite(suite)
        if tasks:
            unknown = [t for t in tasks if t not in self.suite.tasks]
            if unknown:
                raise ValueError(f"unknown shell tasks {unknown}; available: {sorted(self.suite.tasks)}")
            self.task_ids = list(tasks)
        else:
            self.task_ids = [t.id for t in self.suite.select(split)]
        self.split = split
        self.sandbox_config = sandbox
        self.output_chars = output_chars
        self.invalid_penalty = float(invalid_penalty)
        self.render_mode = render_mode
        self.observation_space = text_space(MAX_OBS)
        self.action_space = text_space(MAX_COMMAND)
        self.exploration = exploration_commands(fixture_files(self.suite))
        self.task = None
        self._returned = None   # (obs, info) as last returned: snapshots carry them for set_state

    # ---------------------------------------------------------------- sandbox
    def _fixture(self) -> dict:
        return fixture_files(self.suite)

    def _setup_command(self) -> str:
        return setup_command(self.suite)

    # ---------------------------------------------------------------- episode
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        task_id = options.get("task") or self.task_ids[int(self.np_random.integers(len(self.task_ids)))]
        self.task = self.suite.task(task_id)
        self._ensure_sandbox().restore(self._baseline)
        self._success, self._invalid, self._digest = False, False, self._baseline.digest
        self._outcome = None
        obs = f"Task: {self.task.instruction}\nWrite one shell command per turn; the working directory is the project."
        turn = [chat.system(f"{HOW_TO_ACT}\n\nTask: {self.task.instruction}"), chat.user(obs)]
        return self._emit(obs, turn, {"exit_code": None, "limit": None, "verifier": None})

    def step(self, action):
        contract.require_reset(self.task is not None)
        command = contract.parse_text(action, MAX_COMMAND, what="commands")
        if isinstance(command, contract.Invalid):
            self._invalid, self._outcome = True, ("invalid", str(command))
            obs = contract.invalid_feedback(command)
            turn = [chat.assistant(chat.action_text(action)[:MAX_COMMAND]), chat.user(obs)]
            obs, info = self._emit(obs, turn, {"exit_code": None, "limit": None, "verifier": None})
            return obs, contract.penalised(0.0, True, self.invalid_penalty), False, False, info
        result = self._sandbox.run(command)
        self._invalid = False
        self._digest = result.state_digest
        self._outcome = (result.stdout, result.stderr, result.exit_code, result.limit, result.cwd)
        self._success, reason = verify(self.task, self.suite, result.stdout, self._sandbox.snapshot())
        obs = self._format(result)
        obs, info = self._emit(obs, [chat.assistant(command), chat.user(obs)],
                               {"exit_code": result.exit_code, "limit": result.limit, "verifier": reason})
        return obs, 1.0 if self._success else 0.0, self._success, False, info

    def state_key(self) -> str:
        return contract.hash_key(self.suite.path, self.task.id, self._digest, self._outcome)

    def _format(self, result) -> str:
        n = self.output_chars
        parts = []
        if result.stdout:
            parts.append(result.stdout[:n].rstrip("\n") + ("...[truncated]" if len(result.stdout) > n else ""))
        if result.stderr:
            parts.append("[stderr] " + result.stderr[:n // 2].rstrip("\n"))
        status = f"[exit {result.exit_code}]"
        if result.limit:
            status += f" [stopped: {result.limit} limit]"
        parts.append(status)
        return fit_text("\n".join(parts), MAX_OBS)

    def _emit(self, obs: str, turn: list[dict], outcome: dict):
        obs = fit_text(obs, MAX_OBS)
        info = {K.SUCCESS: self._success, K.INSTRUCTION: self.task.instruction, K.TASK_ID: self.task.id,
                K.INVALID_ACTION: self._invalid, K.STATE_KEY: self.state_key(), K.TURN: turn,
                K.ADMISSIBLE_ACTIONS: list(self.exploration), **outcome}
        self._returned = (obs, info)
        return obs, info

    def render(self):
        if self.render_mode != "ansi" or self._returned is None:
            return None
        return f"Task: {self.task.instruction}\n{self._returned[0]}"

    # ---------------------------------------------------------------- snapshots
    def get_state(self) -> dict:
        contract.require_reset(self.task is not None, "get_state")
        return {"task": self.task.id, "fs": self._sandbox.snapshot(), "success": self._success,
                "invalid": self._invalid, "outcome": self._outcome, "returned": copy.deepcopy(self._returned)}

    def set_state(self, state: dict):
        """Restore a snapshot (into this env or a fresh one); returns the
        (obs, info) of the moment it was taken."""
        self.task = self.suite.task(state["task"])
        self._ensure_sandbox().restore(state["fs"])
        self._success, self._invalid, self._outcome = state["success"], state["invalid"], state["outcome"]
        self._digest = state["fs"].digest
        self._returned = copy.deepcopy(state["returned"])
        return copy.deepcopy(self._returned)

    def make_expert(self, **kwargs):
        return ShellExpert(**kwargs)


class ShellExpert:
    """Types the task's reference command (privileged: it reads the task's solution)."""

    name = "expert"

    def __init__(self, **_):
        self._env = None

    def reset(self, env=None, seed=None, member=None):
        if env is None:
            raise ValueError("the expert needs the environment (it types the task's reference solution)")
        self._env = env.unwrapped

    def act(self, obs, info):
        return self._env.task.data["solution"]
