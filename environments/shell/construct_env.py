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
treats a masked choice as ``invalid_action`` (less ``invalid_penalty``);
``masked=False`` allows every argument (the unmasked baseline) and still
reports ``info["grammar_mask"]``. In discrete and vector mode the action is
an index into the utility's vocabulary (``action_mask`` marks the allowed
ones, ``admissible_actions`` lists their texts). In the text-observation
modes (text, discrete) ``info["turn"]`` holds the chat messages each step
added. ``get_state``/``set_state`` snapshot the construction and the sandbox;
``state_key()`` covers the fixture, the utility, the arguments and whether
the episode ended. Every execution is logged in ``env.unwrapped.executions``
for dataset export.
"""
from __future__ import annotations

import hashlib
import shlex

import gymnasium as gym
import numpy as np

from omnigym import contract
from omnigym import conversation as chat
from omnigym import info_keys as K
from omnigym.environments.shell.grammar import (GrammarState, Token, available_utilities, classify_text,
                                                vocabulary_for)
from omnigym.environments.shell.sandboxed import SandboxedEnv
from omnigym.environments.shell.tasks import fixture_files
from omnigym.text import fit_text, text_space

MAX_OBS = 4096
MAX_ARG = 256
MODES = ("discrete", "text", "vector")
HOW_TO_ACT = {
    "text": ("Build a useful {utility} command, one argument per turn: write the next argument (an option such "
             "as -l, a file name, a value), <execute> to finish on the current command or <stop> to give up. "
             "After each argument the command so far runs in a sandbox and you see what it did."),
    "discrete": ("Build a useful {utility} command, one argument per turn: answer with the index of the next "
                 "argument in the utility's vocabulary (info['action_mask'] marks the allowed ones; <execute> "
                 "finishes, <stop> gives up). After each argument the command so far runs in a sandbox and "
                 "you see what it did."),
}


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
                 suite: str = "freeform", sandbox=None, output_chars: int = 600, invalid_penalty: float = 0.0,
                 render_mode=None):
        if mode not in MODES:
            raise ValueError(f"mode must be 'discrete', 'text' or 'vector', got {mode!r}")
        utilities = available_utilities()
        if utility is not None and utility not in utilities:
            raise ValueError(f"no grammar for {utility!r}; available: {', '.join(utilities)}")
        from omnigym.tasks.shell import load_shell_suite
        self.utilities = [utility] if utility else utilities
        self.mode, self.masked, self.max_args = mode, masked, max_args
        self.exit_weight, self.redundancy_weight = float(exit_weight), float(redundancy_weight)
        self.invalid_penalty = float(invalid_penalty)
        self.fixture = fixture_files(load_shell_suite(suite))
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
        self.action_space = text_space(MAX_ARG) if mode == "text" else gym.spaces.Discrete(self.n_actions)
        self.executions: list[dict] = []
        self.state = None
        self._turn = None

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
        utility = options.get("utility") or self.utilities[int(self.np_random.integers(len(self.utilities)))]
        if utility not in self.vocabularies:
            raise ValueError(f"utility {utility!r} is not offered by this env; offered: {', '.join(self.utilities)}")
        self._start(utility)
        self.state = GrammarState(self.utility, self.vocab)
        self.args: list[str] = []
        self.arg_ids: list[int] = []
        self._invalid, self._ended, self._feedback = False, None, ""
        self._last = self._execute([])
        return self._observe(self._how_to_act())

    def _start(self, utility: str) -> None:
        self.utility = utility
        self.vocab = self.vocabularies[utility]
        self.index = {tok.text: i for i, tok in enumerate(self.vocab)}

    def _token(self, action) -> tuple[Token | contract.Invalid, str]:
        """(the token or why the action is invalid, the action as the assistant's words)."""
        if self.mode != "text":
            i = contract.parse_index(action, len(self.vocab), what=f"the {self.utility} vocabulary")
            if isinstance(i, contract.Invalid):
                return i, chat.action_text(action)[:MAX_ARG]
            return self.vocab[i], self.vocab[i].text
        text = contract.parse_text(action, MAX_ARG, what="arguments")
        if isinstance(text, contract.Invalid):
            return text, chat.action_text(action)[:MAX_ARG]
        text = text.strip()
        if text in self.index:
            return self.vocab[self.index[text]], text
        return Token(text, "value", classify_text(text)), text

    def step(self, action):
        contract.require_reset(self.state is not None)
        token, said = self._token(action)
        mask = self.state.valid_next()
        reward, terminated = 0.0, False
        if isinstance(token, contract.Invalid):
            self._invalid, self._feedback = True, contract.invalid_feedback(token)
        elif self.masked and token.text in self.index and not mask[self.index[token.text]]:
            self._invalid = True
            self._feedback = contract.invalid_feedback(f"the grammar of {self.utility} does not allow "
                                                       f"{token.text!r} here")
        elif self.masked and token.text not in self.index and not self.state.allowed(token.value_type or token.kind):
            self._invalid = True
            self._feedback = contract.invalid_feedback(f"{token.text!r} is not allowed here")
        elif token.kind == "stop":
            self._invalid, terminated, self._ended, self._feedback = False, True, "stop", "Stopped."
        elif token.kind == "execute":
            self._invalid, terminated, self._ended = False, True, "execute"
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
        obs, info = self._observe([chat.assistant(said)])
        return obs, contract.penalised(reward, self._invalid, self.invalid_penalty), terminated, truncated, info

    def state_key(self) -> str:
        return contract.hash_key(self._baseline.digest, self.utility, self.args, self._ended)

    def _how_to_act(self) -> list[dict]:
        if self.mode == "vector":
            return []
        return [chat.system(HOW_TO_ACT[self.mode].format(utility=self.utility))]

    def _text(self) -> str:
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
        return fit_text("\n".join(lines), MAX_OBS)

    def _observe(self, turn: list[dict] | None):
        """(obs, info) now. ``turn``: this reset's or step's messages before the
        observation (appended as the user message); None keeps the last turn."""
        r = self._last
        grammar_mask = np.zeros(self.n_actions, np.bool_)
        grammar_mask[:len(self.vocab)] = self.state.valid_next()
        mask = grammar_mask if self.masked else np.pad(np.ones(len(self.vocab), np.bool_),
                                                       (0, self.n_actions - len(self.vocab)))
        info = {
            K.SUCCESS: r["exit_code"] == 0 and bool(self.args),
            K.INSTRUCTION: f"build a useful {self.utility} command, one argument at a time",
            K.ADMISSIBLE_ACTIONS: [self.vocab[i].text for i in np.flatnonzero(mask[:len(self.vocab)])],
            K.ACTION_MASK: mask, "grammar_mask": grammar_mask, K.INVALID_ACTION: self._invalid,
            K.STATE_KEY: self.state_key(), K.TASK_ID: self.utility, "exit_code": r["exit_code"],
            "command": r["command"],
        }
        if self.mode == "vector":
            return self._vector(), info
        text = self._text()
        if turn is not None:
            self._turn = turn + [chat.user(text)]
        info[K.TURN] = self._turn
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
        return self._text() if self.render_mode == "ansi" and self.state is not None else None

    # ---------------------------------------------------------------- snapshots
    def get_state(self) -> dict:
        contract.require_reset(self.state is not None, "get_state")
        return {"fs": self._sandbox.snapshot(), "utility": self.utility, "args": list(self.args),
                "arg_ids": list(self.arg_ids), "grammar": self.state.copy(), "last": dict(self._last),
                "feedback": self._feedback, "invalid": self._invalid, "ended": self._ended, "turn": self._turn}

    def set_state(self, state: dict):
        """Restore a snapshot (into this env or a fresh one); returns the
        (obs, info) of the moment it was taken."""
        if state["utility"] not in self.vocabularies:
            raise ValueError(f"the snapshot builds a {state['utility']} command; this env offers "
                             f"{', '.join(self.utilities)}")
        self._ensure_sandbox().restore(state["fs"])
        self._start(state["utility"])
        self.args, self.arg_ids = list(state["args"]), list(state["arg_ids"])
        self.state = state["grammar"].copy()
        self._last = dict(state["last"])
        self._feedback, self._invalid, self._ended = state["feedback"], state["invalid"], state["ended"]
        self._turn = state["turn"]
        return self._observe(None)
