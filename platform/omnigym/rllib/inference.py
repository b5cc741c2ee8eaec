"""A trained RLModule as an omnigym policy (``act(obs, info)``), so the core
evaluation harness (success with intervals, pass@k, reports) scores RLlib
checkpoints exactly as it scores any other policy."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from omnigym import info_keys as K

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"


def find_module_dir(path: str | Path) -> Path:
    """The RLModule folder inside an algorithm checkpoint or a run folder."""
    path = Path(path)
    if (path / MODULE_SUBDIR).is_dir():
        return path / MODULE_SUBDIR
    if path.name == "default_policy" and path.is_dir():
        return path
    latest = path / "checkpoints" / "latest"
    if latest.is_file():
        return find_module_dir(path / "checkpoints" / latest.read_text().strip())
    raise ValueError(f"{path} is not an omnigym run or RLlib checkpoint (no {MODULE_SUBDIR})")


def is_checkpoint(spec) -> bool:
    if not isinstance(spec, (str, Path)):
        return False
    try:
        find_module_dir(spec)
        return True
    except ValueError:
        return False


class RLModulePolicy:
    """Greedy (or sampled) actions from an RLlib RLModule."""

    def __init__(self, module, name: str = "trained", greedy: bool = True, seed: int = 0):
        import torch
        self.torch = torch
        self.module = module
        self.module.eval()
        self.name = name
        self.greedy = greedy
        self.rng = np.random.default_rng(seed)
        self.masked = getattr(module, "masked", False)
        # RLlib's SAC module squashes a Gaussian through tanh into the bounds.
        self.squashed = "SAC" in type(module).__name__

    @classmethod
    def from_checkpoint(cls, path, **kwargs):
        from ray.rllib.core.rl_module.rl_module import RLModule
        module = RLModule.from_checkpoint(str(find_module_dir(path)))
        return cls(module, **kwargs)

    def reset(self, env=None, seed=None, member=None) -> None:
        self.rng = np.random.default_rng([seed or 0, member or 0])

    def act(self, obs, info):
        torch = self.torch
        from ray.rllib.core.columns import Columns
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)[None])
        if self.masked:
            mask = info.get(K.ACTION_MASK)
            mask = np.ones(self.module.action_space.n, np.float32) if mask is None else np.asarray(mask, np.float32)
            x = {"observations": x, "action_mask": torch.as_tensor(mask[None])}
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: x})
        logits = out[Columns.ACTION_DIST_INPUTS][0].numpy()
        space = self.module.action_space
        if hasattr(space, "n"):
            if self.greedy:
                return int(np.argmax(logits))
            p = np.exp(logits - logits.max())
            return int(self.rng.choice(len(p), p=p / p.sum()))
        mean, log_std = np.split(logits, 2)
        action = mean if self.greedy else mean + np.exp(log_std) * self.rng.standard_normal(mean.shape)
        if self.squashed:
            action = space.low + (np.tanh(action) + 1.0) * 0.5 * (space.high - space.low)
        return np.clip(action, space.low, space.high).astype(space.dtype)
