"""ShellTaskEnv: free-form shell tasks, one whole command per turn, sandboxed.

The observation shows the task, then each command with its (truncated)
stdout, stderr and exit status. After every command a verifier checks the
command's stdout and the scratch file system; the episode ends on success or
after ``max_steps`` commands. Every command runs in ``omnigym.sandbox``
(no network, private scratch, limits); one persistent sandbox serves the
whole env and is restored to the task's start state on reset.
"""
from __future__ import annotations

import hashlib

import gymnasium as gym

from omnigym import info_keys as K
from omnigym.environments.shell.sandboxed import SandboxedEnv
from omnigym.environments.shell.tasks import load_shell_suite, verify
from omnigym.text import fit_text, text_space

MAX_OBS = 8192
MAX_COMMAND = 4096


class ShellTaskEnv(SandboxedEnv, gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, suite: str = "freeform", tasks: list[str] | None = None, sandbox=None,
                 output_chars: int = 1500, mode: str = "text", render_mode: str | None = None):
        if mode != "text":
            raise ValueError(f"free-form shell tasks have only mode 'text', got {mode!r}")
        self.suite = load_shell_suite(suite)
        names = list(tasks or self.suite.tasks)
        unknown = [t for t in names if t not in self.suite.tasks]
        if unknown:
            raise ValueError(f"unknown shell tasks {unknown}; available: {sorted(self.suite.tasks)}")
        self.task_ids = names
        self.sandbox_config = sandbox
        self.output_chars = output_chars
        self.render_mode = render_mode
        self.observation_space = text_space(MAX_OBS)
        self.action_space = text_space(MAX_COMMAND)
        self.task = None

    # ---------------------------------------------------------------- sandbox
    def _fixture(self) -> dict:
        return self.suite.fixture

    def _setup_command(self) -> str:
        return self.suite.setup

    # ---------------------------------------------------------------- episode
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        task_id = options.get("task") or self.task_ids[int(self.np_random.integers(len(self.task_ids)))]
        if task_id not in self.suite.tasks:
            raise ValueError(f"unknown shell task {task_id!r}")
        self.task = self.suite.tasks[task_id]
        self._ensure_sandbox().restore(self._baseline)
        self._transcript = [f"Task: {self.task.instruction}",
                            "Write one shell command per turn; the working directory is the project."]
        self._success, self._invalid, self._stdout = False, False, ""
        self._digest = self._baseline.digest
        return self._observe()

    def step(self, action):
        if self.task is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if isinstance(action, (bytes, bytearray)):
            action = action.decode("utf-8", "replace")
        if not isinstance(action, str) or not action.strip() or len(action) > MAX_COMMAND:
            self._invalid = True
            why = "an empty command" if isinstance(action, str) and len(action) <= MAX_COMMAND else \
                f"commands are strings of at most {MAX_COMMAND} characters"
            self._transcript.append(f"Invalid action: {why}.")
            return self._observe(reward=0.0)
        self._invalid = False
        result = self._sandbox.run(action)
        self._stdout = result.stdout
        self._digest = result.state_digest
        self._transcript.append(self._format(action, result))
        self._success, reason = verify(self.task, self.suite, result.stdout, self._sandbox.snapshot())
        return self._observe(reward=1.0 if self._success else 0.0, extra={"exit_code": result.exit_code,
                                                                         "limit": result.limit,
                                                                         "verifier": reason})

    def _format(self, command: str, result) -> str:
        n = self.output_chars
        parts = [f"$ {command}"]
        if result.stdout:
            parts.append(result.stdout[:n] + ("...[truncated]" if len(result.stdout) > n else ""))
        if result.stderr:
            parts.append("[stderr] " + result.stderr[:n // 2])
        status = f"[exit {result.exit_code}]"
        if result.limit:
            status += f" [stopped: {result.limit} limit]"
        parts.append(status)
        return "\n".join(parts)

    def _observe(self, reward: float | None = None, extra: dict | None = None):
        text = "\n".join(self._transcript)
        if len(text) > MAX_OBS:  # keep the task and the most recent turns
            text = self._transcript[0] + "\n...\n" + text[-(MAX_OBS - len(self._transcript[0]) - 5):]
        text = fit_text(text, MAX_OBS)
        info = {K.SUCCESS: self._success, K.INSTRUCTION: self.task.instruction, K.TASK_ID: self.task.id,
                K.INVALID_ACTION: self._invalid,
                K.STATE_KEY: hashlib.blake2b(f"{self.task.id}|{self._digest}".encode(), digest_size=12).hexdigest(),
                **(extra or {})}
        if reward is None:
            return text, info
        return text, reward, self._success, False, info

    def render(self):
        return "\n".join(self._transcript) if self.render_mode == "ansi" and self.task else None

    # ---------------------------------------------------------------- snapshots
    def get_state(self) -> dict:
        return {"task": self.task.id, "fs": self._sandbox.snapshot(), "transcript": list(self._transcript),
                "success": self._success, "invalid": self._invalid, "stdout": self._stdout}

    def set_state(self, state: dict):
        self.task = self.suite.tasks[state["task"]]
        self._ensure_sandbox().restore(state["fs"])
        self._transcript = list(state["transcript"])
        self._success, self._invalid, self._stdout = state["success"], state["invalid"], state["stdout"]
        self._digest = state["fs"].digest
        return self._observe()

    def reference_solution(self) -> str:
        return self.task.solution


class ShellExpert:
    """Types each task's reference command (the demonstration source)."""

    name = "expert"

    def reset(self, env=None, seed=None, member=None):
        self._env = env.unwrapped

    def act(self, obs, info):
        return self._env.reference_solution()


