"""The household expert: the planner as an agent, for demonstrations and as
the upper bound in evaluations. It plans from the true simulator state
(privileged), then replays the plan; whenever the world is not in the state
the plan expected (an action failed, a snapshot was restored, someone else
moved things), it plans again from where the world is."""
from __future__ import annotations

import gymnasium as gym

from omnigym import info_keys as K
from omnigym.environments.household import actions as A
from omnigym.environments.household.planner import plan


class PlannerExpert:
    name = "expert"

    def __init__(self, **_):
        self._env = None
        self._moves: list[tuple] = []
        self._expected: list[tuple] = []   # the world state before each remaining move

    def reset(self, env=None, seed=None, member=None) -> None:
        if env is None:
            raise ValueError("the expert needs the environment (it plans from the true state)")
        self._env = env.unwrapped
        self._discrete = isinstance(env.action_space, gym.spaces.Discrete)
        self._moves, self._expected = [], []

    def act(self, obs, info):
        world = self._env.world
        if not self._moves or world.get_state() != self._expected[0]:
            self._replan(world)
        if not self._moves:  # the goal already holds: any harmless action
            return 0 if self._discrete else "[standup]"
        self._expected.pop(0)
        line = A.format_action(world, self._moves.pop(0))
        if self._discrete:
            actions = info[K.ADMISSIBLE_ACTIONS]
            return actions.index(line) if line in actions else 0
        return line

    def _replan(self, world) -> None:
        self._moves = plan(world, self._env.task.goal)
        start = world.get_state()
        self._expected = []
        for move in self._moves:  # the states the plan passes through
            self._expected.append(world.get_state())
            A.apply(world, *move)
        world.set_state(start)
