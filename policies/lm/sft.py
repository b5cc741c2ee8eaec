"""Supervised fine-tuning (behaviour cloning) of the LM policy on expert episodes.

``omnigym train algo=sft policy=lm env=household`` (any text family) runs
``SFTLearner`` in the offline loop (``omnigym.offline_train``):

- **data**: ``algo.demonstrations.episodes`` episodes of the env's expert
  (or any agent) on the seeds of a panel (``train``: its split and seeds, and
  the seeds after its last when more episodes are asked for), recorded once
  with ``omnigym.rollout`` into the run folder
  (``demonstrations/episodes.parquet``; a resumed run reads them back; the
  chats learned from are in ``demonstrations/chat.jsonl``);
- **examples**: each episode's chat (``omnigym.conversation.chat``) in the
  model's own chat template, tool specs included where the family has them.
  ``algo.examples=episode``: one example per episode, every reply a target;
  ``algo.examples=step``: one example per reply, whose context is the prompt
  the agent builds at that step (``LMProcessor``: ``policy.config.history_turns``,
  ``max_prompt_tokens``), exactly what it will see when acting;
- **targets**: a reply's tokens and the end-of-turn token that closes it
  (what the agent generates, up to its eos); everything else (system, user,
  tool messages, the template's role headers) is left out of the loss;
- **rows**: one example per row, or with ``algo.packing`` several up to
  ``algo.max_tokens``. Positions restart at each example and no attention
  mask is passed, which transformers reads as separate sequences
  (block-diagonal attention): packed examples never see each other;
- **loss**: mean cross-entropy over the batch's target tokens, in float32
  (on cuda the forward pass autocasts to ``policy.config.dtype``);
- **checkpoints**: Hugging Face folders, the model and tokenizer (or the
  LoRA adapter and tokenizer when ``policy.lora.r`` > 0), so
  ``--policy RUN``, ``--policy lm:CHECKPOINT`` and ``load_lm`` read them.
"""
from __future__ import annotations

import dataclasses
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from omnigym import info_keys as K
from omnigym.policies.lm.config import LMConfig
from omnigym.policies.lm.processor import LMProcessor

EXAMPLES = ("episode", "step")
IGNORE = -100   # the label of a token that is not a target


class _NoMaskWarning(logging.Filter):
    """Rows need no attention mask (``collate``), but transformers warns about
    a missing one whenever a pad id shows in a batch: that line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "passing in an `attention_mask`" not in record.getMessage()


logging.getLogger("transformers.modeling_utils").addFilter(_NoMaskWarning())


@contextmanager
def _no_progress_bars():
    """``save_pretrained`` draws a bar per checkpoint under the run's own bar: hidden."""
    from transformers.utils import logging as hf_logging
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


@dataclass
class Example:
    ids: list[int]
    targets: list[bool]      # which ids the loss learns (a reply's tokens and its end token)
    env_steps: int           # environment steps (replies) the example holds
    shortened: bool = False  # it lost context to fit max_tokens (counted in the run's description)


# ------------------------------------------------------------ tokenizing
def render(tokenizer, messages: list[dict], tools, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def encode(tokenizer, text: str) -> list[int]:
    # As LMProcessor encodes prompts: the template's text, no added special tokens.
    return tokenizer.encode(text, add_special_tokens=False)


def reply_targets(reply_ids: list[int], end_ids: set[int]) -> list[bool]:
    """A reply's ids up to and including its first end-of-turn id are targets;
    what the template writes after it (a newline) is not: generation stops there."""
    targets, open_ = [], True
    for token in reply_ids:
        targets.append(open_)
        open_ = open_ and token not in end_ids
    return targets


def _reply_text(before: str, through: str) -> str:
    if not through.startswith(before):
        raise ValueError("the chat template renders a conversation differently once a reply follows it "
                         "(e.g. it drops earlier reasoning); its replies cannot be cut out as targets")
    return through[len(before):]


def tokenize_chat(tokenizer, messages: list[dict], tools=None, end_ids=frozenset()) -> Example:
    """The whole chat as the template renders it, every assistant reply a
    target. The text is cut at each reply (the template's rendering of the
    chat up to the reply with the generation prompt, then with the reply) and
    each piece encoded on its own, as the agent's prompt is encoded before it
    generates the reply."""
    ids, targets, done = [], [], ""
    replies = 0
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = render(tokenizer, messages[:i], tools, generation_prompt=True)
        through = render(tokenizer, messages[:i + 1], tools, generation_prompt=False)
        context = encode(tokenizer, _reply_text(done, before))
        reply = encode(tokenizer, _reply_text(before, through))
        ids += context + reply
        targets += [False] * len(context) + reply_targets(reply, set(end_ids))
        done, replies = through, replies + 1
    return Example(ids, targets, replies)


def tokenize_steps(processor, messages: list[dict], tools=None, end_ids=frozenset(),
                   max_tokens: int | None = None) -> list[Example]:
    """One example per assistant reply: the agent's prompt at that step
    (``LMProcessor.prompt``: history window, token budget) and the reply.
    A step longer than ``max_tokens`` is fitted the way the agent fits a long
    prompt: its oldest exchanges go first, the system message (the task)
    stays; cutting ids off the front instead would teach replies to a prompt
    without its task."""
    tokenizer, examples = processor.tokenizer, []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = processor.prompt(messages[:i], tools)
        before = render(tokenizer, prompt.messages, tools, generation_prompt=True)
        through = render(tokenizer, prompt.messages + [message], tools, generation_prompt=False)
        reply = encode(tokenizer, _reply_text(before, through))
        room = (max_tokens or 0) - len(reply)
        shortened = bool(max_tokens) and len(prompt.ids) > room
        if shortened:
            try:
                prompt = LMProcessor(tokenizer, processor.history_turns, room).prompt(messages[:i], tools)
            except ValueError:
                raise ValueError(f"algo.max_tokens={max_tokens} cannot hold the system message (the task, tool "
                                 f"specs) and a reply of {len(reply)} tokens; raise algo.max_tokens") from None
        examples.append(Example(prompt.ids + reply, [False] * len(prompt.ids) + reply_targets(reply, set(end_ids)), 1,
                                shortened))
    return examples


def cut(example: Example, max_tokens: int) -> Example:
    """At most ``max_tokens`` ids, the first ones (an episode keeps its start; its later replies go)."""
    if len(example.ids) <= max_tokens:
        return example
    targets = example.targets[:max_tokens]
    replies = sum(t and (i == 0 or not targets[i - 1]) for i, t in enumerate(targets))   # the replies kept
    return Example(example.ids[:max_tokens], targets, replies, shortened=True)


def pack(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Rows of example indices, each row's lengths summing to at most
    ``max_tokens``: first-fit, longest first (deterministic)."""
    rows, room = [], []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(max_tokens - lengths[i])
    return rows


def collate(rows: list[list[Example]], pad_id: int, device=None) -> dict:
    """``input_ids``, ``position_ids`` and ``labels`` (``IGNORE`` where no
    target) ``[rows, width]``. Each example's positions start at 0, and so
    do the padding's at the end of a row: every one is its own sequence."""
    import torch
    width = max(sum(len(e.ids) for e in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for e in row:
            n = len(e.ids)
            ids[r, at:at + n] = torch.as_tensor(e.ids)
            labels[r, at:at + n] = torch.where(torch.as_tensor(e.targets), torch.as_tensor(e.ids), IGNORE)
            positions[r, at:at + n] = torch.arange(n)
            at += n
        positions[r, at:] = torch.arange(width - at)
    return {"input_ids": ids.to(device), "position_ids": positions.to(device), "labels": labels.to(device)}


def row_logits(model, batch: dict, keep=0):
    """Logits of ``collate``'s rows, at the positions ``keep`` (0: all).
    Without a cache: transformers reads restarting positions as separate
    sequences only when there is no attention mask and no cache."""
    return model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                 logits_to_keep=keep).logits


def target_loss(model, batch: dict):
    """Mean cross-entropy of the target tokens; logits are computed only at
    the positions that predict one (a small slice of a chat's tokens)."""
    import torch
    labels = batch["labels"]
    predicts = (labels[:, 1:] != IGNORE).any(dim=0).nonzero().squeeze(-1)   # positions whose next token is a target
    logits = row_logits(model, batch, keep=predicts)
    targets = labels[:, predicts + 1]
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE)


# ----------------------------------------------------------------- data
def demonstration_seeds(env_id: str, panel: str | None, episodes: int) -> tuple[list[int], dict]:
    """(seeds, env kwargs) of ``episodes`` episodes on ``panel`` (its split and
    its seeds, continued past its last one), or on seeds 0.. when null."""
    from omnigym.evaluation import panel_seeds
    seeds, kwargs = ([], {}) if panel is None else panel_seeds(env_id, str(panel))[1:]
    seeds = list(seeds[:episodes])
    after = seeds[-1] + 1 if seeds else 0
    return seeds + list(range(after, after + episodes - len(seeds))), kwargs


def record_demonstrations(cfg, run_dir: Path) -> list:
    """The expert episodes of the run, recorded once into its folder."""
    from omnigym.episodes import read_episodes
    from omnigym.rllib.algo_config import to_dict
    from omnigym.rollout import rollout
    path = run_dir / "demonstrations" / "episodes.parquet"
    if path.exists():
        return read_episodes(path)
    demo = cfg.algo.demonstrations
    seeds, split = demonstration_seeds(cfg.env.id, demo.panel, int(demo.episodes))
    env_kwargs = {**to_dict(cfg.env.kwargs), **split}
    return rollout(demo.policy, cfg.env.id, seeds, env_kwargs=env_kwargs, record_to=str(path),
                   progress=bool(cfg.progress), desc=f"demonstrations ({demo.policy})")


def usable(episodes: list, successful_only: bool, env_id: str) -> list:
    kept = [e for e in episodes if e.success or not successful_only]
    if not kept:
        raise ValueError(f"none of the {len(episodes)} recorded episodes of {env_id} succeeded; "
                         "set algo.demonstrations.successful_only=false or record with another policy")
    return kept


# --------------------------------------------------------------- learner
class SFTLearner:
    """The offline loop's learner for LM policies (module docstring)."""

    metric_fields = ("tokens", "target_tokens")

    @classmethod
    def check(cls, cfg) -> None:
        """One-line errors for configs SFT cannot run, before any work."""
        from omnigym.registry import entry
        from omnigym.rllib.algo_config import to_dict
        options = to_dict(cfg.policy.get("config"))
        known = {f.name for f in dataclasses.fields(LMConfig)}
        if not options or not set(options) <= known:
            raise ValueError(f"algo=sft trains an LM policy: use policy=lm (policy={cfg.policy.name} "
                             f"has no LM options such as model, history_turns)")
        config = LMConfig.from_options(**options)
        if config.lora is not None:
            raise ValueError("policy.config.lora is an adapter to act with; to train LoRA adapters "
                             "set policy.lora.r (e.g. policy.lora.r=8) and leave policy.config.lora null")
        algo = cfg.algo
        if algo.examples not in EXAMPLES:
            raise ValueError(f"algo.examples={algo.examples!r}: use {' or '.join(EXAMPLES)}")
        for key, value, low in (("training.batch_size", algo.training.batch_size, 1),
                                ("max_tokens", algo.max_tokens, 16),
                                ("demonstrations.episodes", algo.demonstrations.episodes, 1)):
            if int(value) < low:
                raise ValueError(f"algo.{key}={value}: give {low} or more")
        env = entry(cfg.env.id)
        mode = (cfg.env.kwargs or {}).get("mode")
        if mode is not None and mode not in env.modes:
            raise ValueError(f"{cfg.env.id} has no mode {mode!r} (modes: {', '.join(env.modes)}); algo=sft trains "
                             "LMs on text envs (household, shell, tools; an env of yours with text observations "
                             "and no mode argument: policy.env_kwargs={})")
        if algo.demonstrations.policy == "expert" and not env.expert:
            raise ValueError(f"{cfg.env.id} has no expert to record; set algo.demonstrations.policy to an agent "
                             "(a run folder, module:Class)")

    def __init__(self, cfg, run_dir: Path, checkpoint: Path | None = None):
        from omnigym.policies.lm.model import add_lora
        from omnigym.policies.lm.processor import eos_ids
        from omnigym.rllib.algo_config import to_dict
        self.options, self.lora = to_dict(cfg.policy.config), to_dict(cfg.policy.get("lora"))
        self.config = LMConfig.from_options(**self.options)
        # Weights train in float32 (the config's dtype is for acting); a resumed
        # full fine-tune starts from its checkpoint, LoRA from the base model.
        folder = checkpoint if checkpoint is not None and not self.lora_on else None
        self.model, self.tokenizer = base_model(dataclasses.replace(self.config, dtype="float32"),
                                                to_dict(cfg.policy.get("tiny")) or None, folder)
        if cfg.algo.activation_checkpointing:   # each layer's activations recomputed in the backward pass
            self.model.activation_checkpointing_enable()
        if self.lora_on:
            self.model = add_lora(self.model, **self.lora)
            if checkpoint is not None:
                from peft import set_peft_model_state_dict
                from safetensors.torch import load_file
                set_peft_model_state_dict(self.model, load_file(checkpoint / "adapter_model.safetensors"))
        self.device = next(self.model.parameters()).device
        algo = cfg.algo
        self.batch_size, self.seed = int(algo.training.batch_size), int(cfg.seed)
        episodes = usable(record_demonstrations(cfg, Path(run_dir)), bool(algo.demonstrations.successful_only),
                          cfg.env.id)
        chats = Path(run_dir) / "demonstrations" / "chat.jsonl"
        if not chats.exists():   # the chats learned from, in the format TRL and HF datasets read
            from omnigym.episodes import export_chat_jsonl
            export_chat_jsonl(episodes, chats)
        self.episodes, self.env_steps = len(episodes), sum(e.length for e in episodes)
        self.policy = algo.demonstrations.policy
        end = eos_ids(self.model, self.tokenizer)
        processor = LMProcessor(self.tokenizer, self.config.history_turns, self.config.max_prompt_tokens)
        self.examples, self.cut = self._examples(episodes, algo.examples, int(algo.max_tokens), processor, end)
        lengths = [len(e.ids) for e in self.examples]
        self.rows = pack(lengths, int(algo.max_tokens)) if algo.packing else [[i] for i in range(len(lengths))]
        self.batches_per_epoch = len(self.rows) / self.batch_size

    @property
    def lora_on(self) -> bool:
        return int(self.lora.get("r") or 0) > 0

    def _examples(self, episodes: list, kind: str, max_tokens: int, processor, end: set) -> tuple[list, int]:
        from omnigym.conversation import chat
        examples = []
        for episode in episodes:
            if not isinstance(episode.observations[0], str) and not (episode.infos[0] or {}).get(K.TURN):
                raise ValueError(f"{episode.env_id} episodes are not text (observations of type "
                                 f"{type(episode.observations[0]).__name__}, no info['turn']); SFT needs a text env")
            conversation = chat(episode)
            messages, tools = conversation["messages"], conversation["tools"]
            if kind == "episode":
                examples.append(tokenize_chat(self.tokenizer, messages, tools, end))
                # The agent must be able to prompt with it: a too-long system message fails now, not after training.
                processor.prompt(messages[:next(i for i, m in enumerate(messages) if m["role"] == "assistant")], tools)
            else:
                examples += tokenize_steps(processor, messages, tools, end, max_tokens)
        # Steps were fitted by dropping their oldest exchanges (tokenize_steps); an episode keeps its start.
        fitted = [cut(e, max_tokens) for e in examples]
        trimmed = sum(e.shortened for e in fitted)
        fitted = [e for e in fitted if any(e.targets)]
        if not fitted:
            raise ValueError(f"no reply fits in algo.max_tokens={max_tokens}; raise it")
        return fitted, trimmed

    # --- the offline loop's protocol ---------------------------------------------------------

    def parameters(self):
        return self.model.parameters()

    @lru_cache(maxsize=2)
    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))

    def batch_rows(self, step: int) -> list[int]:
        """The rows of optimizer step ``step``: a fresh shuffle every epoch, fixed by (seed, step)."""
        n = len(self.rows)
        return [int(self._order(q // n)[q % n]) for q in range(step * self.batch_size, (step + 1) * self.batch_size)]

    def loss(self, step: int):
        import torch
        rows = [[self.examples[i] for i in self.rows[r]] for r in self.batch_rows(step)]
        batch = collate(rows, self.tokenizer.pad_token_id, self.device)
        self.model.train()
        dtype = getattr(torch, self.config.dtype)
        autocast = self.device.type == "cuda" and dtype != torch.float32   # on CPU half precision is slower
        with torch.autocast(self.device.type, dtype=dtype, enabled=autocast):
            loss = target_loss(self.model, batch)
        examples = [e for row in rows for e in row]
        return loss, {"env_steps": sum(e.env_steps for e in examples), "tokens": sum(len(e.ids) for e in examples),
                      "target_tokens": sum(sum(e.targets) for e in examples)}

    def save(self, folder: Path) -> None:
        from omnigym.policies.lm.model import save_lm, save_lora
        with _no_progress_bars():
            if self.lora_on:
                save_lora(self.model, folder)
                self.tokenizer.save_pretrained(folder)
            else:
                save_lm(self.model, self.tokenizer, folder)

    def agent(self, name: str):
        """An ``LMAgent`` acting with the weights being trained (``policy.config``'s options)."""
        from omnigym.policies.lm.agent import LMAgent
        self.model.eval()
        options = {k: v for k, v in self.options.items() if k not in ("model", "lora")}
        return LMAgent(self.model, self.tokenizer, **{**options, "name": name})

    def describe(self) -> str:
        tokens = sum(len(e.ids) for e in self.examples)
        targets = sum(sum(e.targets) for e in self.examples)
        cut = f", {self.cut} cut at max_tokens" if self.cut else ""
        return (f"{self.episodes} {self.policy} episodes ({self.env_steps} env steps; {len(self.examples)} examples "
                f"in {len(self.rows)} rows, {tokens:,} tokens of which {targets:,} targets{cut})")

    @classmethod
    def load_agent(cls, checkpoint: Path, config: dict, **kwargs):
        """The ``LMAgent`` of a checkpoint: its model, or its adapter on the run's base model."""
        from omnigym.policies.lm.agent import LMAgent
        policy = config["policy"]
        options = dict(policy.get("config") or {})
        if int((policy.get("lora") or {}).get("r") or 0) == 0:
            return LMAgent(**{**options, "model": str(checkpoint), **kwargs})
        options = {**options, "lora": str(checkpoint), **kwargs}
        if policy.get("tiny"):   # the base is the run's tiny random model, built again from its seed
            options.pop("model", None)
            return LMAgent(*base_model(LMConfig.from_options(**options), policy["tiny"]), **options)
        return LMAgent(**options)


def base_model(config: LMConfig, tiny: dict | None = None, folder: Path | None = None):
    """``(model, tokenizer)`` to start from: a saved ``folder``, else
    ``tiny_lm(**tiny)`` (``policy.tiny``: a random test model, the same one
    ``omnigym.rllib.lm_module`` builds), else ``load_lm(config)``; without
    the config's adapter (LMAgent applies it)."""
    from omnigym.policies.lm.model import load_lm, resolve_device, tiny_lm
    config = dataclasses.replace(config, lora=None)
    if folder is not None:
        return load_lm(dataclasses.replace(config, model=str(folder)))
    if tiny is not None:
        model, tokenizer = tiny_lm(**tiny)
        return model.to(resolve_device(config.device)), tokenizer
    return load_lm(config)
