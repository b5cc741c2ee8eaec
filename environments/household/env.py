"""HouseholdEnv: VirtualHome-style chores as a strict gymnasium environment.

Modes (``obs_mode`` x ``action_mode``):

- ``text`` / ``text``: read a description, write an action such as
  ``[putin] <mug> (33) <microwave> (8)`` or ``put mug in microwave``;
- ``text`` / ``discrete``: the action is an index into
  ``info["admissible_actions"]``; ``info["action_mask"]`` marks valid indices;
- ``vector`` / ``discrete``: a fixed-size float vector (see ``encoding``) for
  MLP policies, with the same discrete actions.

``reset(seed=s)`` fully determines the task and the apartment;
``options={"task": "put_in:mug:microwave"}`` picks a task,
``options={"scene": <VirtualHome graph dict>}`` plays in a given scene.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import gymnasium as gym
import numpy as np

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
MODES = {"text": ("text", "text"), "discrete": ("text", "discrete"), "vector": ("vector", "discrete")}



class HouseholdEnv(gym.Env):
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, suite: TaskSuite | str | None = None, split: str = "train",
                 templates: list[str] | None = None, mode: str | None = None,
                 obs_mode: str = "text", action_mode: str = "text", max_actions: int = 160,
                 invalid_penalty: float = 0.0, progress_reward: float = 0.0,
                 render_mode: str | None = None):
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(MODES)}")
            obs_mode, action_mode = MODES[mode]
        if obs_mode not in ("text", "vector"):
            raise ValueError(f"obs_mode must be 'text' or 'vector', got {obs_mode!r}")
        if action_mode not in ("text", "discrete"):
            raise ValueError(f"action_mode must be 'text' or 'discrete', got {action_mode!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        from omnigym.tasks.household import load_household_suite
        self.suite = suite if isinstance(suite, TaskSuite) else load_household_suite(suite)
        self.tasks = self.suite.select(split, templates)
        self.split = split
        self.obs_mode, self.action_mode = obs_mode, action_mode
        self.max_actions = max_actions
        self.invalid_penalty = float(invalid_penalty)
        self.progress_reward = float(progress_reward)
        self.render_mode = render_mode
        self.layout = VectorLayout(max_actions)
        if obs_mode == "text":
            self.observation_space = text_space(MAX_TEXT)
        else:
            self.observation_space = gym.spaces.Box(0.0, float(max(len(A.VERBS), self.layout.n_classes) + 1),
                                                    (self.layout.size,), np.float32)
        if action_mode == "text":
            self.action_space = text_space(512)
        else:
            self.action_space = gym.spaces.Discrete(max_actions)
        self.world = None
        self.task: Task | None = None

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
        return self._observe()

    def step(self, action):
        if self.world is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        parsed = self._parse(action)
        reward = 0.0
        if isinstance(parsed, str):
            self._invalid, self._feedback = True, f"Invalid action: {parsed}."
        else:
            reason = A.execute(self.world, parsed)
            if reason is None:
                self._invalid = False
                self._feedback = f"Last action: {A.format_action(self.world, parsed)} (done)."
            else:
                self._invalid = True
                self._feedback = f"Invalid action {A.format_action(self.world, parsed)}: {reason}."
        if self._invalid:
            reward -= self.invalid_penalty
        before = sum(self._done)
        self._done = satisfied(self.world, self.task.goal)
        success = all(self._done)
        if self.progress_reward:
            reward += self.progress_reward * (sum(self._done) - before) / len(self._done)
        if success:
            reward += 1.0
        if self._goal_block is not None:
            self._goal_block = encode_goal(self.task.goal, self._done, self.layout)
        obs, info = self._observe()
        return obs, reward, success, False, info

    # ------------------------------------------------------------ helpers
    def _parse(self, action):
        if self.action_mode == "discrete":
            try:
                if isinstance(action, (bool, np.bool_)) or isinstance(action, (str, bytes)):
                    raise TypeError
                index = int(action)
                if index != action:  # 1.5 is not an index; 2.0 and np.int64(2) are
                    raise TypeError
            except (TypeError, ValueError, OverflowError):
                return f"discrete actions are integer indices, got {str(action)[:40]!r}"
            if not 0 <= index < len(self._actions):
                return (f"index {index} is not admissible; valid indices are "
                        f"0..{len(self._actions) - 1} (see info['admissible_actions'])")
            return self._actions[index]
        if isinstance(action, (bytes, bytearray)):
            action = action.decode("utf-8", "replace")
        return A.parse_action(self.world, action) if isinstance(action, str) else \
            f"text actions are strings, got {type(action).__name__}"

    def _observe(self):
        world = self.world
        visible = world.visible()
        self._actions = A.admissible(world, visible)
        if len(self._actions) > self.max_actions:
            # Generated scenes stay far below the default (tested); a large imported
            # scene can exceed it: keep the canonical first ones and say so.
            gym.logger.warn(f"{len(self._actions)} admissible actions exceed max_actions="
                            f"{self.max_actions}; raise max_actions to keep them all")
            self._actions = self._actions[:self.max_actions]
        strings = action_strings(world, self._actions)
        if self.obs_mode == "text":
            obs = fit_text(render_text(world, visible, self.task.instruction, self._feedback), MAX_TEXT)
        else:
            obs = encode_vector(world, visible, self._actions, self._goal_block, self.layout)
        mask = np.zeros(self.max_actions, dtype=np.bool_)
        mask[:len(strings)] = True
        info = {
            K.SUCCESS: all(self._done),
            K.INSTRUCTION: self.task.instruction,
            K.ADMISSIBLE_ACTIONS: strings,
            K.ACTION_MASK: mask,
            K.INVALID_ACTION: self._invalid,
            K.STATE_KEY: hashlib.blake2b(world.canonical(), digest_size=12).hexdigest(),
            K.TASK_ID: self.task.id,
            "template": self.task.template,
            "feedback": self._feedback,
            "goal_progress": sum(self._done) / len(self._done),
        }
        self._last_obs = obs
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
        if self.world is None:
            raise gym.error.ResetNeeded("call reset() before get_state()")
        return {"nodes": self.world.nodes, "char_id": self.world.char_id, "world": self.world.get_state(),
                "task": self.task, "feedback": self._feedback, "invalid": self._invalid}

    def set_state(self, state: dict) -> tuple:
        """Restore a snapshot; returns ``(obs, info)`` as seen at that moment."""
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
        return self._observe()

    # ------------------------------------------------------------ expert
    def expert_plan(self) -> list[str]:
        """A shortest action sequence from the current state (text actions)."""
        from omnigym.environments.household.planner import plan
        return [A.format_action(self.world, a) for a in plan(self.world, self.task.goal)]

    def save_scene(self, path: str | Path | None = None) -> dict:
        """The current scene as a VirtualHome JSON graph (written to ``path`` if given)."""
        from omnigym.environments.household.vh_graph import to_virtualhome_graph
        graph = to_virtualhome_graph(self.world)
        if path is not None:
            import json
            from omnigym.episodes import atomic_write
            atomic_write(path, lambda f: f.write(json.dumps(graph, indent=1).encode()))
        return graph
