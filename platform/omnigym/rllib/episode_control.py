"""Sub-env wrappers that make RLlib's sampling exact for group RL.

``ArmedEpisodes``: RLlib's ``sample(num_episodes=n)`` resets every sub-env and
returns the first n episodes to finish; a sub-env whose episode ends early
starts another one at once (auto-reset), so short episodes would be counted
twice and groups would lose members. An armed sub-env plays exactly one real
episode: ``arm()`` lets its next reset through (optionally with a seed),
every later reset parks it in an *idle* episode (a one-token prompt, reward
0, never done) until it is armed again. Idle episodes never finish, so RLlib
never returns them, and their one-token prompts cost the LM almost nothing.

``EpisodeFaults``: an episode whose step raises (or runs past
``step_timeout_s``) ends there, truncated, with ``info["episode_error"]``
naming the env, the seed and the error; the trainer drops it and the
iteration goes on. A warning is logged once per episode.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading

import gymnasium as gym
import numpy as np

IDLE = "idle"                    # info key: this sub-env is parked, not playing an episode
EPISODE_ERROR = "episode_error"  # info key: the episode ended because a step raised; drop it
SEED = "seed"                    # reset info key: the seed an armed episode was given

log = logging.getLogger("omnigym.episodes")


class StepTimeout(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Raise ``StepTimeout`` in the block after ``seconds`` (main thread only:
    elsewhere a signal cannot interrupt, and the block runs unbounded)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise StepTimeout(f"the step ran past {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class EpisodeFaults(gym.Wrapper):
    """An episode whose step raises ends truncated, flagged (module docstring)."""

    def __init__(self, env: gym.Env, step_timeout_s: float | None = None):
        super().__init__(env)
        self.step_timeout_s = step_timeout_s
        self._seed = None
        self._last: tuple = (None, {})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._seed = seed
        obs, info = self.env.reset(seed=seed, options=options)
        self._last = (obs, info)
        return obs, info

    def step(self, action):
        try:
            with deadline(self.step_timeout_s):
                obs, reward, terminated, truncated, info = self.env.step(action)
        except Exception as exc:   # noqa: BLE001 -- any failure of the env ends this episode only
            task = self._last[1].get("task_id")
            name = type(self.env.unwrapped).__name__ + (f" task {task}" if task else "")
            message = f"{name} seed {self._seed}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("episode dropped: %s", message)
            obs, info = self._last
            return obs, 0.0, False, True, {**info, EPISODE_ERROR: message}
        self._last = (obs, info)
        return obs, reward, terminated, truncated, info


def _idle_observation(space: gym.Space, last):
    """What a parked sub-env shows: the last observation cut to its final
    token (token views: ``attention_mask`` of one), else the last observation
    as it was, else zeros."""
    if last is None:
        last = _zeros(space)
    if isinstance(last, dict) and "attention_mask" in last:
        mask = np.zeros_like(last["attention_mask"])
        mask[-1] = 1
        return {**last, "attention_mask": mask}
    return last


def _zeros(space: gym.Space):
    if isinstance(space, gym.spaces.Dict):
        return {k: _zeros(s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Box):
        return np.clip(np.zeros(space.shape, space.dtype), space.low, space.high).astype(space.dtype)
    return space.sample()   # Text and the like: any valid observation


class ArmedEpisodes(gym.Wrapper):
    """One real episode per ``arm()`` (module docstring)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.armed = False
        self.idle = True
        self._seed = None
        self._last = None

    def arm(self, seed: int | None = None, episode: int | None = None) -> None:
        """Let the next reset start a real episode, with ``seed`` when given;
        ``episode``: the grouped-reset episode number it plays (so a resumed
        run continues its group schedule instead of starting it again)."""
        self.armed, self._seed = True, seed
        if episode is not None:
            from omnigym.groups import GroupedResets
            grouped = find_wrapper(self.env, GroupedResets)
            if grouped is not None:
                grouped.resets = int(episode)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if not self.armed:
            self.idle = True
            return _idle_observation(self.observation_space, self._last), {IDLE: True}
        self.armed, self.idle = False, False
        given = self._seed
        obs, info = self.env.reset(seed=given if given is not None else seed, options=options)
        self._last = obs
        return obs, ({**info, SEED: given} if given is not None else info)

    def step(self, action):
        if self.idle:
            return _idle_observation(self.observation_space, self._last), 0.0, False, False, {IDLE: True}
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last = obs
        return obs, reward, terminated, truncated, info


def find_wrapper(env: gym.Env, kind: type):
    """The first wrapper of type ``kind`` in ``env``'s chain, or None."""
    while env is not None:
        if isinstance(env, kind):
            return env
        env = getattr(env, "env", None)
    return None


def sub_envs(runner) -> list[gym.Env]:
    """The sub-envs of an RLlib env runner (its vector env is wrapped by
    RLlib's ``DictInfoToList``, which does not forward ``envs``)."""
    return list(runner.env.unwrapped.envs)
