"""ToolEnv: multi-turn tool use with verifiable answers, fully offline.

Each step the agent's action is one model output. Tool calls in it, in the
native format of any open model family (Qwen/Hermes ``<tool_call>`` JSON,
Qwen3-Coder XML, Llama JSON, ``<|python_tag|>`` and pythonic lists, Mistral
``[TOOL_CALLS]``, DeepSeek's special-token blocks, OpenAI JSON, a JSON call in
prose: see ``parsing.py``), run in order; a plain-text reply or ``final_answer`` ends
the episode and is checked against the one correct answer (normalised exact
match, or a relative tolerance for numbers). Output that cannot be used
(not a string, malformed JSON, unknown tools, bad arguments) sets
``invalid_action`` (less ``invalid_penalty``) and the observation says what
was wrong; nothing raises.

- observation (``Text``): what the environment said this step (tool results,
  a user message), as text -- never a growing transcript;
- ``info["turn"]``: the chat messages this step added (``omnigym.conversation``):
  on reset the system prompt (with the tool list) and the user message (the
  question, or a memory task's facts); on every step the assistant message
  (the output text, and ``tool_calls`` for the calls parsed from it), the tool
  results and, when the environment speaks, a user message (the question once
  the facts phase is over; how to fix unusable output). ``info["tools"]``
  (reset only) holds the OpenAI-style specs. ``conversation.chat`` rebuilds a
  whole chat from the turns;
- ``info["admissible_actions"]``: a few well-formed candidate outputs drawn
  from the context (what the random agent and ``omnigym play`` offer);
- ``state_key()``: a hash of the problem, the memory, the evidence retrieved,
  the Python code run, the phase and the answer -- not of the conversation;
- ``get_state``/``set_state`` on the unwrapped env branch a rollout right
  after any tool call (the Python sandbox is snapshotted too); ``set_state``
  returns the observation and info of the moment the snapshot was taken.

Memory tasks show their facts once, in the reset turn; after the agent
replies (e.g. "ready") the question comes. The facts never appear again, so
what an agent can recall is what it stored with ``memory_set`` plus whatever
its own history window still holds of that first turn.
"""
from __future__ import annotations

import copy
import json

import gymnasium as gym

from omnigym import contract
from omnigym import conversation as chat
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
FACTS_PROMPT = ("Memorise these facts: you will be asked about them later, and they will not be shown "
                "again. Reply 'ready' when you have stored what you need.")
CALL_HINT = ('Call a tool as <tool_call>{"name": ..., "arguments": {...}}</tool_call> '
             "or reply with the answer.")
EPISODE_OVER = "The episode is over; call reset()."


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
            if self.tool is None:   # restored into an env whose episode never ran Python
                from omnigym.environments.tools.python_tool import PythonTool
                self.tool = PythonTool(files=self.files, timeout_s=self.timeout_s)
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
        # Fixed for the env's life: built once, not per step.
        self.tool_specs = self.registry.specs()
        self.system_prompt = f"{SYSTEM}\n\nTools: {json.dumps(self.tool_specs)}"
        self.invalid_penalty = invalid_penalty
        self.render_mode = render_mode
        self.observation_space = text_space(MAX_OBS)
        self.action_space = text_space(MAX_ACTION)
        self.python = LazyPython(python_timeout_s)
        self.problem: Problem | None = None
        self.ctx = ToolContext(memory={})
        self.phase = "question"
        self.done = False
        self.last_tool_output = ""   # the last tool result of the last step: candidate actions read it
        self._problem_key = ""
        # (obs, info) as last returned: a snapshot carries them so set_state can return them.
        self._returned: tuple[str, dict] | None = None

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
        self._set_problem(make_problem(task, self.np_random, corpus))
        self.python.start_episode(self.problem.files)
        self.ctx = ToolContext(memory={}, index=index, corpus=corpus, evidence=[], python=self.python)
        self.done = False
        self.phase = "facts" if self.problem.facts else "question"
        self.last_tool_output = ""
        return self._emit([chat.system(self.system_prompt), self._user_message()], False,
                          reset_only={K.TOOLS: self.tool_specs})   # built once per env; not copied per episode

    def step(self, action):
        contract.require_reset(self.problem is not None)
        if self.done:
            obs, info = self._emit([chat.assistant(self._said(action, None)), chat.user(EPISODE_OVER)], True)
            return obs, contract.penalised(0.0, True, self.invalid_penalty), True, False, info
        text = contract.parse_text(action, MAX_ACTION, what="model outputs")
        # The specs type the values of formats that write every argument as text (Qwen3-Coder's XML).
        parsed = (None if isinstance(text, contract.Invalid)
                  else parse_model_output(text, max_chars=MAX_ACTION, tools=self.tool_specs))
        error = text if parsed is None else parsed.error
        calls = parsed.calls if parsed is not None else ()
        turn = [chat.assistant(self._said(action, text),
                               [{"name": c.name, "arguments": c.arguments} for c in calls])]
        invalid, answer = False, None
        self.last_tool_output = ""
        if error is not None:
            invalid = True
            turn.append(chat.user(f"{contract.invalid_feedback(error)} {CALL_HINT}"))
        elif calls:
            for call in calls:
                result = self.registry.call(call.name, call.arguments, self.ctx)
                invalid |= not result.ok
                content = result.content if result.ok else contract.invalid_feedback(result.content)
                turn.append(chat.tool(call.name, content))
                self.last_tool_output = content
                if self.ctx.answer is not None:
                    answer = self.ctx.answer
                    break
        elif self.phase == "facts":
            # Any reply ends the facts phase; the question comes (the facts are not shown again).
            self.phase = "question"
            turn.append(self._user_message())
        else:
            answer = parsed.answer
        reward = 0.0
        if answer is not None:
            self.done = True
            self.ctx.answer = answer
            reward = 1.0 if self._correct(answer) else 0.0
        obs, info = self._emit(turn, invalid)
        return obs, contract.penalised(reward, invalid, self.invalid_penalty), answer is not None, False, info

    def render(self):
        """The question (or the facts prompt) and the last turn: the current
        frame of the conversation, not a transcript."""
        if self.render_mode != "ansi" or self._returned is None:
            return None
        turn = self._returned[1][K.TURN]
        lines = [f"[task] {self._instruction()}"]
        lines += [f"[{_label(m)}] {m['content']}" for m in turn if m["role"] != "system"]
        return "\n".join(lines)

    def close(self):
        self.python.close()

    def make_expert(self, **kwargs):
        from omnigym.environments.tools.expert import ToolExpert
        return ToolExpert(**kwargs)

    # --- snapshots ----------------------------------------------------------
    def get_state(self) -> dict:
        contract.require_reset(self.problem is not None, "get_state")
        return {"problem": copy.deepcopy(self.problem), "memory": dict(self.ctx.memory),
                "evidence": list(self.ctx.evidence), "answer": self.ctx.answer, "phase": self.phase,
                "done": self.done, "last_tool_output": self.last_tool_output,
                "python": self.python.snapshot(), "python_codes": list(self.python.codes),
                "returned": copy.deepcopy(self._returned)}

    def set_state(self, state: dict) -> tuple[str, dict]:
        """Restore a ``get_state()`` snapshot (into this env or a fresh one,
        reset or not); returns the (obs, info) of the moment it was taken."""
        self._set_problem(copy.deepcopy(state["problem"]))
        corpus, index = self._research_tools(self.problem.kind)
        self.ctx = ToolContext(memory=dict(state["memory"]), index=index, corpus=corpus,
                               evidence=list(state["evidence"]), python=self.python, answer=state["answer"])
        self.phase, self.done = state["phase"], state["done"]
        self.last_tool_output = state["last_tool_output"]
        self.python.restore(state["python"], self.problem.files, state["python_codes"])
        self._returned = copy.deepcopy(state["returned"])
        return copy.deepcopy(self._returned)

    def state_key(self) -> str:
        return contract.hash_key(self._problem_key, self.phase, self.done, sorted(self.ctx.memory.items()),
                                 sorted(self.ctx.evidence), self.python.codes, self.ctx.answer)

    # --- helpers --------------------------------------------------------------
    def _set_problem(self, problem: Problem) -> None:
        self.problem = problem
        # Hashed once per episode: the files can be a whole CSV.
        self._problem_key = contract.hash_key(self.corpus_seed, self.n_documents, problem.task_id, problem.question,
                                              problem.answer, problem.tolerance, problem.facts, problem.files)

    def _user_message(self) -> dict:
        if self.phase == "facts":
            facts = "\n".join(f"- {k[0].upper() + k[1:]} is {v}." for k, v in self.problem.facts.items())
            return chat.user(f"{FACTS_PROMPT}\n{facts}")
        return chat.user(self.problem.question)

    @staticmethod
    def _said(action, text) -> str:
        """The assistant's words: the output as parsed, else the action as given (cut to size)."""
        if isinstance(text, str) and not isinstance(text, contract.Invalid):
            return text
        return chat.action_text(action)[:MAX_ACTION]

    def _correct(self, answer: str) -> bool:
        from omnigym.environments.tools.questions import answer_matches
        return answer_matches(answer, self.problem.answer, tolerance=self.problem.tolerance)

    def _instruction(self) -> str:
        # During a memory task's facts phase the question stays hidden.
        return "memorise the facts, then answer a question about them" if self.phase == "facts" \
            else self.problem.question

    @staticmethod
    def _observation(turn: list[dict]) -> str:
        # The agent knows what it wrote; the observation is what came back.
        return fit_text("\n".join(f"[{_label(m)}] {m['content']}" for m in turn
                                  if m["role"] not in ("system", "assistant")), MAX_OBS)

    def _emit(self, turn: list[dict], invalid: bool, reset_only: dict | None = None) -> tuple[str, dict]:
        obs, info = self._observation(turn), {**self._info(invalid, turn), **(reset_only or {})}
        # Copied now: wrappers may add keys to the info they pass on.
        self._returned = (obs, dict(info))
        return obs, info

    def _info(self, invalid: bool, turn: list[dict]) -> dict:
        success = bool(self.done and self.ctx.answer is not None and self._correct(self.ctx.answer))
        return {K.SUCCESS: success, K.INSTRUCTION: self._instruction(), K.TASK_ID: self.problem.task_id,
                K.INVALID_ACTION: bool(invalid), K.STATE_KEY: self.state_key(),
                K.ADMISSIBLE_ACTIONS: [] if self.done else candidate_actions(self),
                "template": self.problem.template, K.TURN: turn}


def _label(message: dict) -> str:
    return f"tool {message['name']}" if message["role"] == "tool" else message["role"]
