"""HouseholdEnv: VirtualHome-style chores as a strict gymnasium environment.

Modes (``mode=``):

- ``text``: read a description, write an action such as
  ``[putin] <mug> (33) <microwave> (8)`` or ``put mug in microwave``;
- ``discrete``: the same text observation; the action is an index into
  ``info["admissible_actions"]`` and ``info["action_mask"]`` marks valid indices;
- ``vector``: a fixed-size float vector (see ``encoding``) for MLP policies,
  with the same discrete actions.

In the text-observation modes each step returns the current view (never a
transcript) and ``info["turn"]`` holds the chat messages the step added
(``omnigym.conversation``). An invalid action changes nothing, says why in
the observation and costs ``invalid_penalty``.

``reset(seed=s)`` fully determines the task and the apartment;
``options={"task": "put_in:mug:microwave"}`` picks a task,
``options={"scene": <VirtualHome graph dict>}`` plays in a given scene.
``make_expert()`` gives the planner agent (privileged: it plans from the
true state).
"""
from __future__ import annotations

import hashlib
from array import array
from pathlib import Path

import gymnasium as gym
import numpy as np

from omnigym import contract
from omnigym import conversation as chat
from omnigym import info_keys as K
from omnigym.environments.household import actions as A
from omnigym.environments.household.encoding import (
    VectorLayout, action_strings, encode_goal, encode_vector, render_text,
)
from omnigym.environments.household.generator import generate, unsatisfy
from omnigym.environments.household.goals import describe, goal_classes, satisfied
from omnigym.suites import Task, TaskSuite
from omnigym.text import fit_text, text_space

MAX_TEXT = 8192
MAX_ACTION = 512
# mode -> (observation form, action form)
MODES = {"text": ("text", "text"), "discrete": ("text", "discrete"), "vector": ("vector", "discrete")}
HOW_TO_ACT = {
    "text": ("You act in a home, one action per turn, written as a VirtualHome script line such as "
             "[walk] <kitchen>, [grab] <mug> (12) or [putin] <mug> (12) <microwave> (8); a plain phrase "
             "like 'put mug in microwave' works too. Verbs: " + ", ".join(A.VERBS) + ". You see only the "
             "room you are in, and not inside closed containers."),
    "discrete": ("You act in a home, one action per turn: answer with the index of one of the admissible "
                 "actions (VirtualHome script lines such as [walk] <kitchen>). You see only the room you "
                 "are in, and not inside closed containers."),
}


class HouseholdEnv(gym.Env):
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, suite: TaskSuite | str | None = None, split: str = "train",
                 templates: list[str] | None = None, mode: str = "text", max_actions: int = 160,
                 invalid_penalty: float = 0.0, progress_reward: float = 0.0,
                 render_mode: str | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(MODES)}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        from omnigym.tasks.household import load_household_suite
        self.suite = suite if isinstance(suite, TaskSuite) else load_household_suite(suite)
        self.tasks = self.suite.select(split, templates)
        self.split = split
        self.mode = mode
        self.obs_mode, self.action_mode = MODES[mode]   # derived from mode, read every step
        self.max_actions = max_actions
        self.invalid_penalty = float(invalid_penalty)
        self.progress_reward = float(progress_reward)
        self.render_mode = render_mode
        self.layout = VectorLayout(max_actions)
        if self.obs_mode == "text":
            self.observation_space = text_space(MAX_TEXT)
        else:
            self.observation_space = gym.spaces.Box(0.0, float(max(len(A.VERBS), self.layout.n_classes) + 1),
                                                    (self.layout.size,), np.float32)
        if self.action_mode == "text":
            self.action_space = text_space(MAX_ACTION)
        else:
            self.action_space = gym.spaces.Discrete(max_actions)
        self.world = None
        self.task: Task | None = None
        self._static_for = None    # (scene nodes, task) that _static_key was computed for
        self._turn = None          # the last turn returned (text-observation modes)

    # ------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        task = options.get("task")
        if task is None:
            task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        elif isinstance(task, str):
            task = self.suite.task(task)
        elif isinstance(task, dict):
            goal = tuple(tuple(p) for p in task["goal"])
            task = Task(task.get("id", "custom"), task.get("template", "custom"),
                        task.get("instruction") or " and ".join(describe(p) for p in goal), goal)
        self.task = task
        scene_seed = int(self.np_random.integers(2**31 - 1))
        if "scene" in options:
            from omnigym.environments.household.vh_graph import from_virtualhome_graph
            self.world = from_virtualhome_graph(options["scene"])
            missing = goal_classes(task.goal) - set(self.world.by_class) - {""}
            if missing:
                raise ValueError(f"scene has no {sorted(missing)} for task {task.id}")
        else:
            self.world = generate(scene_seed, required=goal_classes(task.goal) - {""})
            unsatisfy(self.world, task.goal, scene_seed)
        self._feedback = ""
        self._invalid = False
        self._done = satisfied(self.world, task.goal)
        self._goal_block = encode_goal(task.goal, self._done, self.layout) if self.obs_mode == "vector" else None
        return self._observe([chat.system(f"{HOW_TO_ACT.get(self.mode, '')}\n\nTask: {task.instruction}.")])

    def step(self, action):
        contract.require_reset(self.world is not None)
        parsed, said = self._parse(action)
        reward = 0.0
        if isinstance(parsed, contract.Invalid):
            self._invalid, self._feedback = True, contract.invalid_feedback(parsed)
        else:
            reason = A.execute(self.world, parsed)
            self._invalid = reason is not None
            self._feedback = contract.invalid_feedback(f"{A.format_action(self.world, parsed)}: {reason}") \
                if self._invalid else f"Last action: {A.format_action(self.world, parsed)} (done)."
        before = sum(self._done)
        self._done = satisfied(self.world, self.task.goal)
        success = all(self._done)
        if self.progress_reward:
            reward += self.progress_reward * (sum(self._done) - before) / len(self._done)
        if success:
            reward += 1.0
        if self._goal_block is not None:
            self._goal_block = encode_goal(self.task.goal, self._done, self.layout)
        obs, info = self._observe([chat.assistant(said)])
        return obs, contract.penalised(reward, self._invalid, self.invalid_penalty), success, False, info

    def state_key(self) -> str:
        """The world (scene + dynamic state) and the task's goal and wording."""
        # One blake2b over the cached static part and the dynamic state: this runs every step.
        return hashlib.blake2b(self._static_key() + self.world.canonical(), digest_size=12).hexdigest()

    # ------------------------------------------------------------ helpers
    def _parse(self, action) -> tuple:
        """(the action or why it is invalid, the action as the assistant's words)."""
        if self.action_mode == "discrete":
            index = contract.parse_index(action, len(self._actions))
            if isinstance(index, contract.Invalid):
                return index, chat.action_text(action)[:MAX_ACTION]
            return self._actions[index], self._strings[index]
        text = contract.parse_text(action, MAX_ACTION, allow_empty=True)
        if isinstance(text, contract.Invalid):
            return text, chat.action_text(action)[:MAX_ACTION]
        parsed = A.parse_action(self.world, text)
        return (contract.Invalid(parsed) if isinstance(parsed, str) else parsed), text

    def _static_key(self) -> bytes:
        """The scene's static part and the task, hashed once per episode (this
        runs every step: the hash of the goal must not be redone each time)."""
        if self._static_for is None or self._static_for[0] is not self.world.nodes \
                or self._static_for[1] is not self.task:
            self._static_for = (self.world.nodes, self.task)
            # Names carry class and id; props and the room flags are the rest of a node's static part.
            scene = "\x1f".join(self.world.names).encode() + array("q", self.world.props).tobytes() \
                + bytes(self.world.is_room)
            self._static_hash = contract.hash_key(scene, self.world.char_id, self.task.goal,
                                                  self.task.instruction).encode()
        return self._static_hash

    def _observe(self, turn: list[dict] | None):
        """(obs, info) of the current state. ``turn``: the messages of this reset
        or step before the observation (which is appended as the user message);
        None keeps the last turn (a restored snapshot's)."""
        world = self.world
        visible = world.visible()
        self._actions = A.admissible(world, visible)
        if len(self._actions) > self.max_actions:
            # Generated scenes stay far below the default (tested); a large imported
            # scene can exceed it: keep the canonical first ones and say so.
            gym.logger.warn(f"{len(self._actions)} admissible actions exceed max_actions="
                            f"{self.max_actions}; raise max_actions to keep them all")
            self._actions = self._actions[:self.max_actions]
        self._strings = action_strings(world, self._actions)
        if self.obs_mode == "text":
            obs = fit_text(render_text(world, visible, self.task.instruction, self._feedback), MAX_TEXT)
        else:
            obs = encode_vector(world, visible, self._actions, self._goal_block, self.layout)
        mask = np.zeros(self.max_actions, dtype=np.bool_)
        mask[:len(self._strings)] = True
        info = {
            K.SUCCESS: all(self._done),
            K.INSTRUCTION: self.task.instruction,
            K.ADMISSIBLE_ACTIONS: self._strings,   # a new list every observation: safe to hand out
            K.ACTION_MASK: mask,
            K.INVALID_ACTION: self._invalid,
            K.STATE_KEY: self.state_key(),
            K.TASK_ID: self.task.id,
            "template": self.task.template,
            "feedback": self._feedback,
            "goal_progress": sum(self._done) / len(self._done),
        }
        if self.obs_mode == "text":
            if turn is not None:
                self._turn = turn + [chat.user(obs)]
            info[K.TURN] = self._turn
        return obs, info

    def render(self):
        if self.render_mode == "ansi" and self.world is not None:
            return render_text(self.world, self.world.visible(), self.task.instruction, self._feedback)
        return None

    def policy_layout(self) -> dict:
        """How the vector observation splits into state and an action table,
        for action-scoring policies (``policy=scorer``)."""
        if self.obs_mode != "vector":
            raise ValueError("policy_layout describes the vector observation; use mode='vector'")
        offsets = self.layout.offsets()
        return {"state_dim": offsets["actions"][0], "slots": self.max_actions, "fields": 3,
                "vocab": int(self.observation_space.high.max()) + 1}

    # ------------------------------------------------------------ snapshots
    def get_state(self) -> dict:
        """Everything needed to continue this episode exactly (cheap: tuples)."""
        contract.require_reset(self.world is not None, "get_state")
        return {"nodes": self.world.nodes, "char_id": self.world.char_id, "world": self.world.get_state(),
                "task": self.task, "feedback": self._feedback, "invalid": self._invalid,
                "turn": self._turn}

    def set_state(self, state: dict) -> tuple:
        """Restore a snapshot (from any mode, into this env or a fresh one);
        returns ``(obs, info)`` as seen at that moment."""
        from omnigym.environments.household.world import Character, World
        if self.world is None or self.world.nodes is not state["nodes"]:
            parent, rel, st, char = state["world"]
            self.world = World(list(state["nodes"]), list(parent), list(rel), list(st),
                               Character(*char), char_id=state["char_id"])
            self.world.nodes = state["nodes"]
        self.world.set_state(state["world"])
        self.task = state["task"]
        self._feedback, self._invalid = state["feedback"], state["invalid"]
        self._done = satisfied(self.world, self.task.goal)
        self._goal_block = encode_goal(self.task.goal, self._done, self.layout) if self.obs_mode == "vector" else None
        self._turn = state["turn"]
        return self._observe(None)

    # ------------------------------------------------------------ expert
    def make_expert(self, **kwargs):
        """The planner agent: shortest plans from the true state (privileged)."""
        from omnigym.environments.household.expert import PlannerExpert
        return PlannerExpert(**kwargs)

    def save_scene(self, path: str | Path | None = None) -> dict:
        """The current scene as a VirtualHome JSON graph (written to ``path`` if given)."""
        from omnigym.environments.household.vh_graph import to_virtualhome_graph
        graph = to_virtualhome_graph(self.world)
        if path is not None:
            import json
            from omnigym.episodes import atomic_write
            atomic_write(path, lambda f: f.write(json.dumps(graph, indent=1).encode()))
        return graph
