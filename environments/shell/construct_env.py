"""ShIOEnv-style command construction: each action appends one argument.

The state is the partially built command for one utility. After every
appended argument the candidate command is executed in the sandbox (from the
same starting file system each time), and the observation shows its exit
status, output and side effects. The reward follows ShIOEnv: an exit-status
term (+1 when the candidate runs cleanly, -1 otherwise) and a redundancy
term (-1 when removing the new argument leaves the observed behaviour
unchanged), weighted by ``exit_weight`` and ``redundancy_weight``.
``<execute>`` ends the episode on the current command, ``<stop>`` gives up.

``masked=True`` puts the grammar's mask in ``info["action_mask"]`` and
treats a masked choice as ``invalid_action``; ``masked=False`` allows every
argument (the unmasked baseline) and still reports ``info["grammar_mask"]``.
Every execution is logged in ``env.unwrapped.executions`` for dataset export.
"""
from __future__ import annotations

import hashlib
import shlex

import gymnasium as gym
import numpy as np

from omnigym import info_keys as K
from omnigym.environments.shell.grammar import (GrammarState, Token, available_utilities, classify_text,
                                                vocabulary_for)
from omnigym.environments.shell.sandboxed import SandboxedEnv
from omnigym.environments.shell.tasks import load_shell_suite
from omnigym.text import fit_text, text_space

MAX_OBS = 4096


def _fixture_names(fixture: dict) -> list[str]:
    """Top-level names of the fixture; directories end with '/'."""
    names = set()
    for path in fixture:
        head, sep, _ = path.partition("/")
        names.add(head + "/" if sep else head)
    return sorted(names)


class ShellConstructEnv(SandboxedEnv, gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, utility: str | None = None, mode: str = "discrete", masked: bool = True,
                 max_args: int = 8, exit_weight: float = 1.0, redundancy_weight: float = 0.5,
                 suite: str = "freeform", sandbox=None, output_chars: int = 600, render_mode=None):
        if mode not in ("discrete", "text", "vector"):
            raise ValueError(f"mode must be 'discrete', 'text' or 'vector', got {mode!r}")
        utilities = available_utilities()
        if utility is not None and utility not in utilities:
            raise ValueError(f"no grammar for {utility!r}; available: {', '.join(utilities)}")
        self.utilities = [utility] if utility else utilities
        self.mode, self.masked, self.max_args = mode, masked, max_args
        self.exit_weight, self.redundancy_weight = float(exit_weight), float(redundancy_weight)
        self.fixture = load_shell_suite(suite).fixture
        self.sandbox_config = sandbox
        self.output_chars = output_chars
        self.render_mode = render_mode
        names = _fixture_names(self.fixture)
        self.vocabularies = {u: vocabulary_for(u, names) for u in self.utilities}
        self.n_actions = max(len(v) for v in self.vocabularies.values())
        if mode == "vector":
            # One-hot argument per position, then exit status / output / length features.
            self.observation_space = gym.spaces.Box(0.0, 1.0, (max_args * self.n_actions + 4,), np.float32)
        else:
            self.observation_space = text_space(MAX_OBS)
        self.action_space = text_space(256) if mode == "text" else \
            gym.spaces.Discrete(self.n_actions)
        self.executions: list[dict] = []
        self.state = None

    # ---------------------------------------------------------------- sandbox
    def _fixture(self) -> dict:
        return self.fixture

    def _execute(self, args: list[str]) -> dict:
        """Run ``utility args`` from the starting file system; its behaviour."""
        sandbox = self._ensure_sandbox()
        sandbox.restore(self._baseline)
        command = " ".join([self.utility, *map(shlex.quote, args)])
        r = sandbox.run(command)
        fx = r.side_effects
        record = {"command": command, "args": list(args), "exit_code": r.exit_code, "stdout": r.stdout,
                  "stderr": r.stderr, "created": list(fx.created), "deleted": list(fx.deleted),
                  "modified": list(fx.modified), "mode_changed": list(fx.mode_changed), "limit": r.limit,
                  "cwd": r.cwd, "state_digest": r.state_digest}
        record["signature"] = hashlib.blake2b(repr((r.exit_code, r.stdout, r.stderr, fx.created, fx.deleted,
                                                    fx.modified, fx.mode_changed)).encode(),
                                              digest_size=12).hexdigest()
        self.executions.append(record)
        return record

    # ---------------------------------------------------------------- episode
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        self.utility = options.get("utility") or self.utilities[int(self.np_random.integers(len(self.utilities)))]
        if self.utility not in self.vocabularies:
            raise ValueError(f"utility {self.utility!r} is not offered by this env")
        self.vocab = self.vocabularies[self.utility]
        self.index = {tok.text: i for i, tok in enumerate(self.vocab)}
        self.state = GrammarState(self.utility, self.vocab)
        self.args: list[str] = []
        self.arg_ids: list[int] = []
        self._invalid = False
        self._last = self._execute([])
        self._feedback = ""
        return self._observe()

    def _token(self, action) -> Token | str:
        if self.mode != "text":
            try:
                if isinstance(action, (bool, np.bool_, str, bytes)):
                    raise TypeError
                i = int(action)
                if i != action:
                    raise TypeError
            except (TypeError, ValueError, OverflowError):
                return f"discrete actions are integer indices, got {str(action)[:40]!r}"
            if not 0 <= i < len(self.vocab):
                return f"index {i} is outside the vocabulary (0..{len(self.vocab) - 1})"
            return self.vocab[i]
        if isinstance(action, (bytes, bytearray)):
            action = action.decode("utf-8", "replace")
        if not isinstance(action, str) or not action.strip() or len(action) > 256:
            return "an argument is a non-empty string of at most 256 characters"
        text = action.strip()
        if text in self.index:
            return self.vocab[self.index[text]]
        return Token(text, "value", classify_text(text))

    def step(self, action):
        if self.state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        token = self._token(action)
        mask = self.state.valid_next()
        reward, terminated = 0.0, False
        if isinstance(token, str):
            self._invalid, self._feedback = True, f"Invalid action: {token}."
        elif self.masked and token.text in self.index and not mask[self.index[token.text]]:
            self._invalid = True
            self._feedback = f"Invalid action: the grammar of {self.utility} does not allow {token.text!r} here."
        elif self.masked and token.text not in self.index and not self.state.allowed(token.value_type or token.kind):
            self._invalid = True
            self._feedback = f"Invalid action: {token.text!r} is not allowed here."
        elif token.kind == "stop":
            self._invalid, terminated, self._feedback = False, True, "Stopped."
        elif token.kind == "execute":
            self._invalid, terminated = False, True
            reward = self.exit_weight * (1.0 if self._last["exit_code"] == 0 else -1.0)
            self._feedback = "Executed the final command."
        else:
            self._invalid = False
            try:
                self.state.push(token)
            except ValueError:
                pass  # unmasked: the grammar cannot follow, the command still runs
            before = self._last
            self.args.append(token.text)
            self.arg_ids.append(self.index.get(token.text, -1))
            self._last = self._execute(self.args)
            redundant = self._last["signature"] == before["signature"]
            reward = self.exit_weight * (1.0 if self._last["exit_code"] == 0 else -1.0) \
                - self.redundancy_weight * float(redundant)
            self._feedback = f"Redundant argument: {token.text!r} changed nothing." if redundant else ""
        truncated = not terminated and len(self.args) >= self.max_args
        obs, info = self._observe()
        return obs, reward, terminated, truncated, info

    def _observe(self):
        r = self._last
        n = self.output_chars
        lines = [f"$ {r['command']}", f"[exit {r['exit_code']}]"]
        if r["stdout"]:
            lines.append(r["stdout"][:n])
        if r["stderr"]:
            lines.append("[stderr] " + r["stderr"][:n // 2])
        effects = [f"{k}: {', '.join(r[k][:5])}" for k in ("created", "deleted", "modified", "mode_changed") if r[k]]
        lines.append("side effects: " + ("; ".join(effects) if effects else "none") + f"; cwd: {r['cwd']}")
        if self._feedback:
            lines.append(self._feedback)
        text = fit_text("\n".join(lines), MAX_OBS)
        grammar_mask = np.zeros(self.n_actions, np.bool_)
        grammar_mask[:len(self.vocab)] = self.state.valid_next()
        mask = grammar_mask if self.masked else np.pad(np.ones(len(self.vocab), np.bool_),
                                                       (0, self.n_actions - len(self.vocab)))
        info = {
            K.SUCCESS: r["exit_code"] == 0 and bool(self.args),
            K.INSTRUCTION: f"build a useful {self.utility} command, one argument at a time",
            K.ADMISSIBLE_ACTIONS: [self.vocab[i].text for i in np.flatnonzero(mask[:len(self.vocab)])],
            K.ACTION_MASK: mask, "grammar_mask": grammar_mask, K.INVALID_ACTION: self._invalid,
            # The partial command and the sandbox state it leaves behind.
            K.STATE_KEY: hashlib.blake2b(f"{r['command']}|{r['state_digest']}".encode(), digest_size=12).hexdigest(),
            K.TASK_ID: self.utility, "exit_code": r["exit_code"], "command": r["command"],
        }
        if self.mode == "vector":
            return self._vector(), info
        return text, info

    def _vector(self) -> np.ndarray:
        v = np.zeros(self.observation_space.shape, np.float32)
        for pos, i in enumerate(self.arg_ids[:self.max_args]):
            if i >= 0:
                v[pos * self.n_actions + i] = 1.0
        r, base = self._last, self.max_args * self.n_actions
        v[base] = float(r["exit_code"] == 0)
        v[base + 1] = float(r["exit_code"] != 0)
        v[base + 2] = float(bool(r["stdout"]))
        v[base + 3] = len(self.args) / self.max_args
        return v

    def render(self):
        if self.render_mode != "ansi" or self.state is None:
            return None
        mode, self.mode = self.mode, "text"
        try:
            return self._observe()[0]
        finally:
            self.mode = mode
