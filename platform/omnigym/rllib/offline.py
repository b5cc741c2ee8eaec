"""Behaviour cloning on RLlib's offline API (new API stack) from omnigym episodes.

omnigym records whole episodes (:class:`omnigym.episodes.Episode`); RLlib 2.60's
``OfflineData`` reads a Ray Dataset and maps it, batch by batch, through
``OfflinePreLearner`` into ``SingleAgentEpisode``s and the learner connector.
:func:`episodes_to_rllib_offline` writes the demonstrations in the format that
pipeline reads by default, and :func:`bc_config` returns a ``BCConfig`` wired to
them::

    from omnigym.rollout import rollout
    from omnigym.rllib.offline import bc_config, episodes_to_rllib_offline, mask_in_observation

    demos = rollout("expert", "household/Hold-v0", range(50), env_kwargs={"mode": "vector"})
    path = episodes_to_rllib_offline(demos, "/tmp/hold-bc", obs_transform=mask_in_observation)
    algo = bc_config("household/Hold-v0", path, env_config={"mode": "vector"},
                     rl_module_spec=...).build_algo()

Format: one row per transition (RLlib's default, ``input_read_method="read_parquet"``)
-------------------------------------------------------------------------------------
Parquet files in a directory with exactly the column names of
``ray.rllib.core.columns.Columns`` that ``OfflinePreLearner`` looks up through its
``SCHEMA``: ``eps_id`` (string), ``t`` (int64, step index inside the episode),
``obs``, ``actions``, ``rewards`` (float64), ``new_obs``, ``terminateds``,
``truncateds`` (bool, the episode's own per-step flags: true only on its last
row). This is the layout RLlib's own ``OfflineSingleAgentEnvRunner`` records
(``output_write_episodes=False``), and ``OfflinePreLearner._map_to_episodes``
turns each row into a one-step ``SingleAgentEpisode``.

No other column is written on purpose: ``_map_to_episodes`` turns *every*
column outside its schema into ``extra_model_outputs``, and ``infos`` (a dict
per row) would become a struct column. Values are encoded so that ``ray.data``
hands ``OfflinePreLearner`` the original numpy values:

* ``np.ndarray`` -> Ray's tensor extension (``ArrowTensorArray``, what
  ``ray.data.Dataset.write_parquet`` itself writes for ndarray columns): dtype
  and any shape kept. Without Ray, pyarrow/pandas read it as a flat
  ``large_list`` with the shape in the field's extension metadata;
* ``dict`` (e.g. ``{"observations": vec, "action_mask": mask}``) -> a struct
  column of the same encodings; ``ray.data`` gives back dicts of ndarrays;
* Python/numpy scalars -> int64 / float64 / bool / string columns.

Why not ``input_read_episodes=True`` (a ``item`` column of msgpack'd
``SingleAgentEpisode`` states)? (1) In this environment it cannot run at all:
``OfflinePreLearner.__call__`` imports ``msgpack_numpy`` for that path, which
is not installed, so BC fails inside the ``MapBatches(OfflinePreLearner)``
actor with ``ModuleNotFoundError: No module named 'msgpack_numpy'``. (2) Even
with it, 2.60 pushes every batch of episodes through an ``EpisodeReplayBuffer``
in each pre-learner (sampling ``train_batch_size_per_learner`` steps from it,
dropping episodes whose id the buffer already holds), refuses episodes that
are not done, and the bytes are only readable through RLlib's classes. The row
format is the default read path, maps 1:1 (every recorded transition is
trained on once per pass over the data) and is plain Parquet.

Ray is imported lazily (inside the functions); writing needs only Ray's tensor
extension type, not a running Ray cluster.
"""
from __future__ import annotations

import inspect
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from omnigym.episodes import Episode, atomic_write, read_episodes

__all__ = [
    "COLUMNS",
    "episodes_to_rllib_offline",
    "episodes_to_rllib_table",
    "mask_in_observation",
    "bc_config",
    "offline_files",
    "greedy_action",
    "record_demonstrations",
]

#: Column names in the order they are written (RLlib's ``Columns`` values).
COLUMNS = ("eps_id", "t", "obs", "actions", "rewards", "new_obs", "terminateds", "truncateds")

ObsTransform = Callable[[Any, dict], Any]


# --------------------------------------------------------------------------
# Observation transforms
# --------------------------------------------------------------------------
def mask_in_observation(obs: Any, info: dict) -> dict:
    """``{"observations": obs, "action_mask": float32 mask}`` from ``info["action_mask"]``.

    The same form as ``omnigym.rllib.envs.MaskInObservation`` (mask as a
    float32 ``Box(0, 1, (n,))``), i.e. what omnigym's RLlib modules expect.
    """
    mask = (info or {}).get("action_mask")
    if mask is None:
        raise ValueError("mask_in_observation: info has no 'action_mask' "
                         "(record a Discrete env that reports action masks)")
    return {"observations": obs, "action_mask": np.asarray(mask, dtype=np.float32)}


# --------------------------------------------------------------------------
# Arrow encoding of observation / action values
# --------------------------------------------------------------------------
def _tensor_array(values: list[np.ndarray]) -> pa.Array:
    from ray.data.extensions import ArrowTensorArray  # Ray's tensor extension type

    dtypes = {v.dtype for v in values}
    if len(dtypes) != 1:
        raise TypeError(f"ndarray values of one column must share a dtype, got {sorted(map(str, dtypes))}")
    if len({v.shape for v in values}) == 1:
        return ArrowTensorArray.from_numpy(np.stack(values))
    return ArrowTensorArray.from_numpy(values)  # variable-shaped tensors


def _encode(values: list, name: str) -> pa.Array:
    """One Arrow column (or struct child) from a list of per-row values."""
    if not values:
        raise ValueError(f"column {name!r} has no values")
    first = values[0]
    if isinstance(first, dict):
        keys = list(first)
        if not all(isinstance(v, dict) and list(v) == keys for v in values):
            raise TypeError(f"column {name!r}: every dict value needs the same keys {keys}")
        if not keys:
            raise TypeError(f"column {name!r}: empty dicts cannot be stored")
        children = [_encode([v[k] for v in values], f"{name}.{k}") for k in keys]
        return pa.StructArray.from_arrays(children, [str(k) for k in keys])
    if isinstance(first, np.ndarray):
        if not all(isinstance(v, np.ndarray) for v in values):
            raise TypeError(f"column {name!r} mixes ndarrays and other values")
        return _tensor_array(values)
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return pa.array([bool(v) for v in values], pa.bool_())
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return pa.array([int(v) for v in values], pa.int64())
    if all(isinstance(v, (int, float, np.integer, np.floating))
           and not isinstance(v, (bool, np.bool_)) for v in values):
        return pa.array([float(v) for v in values], pa.float64())
    if all(isinstance(v, str) for v in values):
        return pa.array(values, pa.string())
    kinds = sorted({type(v).__name__ for v in values})
    raise TypeError(f"column {name!r}: cannot store values of type {kinds} for RLlib; "
                    "pass an obs_transform that returns ndarrays, numbers or dicts of them")


# --------------------------------------------------------------------------
# Episodes -> transitions
# --------------------------------------------------------------------------
def _as_episodes(episodes) -> list[Episode]:
    if isinstance(episodes, (str, os.PathLike)):
        return read_episodes(episodes)
    if isinstance(episodes, Episode):
        return [episodes]
    return list(episodes)


def episodes_to_rllib_table(episodes: Iterable[Episode] | str | os.PathLike,
                            obs_transform: ObsTransform | None = None,
                            eps_id_prefix: str | None = None) -> pa.Table:
    """The transitions of ``episodes`` as one Arrow table in RLlib's row format.

    ``obs_transform(obs, info) -> obs`` is applied to every observation with
    the info that came with it (``obs``: step t's, ``new_obs``: step t+1's).
    Episodes without steps are skipped. ``eps_id`` is
    ``"<prefix>-<episode number>"``; the prefix defaults to a random one so
    ids stay unique when several files go into one directory.
    """
    transform = obs_transform or (lambda obs, info: obs)
    prefix = eps_id_prefix if eps_id_prefix is not None else uuid.uuid4().hex[:12]
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    for index, episode in enumerate(_as_episodes(episodes)):
        if not isinstance(episode, Episode):
            raise TypeError(f"expected omnigym Episode objects, got {type(episode).__name__}")
        episode.check()
        if not episode.actions:
            continue
        infos = episode.infos
        observations = [transform(o, infos[i] if i < len(infos) else {})
                        for i, o in enumerate(episode.observations)]
        eps_id = f"{prefix}-{index:06d}"
        for t, action in enumerate(episode.actions):
            cols["eps_id"].append(eps_id)
            cols["t"].append(t)
            cols["obs"].append(observations[t])
            cols["actions"].append(action)
            cols["rewards"].append(float(episode.rewards[t]))
            cols["new_obs"].append(observations[t + 1])
            cols["terminateds"].append(bool(episode.terminated[t]))
            cols["truncateds"].append(bool(episode.truncated[t]))
    if not cols["t"]:
        raise ValueError("no transitions: every episode is empty")
    arrays = {
        "eps_id": pa.array(cols["eps_id"], pa.string()),
        "t": pa.array(cols["t"], pa.int64()),
        "obs": _encode(cols["obs"], "obs"),
        "actions": _encode(cols["actions"], "actions"),
        "rewards": pa.array(cols["rewards"], pa.float64()),
        "new_obs": _encode(cols["new_obs"], "new_obs"),
        "terminateds": pa.array(cols["terminateds"], pa.bool_()),
        "truncateds": pa.array(cols["truncateds"], pa.bool_()),
    }
    if arrays["obs"].type != arrays["new_obs"].type:
        raise TypeError(f"obs and new_obs encode differently: {arrays['obs'].type} vs {arrays['new_obs'].type}")
    return pa.table(arrays)


def offline_files(out_dir: str | os.PathLike) -> list[Path]:
    """The finished Parquet files in an offline-data directory, sorted."""
    return sorted(p for p in Path(out_dir).glob("*.parquet")
                  if p.is_file() and not p.name.startswith("."))


def episodes_to_rllib_offline(episodes: Iterable[Episode] | str | os.PathLike,
                              out_dir: str | os.PathLike,
                              obs_transform: ObsTransform | None = None,
                              *, shuffle_seed: int | None = None,
                              max_rows_per_file: int | None = None) -> str:
    """Write ``episodes`` as RLlib offline data into ``out_dir``; returns its path.

    ``episodes``: omnigym ``Episode`` objects, or a Parquet file/directory
    that :func:`omnigym.episodes.read_episodes` reads. The directory gets
    ``part-NNNNNN.parquet`` files (numbered after any already there, each
    written atomically) in the one-row-per-transition layout described in
    the module docstring; pass the returned path as ``input_`` to
    ``config.offline_data`` (or to :func:`bc_config`). Keep the directory for
    this data only: RLlib reads every ``*.parquet`` in it.
    ``shuffle_seed``: write the rows in a random order (seeded). RLlib's
    row format treats every row as its own one-step episode and iterates in
    file order, so unshuffled minibatches hold consecutive steps of one
    episode; shuffling here decorrelates them at no training cost (``eps_id``
    and ``t`` still give the original order). The alternative is
    ``iter_batches_kwargs={"local_shuffle_buffer_size": n}`` in the config,
    which reshuffles every pass but costs time on every iteration.
    ``max_rows_per_file`` splits large data into several files (Ray Data
    reads files in parallel).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = episodes_to_rllib_table(episodes, obs_transform)
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(table.num_rows)
        table = table.take(pa.array(order))
    existing = [p.stem for p in offline_files(out)]
    start = 1 + max((int(s.split("-")[1]) for s in existing
                     if s.startswith("part-") and s.split("-")[1].isdigit()), default=-1)
    step = max_rows_per_file or table.num_rows
    if step < 1:
        raise ValueError("max_rows_per_file must be at least 1")
    for k, offset in enumerate(range(0, table.num_rows, step)):
        piece = table.slice(offset, step)
        atomic_write(out / f"part-{start + k:06d}.parquet",
                     lambda f, piece=piece: pq.write_table(piece, f))
    return str(out.resolve())


# --------------------------------------------------------------------------
# BCConfig
# --------------------------------------------------------------------------
# Config methods that overrides are routed to, in lookup order.
_SECTIONS = ("training", "offline_data", "learners", "environment", "env_runners",
             "evaluation", "rl_module", "framework", "debugging", "reporting", "api_stack")


def _section_params(config, section: str) -> set[str]:
    names: set[str] = set()
    for cls in type(config).__mro__:
        fn = cls.__dict__.get(section)
        if fn is None:
            continue
        names.update(p.name for p in inspect.signature(fn).parameters.values()
                     if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD)
    names.discard("self")
    return names


def _apply_overrides(config, overrides: dict) -> None:
    """Send each keyword to the config method that takes it (typos fail loudly)."""
    params = {s: _section_params(config, s) for s in _SECTIONS}
    grouped: dict[str, dict] = {}
    for key, value in overrides.items():
        section = next((s for s in _SECTIONS if key in params[s]), None)
        if section is None:
            raise TypeError(f"bc_config: unknown setting {key!r} (not a parameter of "
                            f"BCConfig.{', .'.join(_SECTIONS)})")
        grouped.setdefault(section, {})[key] = value
    for section, kwargs in grouped.items():
        getattr(config, section)(**kwargs)


def bc_config(env, data_path: str | os.PathLike | list, *, env_config: dict | None = None,
              train_batch_size_per_learner: int = 256, dataset_num_iters_per_learner: int = 10,
              lr: float = 1e-3, **overrides):
    """A ``BCConfig`` (RLlib 2.60, new API stack) that trains on ``data_path``.

    ``env``: a resolved :class:`~omnigym.rllib.env_spec.TrainEnv` (what
    ``omnigym train`` passes), or an omnigym or gymnasium id, resolved here
    with ``env_config`` as its kwargs. Its spaces are the ones RLlib sees:
    when the env reports action masks, the Dict observation
    ``{"observations", "action_mask"}`` (record with
    ``obs_transform=mask_in_observation`` then); they must match what the
    data holds.

    ``data_path``: what :func:`episodes_to_rllib_offline` returned (a
    directory or list of Parquet files). The settings suit a small machine:
    one local learner (``num_learners=0``), no env runners, one pre-learner
    actor for ``map_batches`` (``compute=ActorPoolStrategy(size=1)``,
    ``num_cpus=1``; Ray 2.51+ deprecates ``concurrency``), one prefetched
    batch. ``dataset_num_iters_per_learner`` is how many
    minibatches of ``train_batch_size_per_learner`` one ``algo.train()``
    call learns on.

    ``overrides``: any keyword of ``BCConfig.training``, ``.offline_data``,
    ``.learners``, ``.environment``, ``.env_runners``, ``.evaluation``,
    ``.rl_module``, ``.framework``, ``.debugging``, ``.reporting`` or
    ``.api_stack`` (e.g. ``rl_module_spec=...``, ``map_batches_kwargs=...``,
    ``evaluation_interval=1``); each goes to the method that takes it and an
    unknown keyword raises ``TypeError``.
    """
    import ray
    from ray.rllib.algorithms.bc import BCConfig
    from omnigym.rllib import envs as rl_envs
    from omnigym.rllib.env_spec import TrainEnv, resolve_env

    if not isinstance(env, TrainEnv):
        env = resolve_env(env, env_config)
    input_ = [str(p) for p in data_path] if isinstance(data_path, (list, tuple)) else [str(data_path)]
    config = (
        BCConfig()
        .environment(env=rl_envs.register(env), observation_space=env.observation_space,
                     action_space=env.action_space)
        .learners(num_learners=0)
        .env_runners(num_env_runners=0)
        .training(lr=lr, train_batch_size_per_learner=train_batch_size_per_learner)
        .offline_data(
            input_=input_,
            # One pre-learner actor with one CPU: on a 2-core machine the
            # default (concurrency=max(2, num_learners)) leaves nothing for
            # reading. `compute` wins over the default `concurrency` that
            # OfflineData merges in (and avoids its deprecation warning).
            map_batches_kwargs={"compute": ray.data.ActorPoolStrategy(size=1), "num_cpus": 1},
            iter_batches_kwargs={"prefetch_batches": 1},
            dataset_num_iters_per_learner=dataset_num_iters_per_learner,
        )
    )
    _apply_overrides(config, overrides)
    return config


# --------------------------------------------------------------------------
# Using the trained policy
# --------------------------------------------------------------------------
def greedy_action(module, obs) -> int:
    """The most likely action of a Discrete-action torch RLModule for one observation."""
    import torch
    import tree
    from ray.rllib.core.columns import Columns

    batch = tree.map_structure(lambda x: torch.as_tensor(np.asarray(x)[None]), obs)
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: batch})
    return int(torch.argmax(out[Columns.ACTION_DIST_INPUTS][0]))


# --------------------------------------------------------------------------
# omnigym train algo=bc
# --------------------------------------------------------------------------
def record_demonstrations(policy: str, seeds: Iterable[int], env, out_dir: str | os.PathLike, *,
                          shuffle_seed: int | None = None, progress: bool = False) -> str:
    """Roll out ``policy`` (e.g. the env's ``expert``) on ``seeds`` of the
    resolved ``env`` and write the episodes for BC in the observation form
    RLlib sees (the mask moved in when ``env.mask``); returns the folder.
    Reuses the folder when a resumed run already wrote it."""
    from omnigym.rollout import rollout
    out_dir = Path(out_dir)
    if offline_files(out_dir):
        return str(out_dir)
    episodes = rollout(policy, env.id, seeds, env_kwargs=env.kwargs, progress=progress,
                       desc=f"demonstrations ({policy})")
    return episodes_to_rllib_offline(episodes, out_dir, mask_in_observation if env.mask else None,
                                     shuffle_seed=shuffle_seed)
