"""ToolEnv: multi-turn tool use with verifiable answers, fully offline.

Each step the agent's action is one model output. Tool calls in it
(``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, bare JSON calls,
OpenAI-style calls) run in order; a plain-text reply or ``final_answer`` ends
the episode and is checked against the one correct answer (normalised exact
match, or a relative tolerance for numbers). Output that cannot be used
(malformed JSON, unknown tools, bad arguments) sets ``invalid_action`` and the
observation says what was wrong; nothing raises.

- observation (``Text``): the new messages since the last step, as text;
- ``info["messages"]``: the whole conversation as ``{role, content}`` dicts
  (system prompt with the tool list, user, assistant, tool) and
  ``info["tools"]`` the OpenAI-style specs, for any chat template;
- ``info["admissible_actions"]``: a few well-formed candidate outputs drawn
  from the context (what the random agent and ``omnigym play`` offer);
- ``state_key``: a hash of the problem, the memory, the evidence retrieved
  and the Python code run -- not of the conversation text;
- ``get_state``/``set_state`` on the unwrapped env branch a rollout right
  after any tool call (the Python sandbox is snapshotted too).

Memory tasks show their facts once; after the agent replies (e.g. "ready"),
the facts leave ``messages`` and the question comes: only what the agent
stored with ``memory_set`` can answer it.
"""
from __future__ import annotations

import copy
import hashlib
import json

import gymnasium as gym

from omnigym import info_keys as K
from omnigym.environments.tools.candidates import candidate_actions
from omnigym.environments.tools.parsing import parse_model_output
from omnigym.environments.tools.tasks import Problem, make_problem
from omnigym.environments.tools.tools import ToolContext, default_registry
from omnigym.text import fit_text, text_space

MAX_OBS = 8192
MAX_ACTION = 20_000
SYSTEM = ("You are an assistant that uses tools. To call a tool, write\n"
          '<tool_call>{"name": "<tool name>", "arguments": {<arguments>}}</tool_call>\n'
          "One block per call; several blocks run in order. When you know the answer, call "
          "final_answer or reply with the answer alone in plain text.")
FACTS_PROMPT = ("Memorise these facts. They will be removed from this conversation before you are "
                "asked about them; reply 'ready' when you have stored what you need.")


class LazyPython:
    """Starts the sandboxed Python tool on first use (most tasks never need
    it) and gives each episode a fresh copy of that episode's files."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.tool = None
        self.files: dict[str, str] = {}
        self.fresh = True       # the sandbox holds exactly ``files``, untouched
        self.codes: list[str] = []

    def start_episode(self, files: dict[str, str]) -> None:
        if self.tool is not None and not (self.fresh and files == self.files):
            self.tool.reset(files)
        self.files, self.fresh, self.codes = dict(files), True, []

    def run(self, code: str) -> str:
        if self.tool is None:
            from omnigym.environments.tools.python_tool import PythonTool
            self.tool = PythonTool(files=self.files, timeout_s=self.timeout_s)
        self.fresh = False
        self.codes.append(code)
        return self.tool.run(code)

    def snapshot(self):
        return None if self.fresh or self.tool is None else self.tool.snapshot()

    def restore(self, snap, files: dict[str, str], codes: list[str]) -> None:
        self.files, self.codes = dict(files), list(codes)
        if snap is None:
            self.start_episode(files)
            self.codes = list(codes)
        else:
            self.tool.restore(snap)
            self.fresh = False

    def close(self) -> None:
        if self.tool is not None:
            self.tool.close()
            self.tool = None


class ToolEnv(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, suite: str = "tools", split: str = "train", templates: list[str] | None = None,
                 mode: str = "text", corpus_seed: int = 0, n_documents: int = 2000,
                 tools: list[str] | None = None, invalid_penalty: float = 0.0, python_timeout_s: float = 5.0,
                 render_mode: str | None = None):
        if mode != "text":
            raise ValueError(f"tools envs have mode 'text' (model outputs in, messages out), got {mode!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        from omnigym.tasks.tools import load_tools_suite
        self.suite = load_tools_suite(suite)
        self.tasks = self.suite.select(split, templates)
        self.corpus_seed, self.n_documents = corpus_seed, n_documents
        self.registry = default_registry() if tools is None else default_registry().subset(tools)
        self.tool_specs = self.registry.specs()   # fixed for the env's life: built once, not per step
        self.invalid_penalty = invalid_penalty
        self.render_mode = render_mode
        self.observation_space = text_space(MAX_OBS)
        self.action_space = text_space(MAX_ACTION)
        self.python = LazyPython(python_timeout_s)
        self.problem: Problem | None = None
        self.ctx = ToolContext(memory={})
        self.messages: list[dict] = []
        self.phase = "question"
        self.done = False

    # --- corpus and index, shared by every env in the process -----------
    def _research_tools(self, kind: str):
        """(corpus, index) when the problem or the tools need them, else (None, None)."""
        if kind != "MULTIHOP" and not {"search", "open"} & set(self.registry.names):
            return None, None
        from omnigym.environments.tools.corpus import get_corpus
        from omnigym.environments.tools.search import get_index
        return get_corpus(self.corpus_seed, self.n_documents), get_index(self.corpus_seed, self.n_documents)

    # --- gymnasium API ------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            task = self.suite.task(options["task"])
        else:
            task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        corpus, index = self._research_tools(task.goal[0][0])
        self.problem = make_problem(task, self.np_random, corpus)
        self.python.start_episode(self.problem.files)
        self.ctx = ToolContext(memory={}, index=index, corpus=corpus, evidence=[], python=self.python)
        self.done = False
        self.phase = "facts" if self.problem.facts else "question"
        tools_json = json.dumps(self.tool_specs)
        self.messages = [{"role": "system", "content": f"{SYSTEM}\n\nTools: {tools_json}"}]
        new = [self._user_message()]
        self.messages += new
        return self._observation(new), self._info(False)

    def step(self, action):
        new: list[dict] = []
        invalid, reward, answer = False, 0.0, None
        if self.done:
            new.append({"role": "user", "content": "The episode is over; call reset()."})
            return self._observation(new), 0.0, True, False, self._info(True)
        if not isinstance(action, str):
            text, error = "", f"an action must be the model's output text, got {type(action).__name__}"
            parsed = None
        else:
            text = fit_text(action, MAX_ACTION)
            parsed = parse_model_output(action, max_chars=MAX_ACTION)
            error = parsed.error
        new.append({"role": "assistant", "content": text})
        if error is not None:
            invalid = True
            new.append({"role": "user", "content": f"Your output could not be used: {error}. Call a tool as "
                        '<tool_call>{"name": ..., "arguments": {...}}</tool_call> or reply with the answer.'})
        elif parsed.calls:
            for call in parsed.calls:
                result = self.registry.call(call.name, call.arguments, self.ctx)
                invalid |= not result.ok
                content = result.content if result.ok else f"error: {result.content}"
                new.append({"role": "tool", "name": call.name, "content": content})
                if self.ctx.answer is not None:
                    answer = self.ctx.answer
                    break
        elif self.phase == "facts":
            # Any reply ends the facts phase: the facts leave the conversation.
            self.phase = "question"
            self.messages = [m for m in self.messages if not m.get("facts")]
            new.append(self._user_message())
        else:
            answer = parsed.answer
        self.messages += new
        terminated = False
        if answer is not None:
            terminated = self.done = True
            reward = 1.0 if self._correct(answer) else 0.0
            self.ctx.answer = answer
        if invalid:
            reward -= self.invalid_penalty
        return self._observation(new), reward, terminated, False, self._info(invalid)

    def render(self):
        if self.render_mode == "ansi":
            return "\n".join(f"[{m['role']}] {m['content']}" for m in self.messages[1:])
        return None

    def close(self):
        self.python.close()

    # --- snapshots ----------------------------------------------------------
    def get_state(self) -> dict:
        return {"problem": copy.deepcopy(self.problem), "memory": dict(self.ctx.memory),
                "evidence": list(self.ctx.evidence), "answer": self.ctx.answer,
                "messages": copy.deepcopy(self.messages), "phase": self.phase, "done": self.done,
                "python": self.python.snapshot(), "python_codes": list(self.python.codes)}

    def set_state(self, state: dict) -> None:
        self.problem = copy.deepcopy(state["problem"])
        corpus, index = self._research_tools(self.problem.kind)
        self.ctx = ToolContext(memory=dict(state["memory"]), index=index, corpus=corpus,
                               evidence=list(state["evidence"]), python=self.python, answer=state["answer"])
        self.messages = copy.deepcopy(state["messages"])
        self.phase, self.done = state["phase"], state["done"]
        self.python.restore(state["python"], self.problem.files, state["python_codes"])

    # --- helpers --------------------------------------------------------------
    def _user_message(self) -> dict:
        if self.phase == "facts":
            facts = "\n".join(f"- {k[0].upper() + k[1:]} is {v}." for k, v in self.problem.facts.items())
            return {"role": "user", "content": f"{FACTS_PROMPT}\n{facts}", "facts": True}
        return {"role": "user", "content": self.problem.question}

    def _correct(self, answer: str) -> bool:
        from omnigym.environments.tools.questions import answer_matches
        return answer_matches(answer, self.problem.answer, tolerance=self.problem.tolerance)

    def _observation(self, new: list[dict]) -> str:
        parts = []
        for m in new:
            if m["role"] == "assistant":
                continue  # the agent knows what it wrote
            label = f"tool {m['name']}" if m["role"] == "tool" else m["role"]
            parts.append(f"[{label}] {m['content']}")
        return fit_text("\n".join(parts), MAX_OBS)

    def state_key(self) -> str:
        p = self.problem
        state = {"problem": [p.task_id, p.question, p.answer], "phase": self.phase,
                 "memory": sorted(self.ctx.memory.items()), "evidence": sorted(self.ctx.evidence),
                 "python": hashlib.blake2b("\0".join(self.python.codes).encode(), digest_size=8).hexdigest(),
                 "answer": self.ctx.answer}
        return hashlib.blake2b(json.dumps(state, sort_keys=True).encode(), digest_size=12).hexdigest()

    def _info(self, invalid: bool) -> dict:
        success = bool(self.done and self.ctx.answer is not None and self._correct(self.ctx.answer))
        messages = [{k: v for k, v in m.items() if k != "facts"} for m in self.messages]
        # During a memory task's facts phase the question stays hidden.
        instruction = "memorise the facts, then answer a question about them" if self.phase == "facts" \
            else self.problem.question
        return {K.SUCCESS: success, K.INSTRUCTION: instruction, K.TASK_ID: self.problem.task_id,
                K.INVALID_ACTION: bool(invalid), K.STATE_KEY: self.state_key(),
                K.ADMISSIBLE_ACTIONS: [] if self.done else candidate_actions(self),
                "template": self.problem.template, "messages": messages, "tools": self.tool_specs}
