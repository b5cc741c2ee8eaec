"""Text envs as token envs: what RLlib's env runners hand an LM RLModule.

RLlib batches arrays, not strings (a ``gymnasium.spaces.Text`` observation
breaks its connectors), so ``TokenTextEnv`` wraps any text env (household
text mode, shell FreeForm, tools) for an LM policy:

- observation: the chat so far, rendered by the LM's chat template through
  ``LMProcessor`` (history window, ``max_prompt_tokens``), as
  ``{"input_ids", "attention_mask"}``, both int64 of fixed length
  L = ``max_prompt_tokens``, left-padded (the last prompt token sits at the
  end of every row, where generation continues);
- action: K = ``max_new_tokens`` token ids (``MultiDiscrete``): the reply,
  then pad ids (an env that takes indices, household's discrete mode, gets
  the index of the admissible action the reply names). The wrapper decodes the ids before the first pad or eos id
  into the env's action text (cut before a stop string; special tokens kept
  for tool families, whose env parses the raw reply, as ``LMAgent`` does).

With the LM's ``mode=admissible`` the observation also holds
``candidates`` [C, K]: the ids of the env's admissible actions (each + eos,
padded with -1; ``omnigym.policies.lm.constrained``), which the RLlib module
restricts its replies to, when sampling and when training alike.

Token-in/token-out: the ids the module sampled are the action RLlib stores
in the episode, and the learner trains on exactly those ids; the text is
derived from them, never tokenised again.

Each sub-env keeps its own conversation from ``info["turn"]`` (or, for envs
without turns, from observations and actions; ``omnigym.conversation``).

``TokenView`` is the picklable recipe (which LM's tokenizer, which lengths)
that env runners apply to every sub-env they build; ``token_train_env``
turns a run's ``TrainEnv`` into its token view for ``omnigym.rllib``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from omnigym import conversation
from omnigym import info_keys as K
from omnigym.policies.lm.config import LMConfig
from omnigym.policies.lm.token_replies import ATTENTION_MASK, CANDIDATES, INPUT_IDS
from omnigym.rllib.env_spec import TrainEnv


def token_spaces(prompt_tokens: int, response_tokens: int, vocab_size: int,
                 candidates: int = 0) -> tuple[gym.Space, gym.Space]:
    """(observation space, action space) of a token view; ``candidates`` > 0
    adds the admissible actions' id table [candidates, response_tokens]."""
    spaces = {
        INPUT_IDS: gym.spaces.Box(0, vocab_size - 1, (prompt_tokens,), np.int64),
        ATTENTION_MASK: gym.spaces.Box(0, 1, (prompt_tokens,), np.int64),
    }
    if candidates:
        spaces[CANDIDATES] = gym.spaces.Box(-1, vocab_size - 1, (candidates, response_tokens), np.int64)
    return gym.spaces.Dict(spaces), gym.spaces.MultiDiscrete(np.full(response_tokens, vocab_size, dtype=np.int64))


class TokenTextEnv(gym.Wrapper):
    """A text env seen as prompt ids in, reply ids out (module docstring)."""

    def __init__(self, env: gym.Env, tokenizer, *, prompt_tokens: int = 2048, response_tokens: int = 64,
                 history_turns: int = 4, stop: list[str] | tuple = (), vocab_size: int | None = None,
                 candidates: int = 0):
        from omnigym.policies.lm.processor import LMProcessor
        super().__init__(env)
        check_text_env(env.observation_space, env.action_space, "(e.g. mode='text')")
        # Index actions (household's discrete mode): the reply is looked up among the admissible actions.
        self.by_index = isinstance(env.action_space, gym.spaces.Discrete)
        self.tokenizer = tokenizer
        self.processor = LMProcessor(tokenizer, history_turns, prompt_tokens)
        self.prompt_tokens, self.response_tokens = prompt_tokens, response_tokens
        self.stop = list(stop)
        self.pad_id = tokenizer.pad_token_id
        # A reply ends at its eos; pad ids fill the rest of the action.
        self.end_ids = {self.pad_id, tokenizer.eos_token_id} - {None}
        self.candidates = int(candidates)
        self.observation_space, self.action_space = token_spaces(
            prompt_tokens, response_tokens, vocab_size or len(tokenizer), self.candidates)
        self.messages: list[dict] = []
        self.admissible: list[str] = []
        self.tools: list[dict] | None = None
        self._last_obs = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.tools = info.get(K.TOOLS)
        self.messages = list(conversation.turns([obs], [], [info])[0])
        self._last_obs = obs
        self.admissible = list(info.get(K.ADMISSIBLE_ACTIONS) or [])
        return self.encode(), info

    def step(self, action):
        text = self.decode(action)
        obs, reward, terminated, truncated, info = self.env.step(self.env_action(text))
        # The step's turn (the env's own, or assistant = text, user = observation).
        self.messages += conversation.turns([self._last_obs, obs], [text], [{}, info])[1]
        self._last_obs = obs
        self.admissible = list(info.get(K.ADMISSIBLE_ACTIONS) or [])
        return self.encode(), reward, terminated, truncated, info

    def env_action(self, text: str):
        """What the env takes: the text, or, for index actions, the index of
        that admissible action (one past the list when the reply is none of
        them, which the env reports as an invalid action)."""
        if not self.by_index:
            return text
        if text in self.admissible:
            return self.admissible.index(text)
        return min(len(self.admissible), int(self.env.action_space.n) - 1)

    def get_state(self) -> dict:
        """A snapshot of the episode to branch from: the env's own
        (``get_state`` of the unwrapped env), its time-limit count and the
        conversation the prompts are built from."""
        inner = self.env.unwrapped
        if not hasattr(inner, "get_state"):
            raise ValueError(f"{type(inner).__name__} has no snapshots (get_state/set_state), so it cannot branch")
        limit = _time_limit(self.env)
        return {"env": inner.get_state(), "elapsed": None if limit is None else limit._elapsed_steps,
                "messages": list(self.messages), "tools": self.tools, "last_obs": self._last_obs,
                "admissible": list(self.admissible)}

    def set_state(self, state: dict) -> dict:
        """Continue from a ``get_state()`` snapshot (into this env or another
        of the same id, reset once); returns the observation there."""
        self.env.unwrapped.set_state(state["env"])
        limit = _time_limit(self.env)
        if limit is not None and state["elapsed"] is not None:
            limit._elapsed_steps = state["elapsed"]
        self.messages, self.tools = list(state["messages"]), state["tools"]
        self._last_obs, self.admissible = state["last_obs"], list(state["admissible"])
        return self.encode()

    def encode(self) -> dict:
        """The prompt for the next reply, left-padded to ``prompt_tokens``."""
        ids = self.processor.prompt(self.messages, self.tools).ids
        input_ids = np.full(self.prompt_tokens, self.pad_id, dtype=np.int64)
        attention_mask = np.zeros(self.prompt_tokens, dtype=np.int64)
        if ids:
            input_ids[-len(ids):] = ids
            attention_mask[-len(ids):] = 1
        obs = {INPUT_IDS: input_ids, ATTENTION_MASK: attention_mask}
        if self.candidates:
            from omnigym.policies.lm.constrained import candidate_table
            replies = [self.tokenizer.encode(a, add_special_tokens=False) for a in self.admissible]
            obs[CANDIDATES] = candidate_table(replies, self.candidates, self.response_tokens,
                                              self.tokenizer.eos_token_id)[0]
        return obs

    def decode(self, action) -> str:
        """The env action a reply's ids stand for: the ids before the first
        pad or eos, as text, cut before a stop string."""
        from omnigym.policies.lm.processor import response_text
        ids = [int(t) for t in np.asarray(action).reshape(-1)]
        end = next((i for i, t in enumerate(ids) if t in self.end_ids), len(ids))
        tools = self.tools is not None
        text = response_text(self.tokenizer, ids[:end], self.stop, keep_special=tools)
        return text if tools else text.strip()


def check_text_env(observation_space: gym.Space, action_space: gym.Space, hint: str) -> None:
    """The LM reads text and writes text, or an admissible action's index."""
    if not isinstance(observation_space, gym.spaces.Text) or not isinstance(action_space,
                                                                            (gym.spaces.Text, gym.spaces.Discrete)):
        raise ValueError(f"the LM reads and writes text, but this env has {observation_space} observations and "
                         f"{action_space} actions; make it in a text mode {hint}")


def _time_limit(env: gym.Env):
    from omnigym.rllib.episode_control import find_wrapper
    return find_wrapper(env, gym.wrappers.TimeLimit)


# --- the LM's tokenizer, in every process that builds sub-envs ------------------------------------

_TOKENIZERS: dict[str, tuple] = {}


def lm_tokenizer(lm: dict, tiny: dict | None = None):
    """``(tokenizer, vocab_size)`` of the LM that ``lm`` (``LMConfig``
    options) names, or of ``tiny_lm(**tiny)``; cached per process, since
    every sub-env of a runner needs it. ``vocab_size`` is the model's (it
    can exceed the tokenizer's length), read from its config, not its weights."""
    key = json.dumps([lm.get("model"), tiny], sort_keys=True, default=str)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = _load_tokenizer(LMConfig.from_options(**lm), tiny)
    return _TOKENIZERS[key]


def _load_tokenizer(config: LMConfig, tiny: dict | None):
    if tiny is not None:
        from omnigym.policies.lm.model import tiny_tokenizer
        tokenizer = tiny_tokenizer()            # the one tiny_lm builds its vocabulary from
        return tokenizer, len(tokenizer)
    from transformers import AutoConfig, AutoTokenizer

    from omnigym.policies.lm.model import model_folder, prepare_tokenizer
    folder = model_folder(config.model)
    try:
        tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(folder))
        vocab_size = int(AutoConfig.from_pretrained(folder).vocab_size)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load the tokenizer of {folder}: {str(exc).splitlines()[0]}") from exc
    return tokenizer, max(vocab_size, len(tokenizer))


@dataclass(frozen=True)
class TokenView:
    """How an LM policy sees a text env: its ``LMConfig`` options (tokenizer,
    ``max_prompt_tokens`` = L, ``max_new_tokens`` = K, ``history_turns``,
    ``stop``) and ``tiny`` (``tiny_lm`` keyword arguments: a random test
    model instead of ``lm["model"]``). Calling it wraps a sub-env; it
    pickles, so it travels to remote env runners inside the ``TrainEnv``."""

    lm: dict
    tiny: dict | None = None

    @property
    def config(self) -> LMConfig:
        return LMConfig.from_options(**self.lm)

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        config = self.config
        return token_spaces(config.max_prompt_tokens, config.max_new_tokens, lm_tokenizer(self.lm, self.tiny)[1],
                            self.candidates)

    @property
    def candidates(self) -> int:
        config = self.config
        return config.max_candidates if config.mode == "admissible" else 0

    def __call__(self, env: gym.Env) -> TokenTextEnv:
        config = self.config
        tokenizer, vocab_size = lm_tokenizer(self.lm, self.tiny)
        return TokenTextEnv(env, tokenizer, prompt_tokens=config.max_prompt_tokens,
                            response_tokens=config.max_new_tokens, history_turns=config.history_turns,
                            stop=config.stop, vocab_size=vocab_size, candidates=self.candidates)


@dataclass(frozen=True)
class TokenTrainEnv(TrainEnv):
    """A ``TrainEnv`` whose sub-envs are built through ``wrapper`` (a
    ``TokenView``); its spaces are the token spaces."""

    wrapper: TokenView | None = None


def token_train_env(env: TrainEnv, policy: dict) -> TokenTrainEnv:
    """The token view of a resolved text ``TrainEnv`` for an LM ``policy``
    node (``config``: ``LMConfig`` options; optional ``tiny``)."""
    seen = env.observation_space["observations"] if env.mask else env.observation_space   # the env's own, unmasked
    check_text_env(seen, env.action_space, "(env.kwargs.mode=text or discrete)")
    view = TokenView(dict(policy.get("config") or {}), dict(policy["tiny"]) if policy.get("tiny") else None)
    observation_space, action_space = view.spaces()
    fields = {f.name: getattr(env, f.name) for f in dataclasses.fields(TrainEnv)}
    return TokenTrainEnv(**{**fields, "observation_space": observation_space, "action_space": action_space,
                            "mask": False}, wrapper=view)
