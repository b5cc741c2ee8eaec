"""A trained RLModule as an omnigym agent (``act`` / ``act_batch``), so the
core evaluation harness (success with intervals, pass@k, reports) scores
RLlib checkpoints exactly as it scores any other agent."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from omnigym import info_keys as K

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"


def find_module_dir(path: str | Path) -> Path:
    """The RLModule folder inside an algorithm checkpoint or a run folder, as
    an absolute path (RLlib reads checkpoints by URI: a relative one has no scheme)."""
    path = Path(path).expanduser().resolve()
    if (path / MODULE_SUBDIR).is_dir():
        return path / MODULE_SUBDIR
    if path.name == "default_policy" and path.is_dir():
        return path
    latest = path / "checkpoints" / "latest"
    if latest.is_file():
        return find_module_dir(path / "checkpoints" / latest.read_text().strip())
    raise ValueError(f"{path} is not an omnigym run or RLlib checkpoint (no {MODULE_SUBDIR})")


def run_config(path: str | Path) -> dict | None:
    """The resolved ``config.yaml`` of the run folder that holds ``path`` (the
    run itself, one of its checkpoints or the module inside one); None for a
    bare RLlib checkpoint."""
    from omegaconf import OmegaConf
    path = Path(path).expanduser().resolve()
    # A run folder, checkpoints/iter_N in it, or the module folder 4 levels inside that.
    for folder in [path, *path.parents][:7]:
        if (folder / "config.yaml").is_file() and (folder / "checkpoints").is_dir():
            return OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"), resolve=True)
    return None


def is_checkpoint(spec) -> bool:
    if not isinstance(spec, (str, Path)):
        return False
    try:
        find_module_dir(spec)
        return True
    except ValueError:
        return False


def trained_module(algo, module_id: str | None = None):
    """A standalone copy of the RLModule an algorithm trains (in eval mode),
    built from ``algo.config``'s spec with the learner's weights: the
    learner holds the truth for every algorithm, BC (no env runners) included,
    with local and remote learners alike."""
    from ray.rllib.core import DEFAULT_MODULE_ID
    module_id = module_id or DEFAULT_MODULE_ID
    module = algo.config.get_rl_module_spec().build()
    module.set_state(algo.learner_group.get_weights([module_id])[module_id])
    module.eval()
    return module


def module_agent(module, name: str = "trained", greedy: bool = True, seed: int = 0):
    """The agent of a trained RLModule: an ``RLModuleAgent``, or, for a module
    that writes text (an LM over token ids), the text agent it provides."""
    if hasattr(module, "as_agent"):
        return module.as_agent(name=name, temperature=0.0 if greedy else 1.0, seed=seed)
    return RLModuleAgent(module, name=name, greedy=greedy, seed=seed)


class RLModuleAgent:
    """Greedy (or sampled) actions from an RLlib RLModule, one observation
    (``act``) or a batch of them in one forward pass (``act_batch``)."""

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
        # The env the module was trained on, so evaluation can make the same
        # one: set by from_checkpoint from a run folder's config.yaml.
        self.env_id: str | None = None
        self.env_kwargs: dict | None = None
        self.env_modules: list[str] | None = None
        self.run_name: str | None = None

    @classmethod
    def from_checkpoint(cls, path, **kwargs):
        """The agent of a run folder or checkpoint, from any relative or absolute
        path. A run's agent is named after its algorithm (as in the run's own
        report) and evaluates on the env the run was trained on."""
        from ray.rllib.core.rl_module.rl_module import RLModule
        config = run_config(path) or {}
        kwargs.setdefault("name", (config.get("algo") or {}).get("name", "trained"))
        agent = module_agent(RLModule.from_checkpoint(str(find_module_dir(path))), **kwargs)
        agent.run_name = config.get("run_name")
        if config:
            env = config.get("env") or {}
            agent.env_id, agent.env_kwargs = env.get("id"), dict(env.get("kwargs") or {})
            agent.env_modules = list(env.get("modules") or [])
        return agent

    def reset(self, env=None, seed=None, member=None) -> None:
        self.rng = np.random.default_rng([seed or 0, member or 0])

    def act(self, obs, info):
        return self.act_batch([obs], [info])[0]

    def act_batch(self, observations: list, infos: list) -> list:
        """One action per observation, from a single forward pass."""
        torch = self.torch
        from ray.rllib.core.columns import Columns
        x = torch.as_tensor(np.stack([np.asarray(o, dtype=np.float32) for o in observations]))
        if self.masked:
            x = {"observations": x, "action_mask": torch.as_tensor(np.stack([self._mask(i) for i in infos]))}
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: x})
        logits = out[Columns.ACTION_DIST_INPUTS].numpy()
        space = self.module.action_space
        if hasattr(space, "n"):
            if not self.greedy:  # Gumbel-max: one exact sample per row of the softmax
                logits = logits - np.log(-np.log(self.rng.uniform(1e-12, 1.0, logits.shape)))
            return [int(a) for a in np.argmax(logits, axis=-1)]
        mean, log_std = np.split(logits, 2, axis=-1)
        actions = mean if self.greedy else mean + np.exp(log_std) * self.rng.standard_normal(mean.shape)
        if self.squashed:
            actions = space.low + (np.tanh(actions) + 1.0) * 0.5 * (space.high - space.low)
        return list(np.clip(actions, space.low, space.high).astype(space.dtype))

    def _mask(self, info: dict) -> np.ndarray:
        mask = info.get(K.ACTION_MASK)
        return np.ones(self.module.action_space.n, np.float32) if mask is None else np.asarray(mask, np.float32)
