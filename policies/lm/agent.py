"""``LMAgent``: a causal LM acting in any text family, a whole batch at once.

Each episode (slot) keeps its conversation from the turns the env emits
(``info["turn"]``, see ``omnigym.conversation``): the reset turn starts it,
each step's turn extends it; envs without turns get the derived ones
(observation as ``user``, action as ``assistant``). Every call builds one
prompt per row with ``LMProcessor`` (chat template, history window) and then:

- ``mode="generate"``: one batched generation; the reply's text is the
  action. Tool families (``info["tools"]`` on reset) get the raw text,
  special tokens included, since the env parses the tool calls; where the
  env takes indices (a ``Discrete`` action space: household's discrete
  mode) a reply that is an index or the text of an admissible action
  becomes that index;
- ``mode="score"``: rows whose info lists ``admissible_actions`` score every
  one of them (``score_actions``) and take the best (``temperature`` 0) or
  sample ``softmax(score / temperature)``; rows without a list generate.
  The choice is returned as the index where the env takes indices (its
  ``action_space`` is ``Discrete``) and as the action's text elsewhere, so
  the agent needs no particular env mode: household's text and discrete
  modes, shell FreeForm and the tools candidates all work. To evaluate
  with indices, make the env in discrete mode (``--env-kwarg mode=discrete``,
  or set ``agent.env_kwargs = {"mode": "discrete"}``: ``omnigym.rollout``
  merges an agent's ``env_kwargs`` into the env's, as for trained runs);
- ``mode="admissible"``: one batched generation restricted to each row's
  admissible actions (``constrained``: a prefix-trie mask on the tokens), so
  the reply is always one of them; rows without a list generate freely.

``agent.last`` holds the latest call's prompts, ``Generation`` (ids,
log-probs, entropies) and scores, for trainers.

Which episode a row continues: ``omnigym.rollout`` passes each row's slot
(``slots=``, see ``omnigym.agents``), and ``reset_batch`` names the slots
whose episodes start anew. Called without slots, rows are slots 0..n-1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omnigym import conversation
from omnigym import info_keys as K
from omnigym.policies.lm.config import LMConfig
from omnigym.policies.lm.generation import Generation, batch_chunks, check_request, generate
from omnigym.policies.lm.model import load_lm, load_lora, prepare_tokenizer
from omnigym.policies.lm.processor import LMProcessor, Prompt, response_text
from omnigym.policies.lm.scoring import ActionScores, score_actions


@dataclass
class _Episode:
    env: object = None
    discrete: bool = False          # the env takes indices (a Discrete action space), not text
    messages: list[dict] = field(default_factory=list)
    tools: list[dict] | None = None
    last_action: object = None

    def extend(self, obs, info: dict) -> None:
        turn = info.get(K.TURN)
        if isinstance(turn, list):
            if any(m.get("role") == "system" for m in turn):   # a reset turn starts the conversation
                self.messages, self.tools = list(turn), info.get(K.TOOLS)
            else:
                self.messages += turn
        elif not self.messages:
            self.messages = [conversation.user(conversation.action_text(obs))]
        else:
            self.messages += [conversation.assistant(conversation.action_text(self.last_action)),
                              conversation.user(conversation.action_text(obs))]


@dataclass
class LastStep:
    """What the latest ``act_batch`` did, row by row."""

    prompts: list[Prompt]
    generation: Generation | None = None        # for the rows in generated_rows, in that order
    generated_rows: list[int] = field(default_factory=list)
    scores: list[ActionScores] | None = None    # for the rows in scored_rows, in that order
    scored_rows: list[int] = field(default_factory=list)
    choices: dict[int, int] = field(default_factory=dict)   # scored row -> index of the chosen candidate


class LMAgent:
    """A batched agent (``act_batch``) over a causal LM; options are ``LMConfig``'s."""

    # Episodes the harness steps together (evaluate, omnigym eval): one
    # generate call serves them all, so a panel costs about as much as one episode.
    episodes_per_batch = 32

    def __init__(self, model=None, tokenizer=None, **options):
        import torch
        if isinstance(model, (str, Path)):
            options["model"], model = str(model), None
        self.config = cfg = LMConfig.from_options(**options)
        if model is None:
            model, tokenizer = load_lm(cfg)
        else:
            if tokenizer is None:
                raise ValueError("LMAgent(model=...) with a loaded model needs its tokenizer too")
            prepare_tokenizer(tokenizer)
            if cfg.lora is not None:
                model = load_lora(model, cfg.lora).eval()
        self.model, self.tokenizer = model, tokenizer
        self.name = cfg.name
        check_request(model, 1, cfg.max_prompt_tokens, cfg.max_new_tokens, cfg.max_batch_tokens)
        self.processor = LMProcessor(tokenizer, cfg.history_turns, cfg.max_prompt_tokens)
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)
        self.env_kwargs: dict | None = None   # see the module docstring
        self.last: LastStep | None = None
        self._episodes: dict[int, _Episode] = {}    # slot -> its episode

    # --- the agent protocol ----------------------------------------------------------------

    def reset_batch(self, envs, seeds, members, slots=None) -> None:
        """New episodes on ``envs`` in ``slots``; sampling is seeded by (seed, env seeds, members)."""
        slots = range(len(envs)) if slots is None else slots
        for slot, env in zip(slots, envs):
            self._episodes[slot] = _Episode(env=env, discrete=hasattr(getattr(env, "action_space", None), "n"))
        entropy = [self.config.seed] + [s or 0 for s in seeds] + [m or 0 for m in members]
        self.generator.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1))

    def reset(self, env=None, seed=None, member=None) -> None:
        self._episodes = {}
        self.reset_batch([env], [seed], [member])

    def act(self, obs, info):
        return self.act_batch([obs], [info])[0]

    def act_batch(self, observations: list, infos: list, slots=None) -> list:
        episodes = self._rows(infos, range(len(infos)) if slots is None else slots)
        for episode, obs, info in zip(episodes, observations, infos):
            episode.extend(obs, info)
        prompts = self.processor.batch([e.messages for e in episodes], [e.tools for e in episodes])
        step = LastStep(prompts=prompts)
        actions: list = [None] * len(infos)
        if self.config.mode == "score":
            step.scored_rows = [i for i, info in enumerate(infos) if info.get(K.ADMISSIBLE_ACTIONS)]
        scored = set(step.scored_rows)
        step.generated_rows = [i for i in range(len(infos)) if i not in scored]
        if step.scored_rows:
            self._score(step, episodes, infos, actions)
        if step.generated_rows:
            self._generate(step, episodes, infos, actions)
        for episode, action in zip(episodes, actions):
            episode.last_action = action
        self.last = step
        return actions

    def _rows(self, infos: list, slots) -> list[_Episode]:
        """The episode each row continues; a slot never reset starts one at its reset turn."""
        rows = []
        for slot, info in zip(slots, infos):
            if slot not in self._episodes:
                if not _is_reset(info):
                    raise ValueError(f"LMAgent: slot {slot} continues an episode it never saw start; "
                                     f"call reset_batch(envs, seeds, members, slots) first, as omnigym.rollout does")
                self._episodes[slot] = _Episode()
            rows.append(self._episodes[slot])
        return rows

    # --- acting ------------------------------------------------------------------------------

    def _score(self, step: LastStep, episodes: list, infos: list, actions: list) -> None:
        import torch
        cfg = self.config
        candidates = [list(infos[i][K.ADMISSIBLE_ACTIONS]) for i in step.scored_rows]
        step.scores = score_actions(self.model, self.tokenizer, [step.prompts[i].ids for i in step.scored_rows],
                                    candidates, max_batch_tokens=cfg.max_batch_tokens)
        for row, scores, names in zip(step.scored_rows, step.scores, candidates):
            values = scores.by(cfg.score_norm)
            if cfg.temperature > 0:
                logits = torch.as_tensor(values / cfg.temperature, dtype=torch.float64, device=self.device)
                choice = int(torch.multinomial(torch.softmax(logits, 0), 1, generator=self.generator))
            else:
                choice = int(np.argmax(values))
            step.choices[row] = choice
            actions[row] = choice if episodes[row].discrete else names[choice]

    def _generate(self, step: LastStep, episodes: list, infos: list, actions: list) -> None:
        cfg = self.config
        rows = step.generated_rows
        tables = self._candidates([infos[r] for r in rows]) if cfg.mode == "admissible" else None
        parts = [generate(self.model, self.tokenizer, [step.prompts[rows[i]].ids for i in chunk],
                          max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                          stop=cfg.stop, generator=self.generator, max_batch_tokens=cfg.max_batch_tokens,
                          candidates=None if tables is None else tables[chunk])
                 for chunk in batch_chunks([len(step.prompts[r].ids) for r in rows], cfg.max_new_tokens,
                                           cfg.max_batch_tokens)]
        step.generation = _concat(parts)
        for row, ids, text in zip(rows, step.generation.response_ids, step.generation.texts):
            if episodes[row].tools is not None:   # the env parses tool calls from the raw reply
                text = response_text(self.tokenizer, ids, cfg.stop, keep_special=True)
            else:
                text = text.strip()
            actions[row] = _env_action(text, infos[row]) if episodes[row].discrete else text

    def _candidates(self, infos: list):
        """``[rows, C, max_new_tokens]`` candidate table of the rows' admissible actions."""
        from omnigym.policies.lm.constrained import candidate_table
        from omnigym.policies.lm.scoring import candidate_ids
        cfg = self.config
        lists = [[candidate_ids(self.tokenizer, a)[:-1] for a in info.get(K.ADMISSIBLE_ACTIONS) or []] for info in infos]
        count = max([1] + [len(c) for c in lists])
        return np.stack([candidate_table(c, count, cfg.max_new_tokens, self.tokenizer.eos_token_id)[0] for c in lists])


def _is_reset(info: dict) -> bool:
    turn = info.get(K.TURN)
    return isinstance(turn, list) and any(m.get("role") == "system" for m in turn)


def _env_action(text: str, info: dict):
    """A reply as a discrete env's action: the index it is or names (an
    admissible action's text), else the text, which the env reports as
    invalid (it never raises on a bad action)."""
    admissible = list(info.get(K.ADMISSIBLE_ACTIONS) or [])
    if text in admissible:
        return admissible.index(text)
    return int(text) if text.isascii() and text.isdigit() else text


def _concat(parts: list[Generation]) -> Generation:
    first = parts[0]
    merged = {name: [x for part in parts for x in getattr(part, name)]
              for name in ("texts", "prompt_ids", "response_ids", "logprobs", "entropies", "finish_reasons")}
    return Generation(**merged, temperature=first.temperature, top_p=first.top_p)
