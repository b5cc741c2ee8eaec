"""The env of a training run, resolved once.

``omnigym train`` makes its env one time, reads what RLlib and the policies
need to know about it (spaces as RLlib sees them, whether actions are masked,
the action-table layout of action-scoring policies) and hands this frozen
``TrainEnv`` to the algorithm builders, the BC path and the workers' env
creator, none of which builds an env to find out again.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym

from omnigym import info_keys as K
from omnigym.groups import GroupSchedule
from omnigym.rllib.envs import MaskInObservation, import_modules


@dataclass(frozen=True)
class TrainEnv:
    id: str
    kwargs: dict = field(default_factory=dict)
    modules: tuple[str, ...] = ()              # imported first: installed names or absolute .py paths
    observation_space: gym.Space | None = None  # as RLlib sees it (after MaskInObservation)
    action_space: gym.Space | None = None
    mask: bool = False                          # info["action_mask"] moves into a Dict observation
    layout: dict | None = None                  # env.unwrapped.policy_layout(), where the env has one
    groups: GroupSchedule | None = None         # grouped resets of the sub-envs (GRPO/GiGPO)
    armed: bool = False                         # one episode per arm() and failing episodes flagged (group RL)
    step_timeout_s: float | None = None         # armed: a step running longer ends its episode


def resolve_env(env_id: str, kwargs: dict | None = None, modules=(), groups: GroupSchedule | None = None) -> TrainEnv:
    """Make the env once and describe it. A schedule's tasks are tried here,
    so an unknown task fails now rather than on a remote worker. ``modules``
    (names or .py paths, see :mod:`omnigym.user_code`) are resolved here, in
    the current directory, into specs that workers import from anywhere."""
    from omnigym.registry import make
    from omnigym.user_code import portable_spec
    kwargs, modules = dict(kwargs or {}), tuple(portable_spec(m) for m in modules or ())
    import_modules(modules)
    env = make(env_id, **kwargs)
    try:
        _, info = env.reset(seed=0)
        mask = isinstance(env.action_space, gym.spaces.Discrete) and K.ACTION_MASK in info
        for task in (groups.tasks if groups is not None else None) or ():
            env.reset(seed=0, options={"task": task})
        observation_space = MaskInObservation(env).observation_space if mask else env.observation_space
        return TrainEnv(env_id, kwargs, modules, observation_space, env.action_space, mask,
                        _layout(env), groups)
    finally:
        env.close()


def _layout(env: gym.Env) -> dict | None:
    describe = getattr(env.unwrapped, "policy_layout", None)
    if describe is None:
        return None
    try:
        return describe()
    except ValueError:  # the env has a layout only in some modes (household: vector)
        return None


def group_schedule(groups, num_sub_envs: int) -> GroupSchedule | None:
    """The ``groups`` block of the train config as a schedule over all
    ``num_sub_envs`` sub-envs (None when groups are off: size 1)."""
    size = int(groups.size) if groups else 1
    if size <= 1:
        return None
    if num_sub_envs % size:
        raise ValueError(f"groups.size={size} must divide the number of sub-envs ({num_sub_envs} = "
                         f"env runners x resources.num_envs_per_env_runner)")
    first, last = (int(s) for s in groups.seeds)
    if last < first:
        raise ValueError(f"groups.seeds=[{first}, {last}]: the last seed comes before the first")
    tasks = tuple(groups.tasks) if groups.get("tasks") else None
    return GroupSchedule(size, range(first, last + 1), tasks, num_groups=num_sub_envs // size)


def num_sub_envs(resources) -> int:
    """Sub-envs sampling side by side: the driver's when there are no env runners."""
    return max(int(resources.num_env_runners), 1) * int(resources.num_envs_per_env_runner)


def train_env(cfg) -> TrainEnv:
    """The ``TrainEnv`` of a composed train config (``env``, ``groups``,
    ``resources``; ``algo.armed_episodes`` and ``algo.step_timeout_s``),
    through ``policy.env_view`` where the policy has one."""
    from omegaconf import OmegaConf
    env = cfg.env
    kwargs = OmegaConf.to_container(env.kwargs, resolve=True) if env.get("kwargs") is not None else {}
    groups = group_schedule(cfg.get("groups"), num_sub_envs(cfg.resources))
    resolved = resolve_env(env.id, kwargs, tuple(env.get("modules") or ()), groups)
    algo = cfg.get("algo") or {}
    if algo.get("armed_episodes"):   # group RL: one episode per sub-env per iteration, failing ones flagged
        import dataclasses
        timeout = algo.get("step_timeout_s")
        resolved = dataclasses.replace(resolved, armed=True, step_timeout_s=float(timeout) if timeout else None)
    view = cfg.get("policy", {}).get("env_view")
    if view:  # a policy that sees the env its own way (an LM: token ids), on driver and workers alike
        from hydra.utils import get_method
        return get_method(view)(resolved, OmegaConf.to_container(cfg.policy, resolve=True))
    return resolved
