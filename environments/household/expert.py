"""The planner as a policy: the expert for demonstrations and the upper bound
in evaluations. It plans from the true simulator state (privileged), then
replays the plan; if the world ever differs from what it planned for, it
plans again."""
from __future__ import annotations

from omnigym import info_keys as K


class PlannerPolicy:
    name = "planner"

    def __init__(self, **_):
        self._plan: list[str] = []
        self._env = None

    def reset(self, env=None, seed=None, member=None) -> None:
        if env is None:
            raise ValueError("the planner needs the environment (it plans from the true state)")
        self._env = env.unwrapped
        self._plan = self._env.expert_plan()

    def act(self, obs, info):
        if not self._plan or info.get(K.INVALID_ACTION):
            self._plan = self._env.expert_plan()
        action = self._plan.pop(0) if self._plan else "[standup]"
        if self._env.action_mode == "discrete":
            actions = info[K.ADMISSIBLE_ACTIONS]
            return actions.index(action) if action in actions else 0
        return action
