"""Export omnigym episodes as a LeRobot dataset (codebase version v3.0).

The layout is the one LeRobot's ``LeRobotDataset(repo_id, root=...)``
reads (checked against lerobot 0.4.4)::

    ROOT/
      meta/info.json                 fps, features, counts, path templates
      meta/stats.json                per-feature min/max/mean/std/count/q01..q99
      meta/tasks.parquet             task string (index) -> task_index
      meta/episodes/chunk-000/file-000.parquet
                                     one row per episode: length, tasks, frame range
                                     (dataset_from_index/to_index), data and video file
                                     pointers, video from/to timestamps, per-episode stats
      data/chunk-000/file-000.parquet
                                     one row per frame
      videos/<camera key>/chunk-000/file-000.mp4
                                     H.264, every episode's frames back to back

Frames
------
LeRobot pairs the observation at time t with the action taken at t. An
omnigym episode of T steps has T+1 observations, so it becomes T frames:
frame t holds observation t, action t and what that action led to as
``next.reward``, ``next.done`` (terminated or truncated) and, when the env
reports it, ``next.success``. The final observation (after the last action)
has no action and is dropped. Episodes with no steps are skipped.

Observation keys map to features as follows: LeRobot's canonical keys
(``observation.state``, ``observation.images.<camera>``) are kept; other
dict keys get an ``observation.`` prefix; uint8 (H, W, 3) arrays become
videos; a text observation (``instruction``) becomes the frame's task
string (falling back to ``info["instruction"]``, the task id, then the env
id). Floating arrays are stored as float32, as LeRobot's policies expect.

Every episode goes into one data file and one video per camera (LeRobot
splits files only while recording, by size; its reader accepts any size).
The dataset is assembled in a hidden temporary folder next to ``root`` and
renamed into place at the end, so an interrupted export leaves nothing that
looks like a dataset.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from omnigym.datasets.video import Mp4Writer
from omnigym.episodes import Episode

__all__ = ["export_lerobot", "CODEBASE_VERSION"]

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000                 # LeRobot's default max files per chunk folder
DATA_FILES_SIZE_IN_MB = 100        # LeRobot's defaults, recorded in info.json
VIDEO_FILES_SIZE_IN_MB = 200
_CHUNK = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + _CHUNK + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + _CHUNK + ".mp4"
EPISODES_PATH = "meta/episodes/" + _CHUNK + ".parquet"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
VIDEO_KEYINT = 2                   # a key frame every 2 frames, as LeRobot encodes: cheap seeks
TEXT_KEYS = ("instruction", "task")


# --------------------------------------------------------------------------
# Observation/action -> LeRobot features
# --------------------------------------------------------------------------
def _is_image(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3
            and value.shape[2] == 3)


def _feature_name(key: str, image: bool) -> str:
    if key.startswith("observation.") or key == "observation":
        return key
    return f"observation.images.{key}" if image else f"observation.{key}"


def _as_array(value: Any, what: str) -> np.ndarray:
    """Numbers and numeric arrays as arrays with LeRobot dtypes (float32, int64, bool)."""
    if isinstance(value, (bool, np.bool_)):
        return np.array([value], dtype=bool)
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = np.array([value])
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise ValueError(f"LeRobot export needs numeric {what}, got {type(value).__name__}")
    if value.ndim == 0:
        value = value.reshape(1)
    if value.ndim != 1:
        raise ValueError(f"LeRobot export supports 1-D {what} vectors and (H, W, 3) uint8 images; "
                         f"got shape {value.shape}")
    kind = value.dtype.kind
    return value.astype(np.float32 if kind == "f" else bool if kind == "b" else np.int64, copy=False)


def _split_observation(obs: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str | None]:
    """(vector features, image features, text) of one observation."""
    vectors, images, text = {}, {}, None
    items = obs.items() if isinstance(obs, dict) else [("observation", obs)]
    for key, value in items:
        if isinstance(value, str):
            if text is None or key in TEXT_KEYS:
                text = value
        elif _is_image(value):
            images[_feature_name(key, True) if key != "observation" else "observation.image"] = value
        elif isinstance(value, dict):
            raise ValueError(f"LeRobot export supports flat dict observations; {key!r} is a dict")
        else:
            name = "observation.state" if key == "observation" else _feature_name(key, False)
            vectors[name] = _as_array(value, f"observation {key!r}")
    return vectors, images, text


def _frame_task(ep: Episode, t: int, text: str | None) -> str:
    if text:
        return text
    info_text = ep.infos[t].get("instruction") if t < len(ep.infos) else None
    return info_text if isinstance(info_text, str) and info_text else (ep.task_id or ep.env_id)


# --------------------------------------------------------------------------
# Statistics (LeRobot's conventions: compute_stats.py)
# --------------------------------------------------------------------------
def _vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension stats over frames; values (T, d) or (T,) -> arrays of shape (d,)/(1,)."""
    x = values.reshape(len(values), -1).astype(np.float64)
    stats = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0),
             "count": np.array([len(x)])}
    for q, v in zip(QUANTILES, np.quantile(x, QUANTILES, axis=0)):
        stats[f"q{int(q * 100):02d}"] = v
    return stats


def _sample_indices(n: int) -> np.ndarray:
    # LeRobot's sampling of episode frames for image stats: n**0.75 evenly
    # spaced frames, at least 100 (or all), at most 10,000.
    k = n if n < 100 else max(100, min(int(n ** 0.75), 10_000))
    return np.round(np.linspace(0, n - 1, k)).astype(int)


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats in [0, 1] with shape (3, 1, 1), on sampled frames as LeRobot does."""
    sample = frames[_sample_indices(len(frames))]
    h, w = sample.shape[1:3]
    if max(h, w) >= 300:  # LeRobot downsamples big frames before stats
        step = int(max(h, w) / 150)
        sample = sample[:, ::step, ::step]
    stats = _vector_stats(sample.reshape(-1, 3))
    stats = {k: v if k == "count" else (v / 255.0).reshape(3, 1, 1) for k, v in stats.items()}
    stats["count"] = np.array([len(sample)])
    return stats


def _aggregate(stats_list: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset stats from episode stats: count-weighted means, pooled variance
    and quantiles, global min/max (LeRobot's aggregate_feature_stats)."""
    counts = np.array([s["count"][0] for s in stats_list], dtype=np.float64)
    total = counts.sum()
    w = counts.reshape(-1, *([1] * np.ndim(stats_list[0]["mean"])))
    means = np.stack([s["mean"] for s in stats_list])
    mean = (means * w).sum(0) / total
    var = ((np.stack([s["std"] for s in stats_list]) ** 2 + (means - mean) ** 2) * w).sum(0) / total
    out = {"min": np.min([s["min"] for s in stats_list], axis=0),
           "max": np.max([s["max"] for s in stats_list], axis=0),
           "mean": mean, "std": np.sqrt(var), "count": np.array([int(total)])}
    for key in stats_list[0]:
        if key.startswith("q"):
            out[key] = (np.stack([s[key] for s in stats_list]) * w).sum(0) / total
    return out


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------
@dataclass
class _Columns:
    """Frame columns of the whole dataset, filled episode by episode."""
    vectors: dict[str, list[np.ndarray]] = field(default_factory=dict)   # per episode (T, ...)
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)    # per episode (T, H, W, 3)
    tasks: list[list[str]] = field(default_factory=list)                 # per episode, per frame


def _episode_columns(ep: Episode, i: int, has_success: bool) -> tuple[dict, dict, list[str]]:
    vectors: dict[str, list] = {}
    images: dict[str, list] = {}
    tasks = []
    for t in range(ep.length):
        vec, img, text = _split_observation(ep.observations[t])
        vec["action"] = _as_array(ep.actions[t], "actions")
        for name, value in vec.items():
            vectors.setdefault(name, []).append(value)
        for name, value in img.items():
            images.setdefault(name, []).append(value)
        tasks.append(_frame_task(ep, t, text))
    vectors["next.reward"] = [np.float32(r) for r in ep.rewards]
    vectors["next.done"] = [bool(a or b) for a, b in zip(ep.terminated, ep.truncated)]
    if has_success:
        vectors["next.success"] = [bool(info.get("success", False)) for info in ep.infos[1:]]
    try:
        stacked_vec = {k: np.stack(v) for k, v in vectors.items()}
        stacked_img = {k: np.stack(v) for k, v in images.items()}
    except ValueError as exc:
        raise ValueError(f"episode {i} ({ep.env_id}, seed {ep.seed}): observation or action "
                         f"shapes change within the episode: {exc}") from exc
    return stacked_vec, stacked_img, tasks


def _arrow_type(dtype: np.dtype, shape: tuple) -> pa.DataType:
    scalar = pa.from_numpy_dtype(dtype)
    # Shape (1,) is a plain value in LeRobot's HF features; vectors are fixed-size lists.
    return scalar if shape == (1,) else pa.list_(scalar, shape[0])


def _column(values: np.ndarray, shape: tuple) -> pa.Array:
    typ = _arrow_type(values.dtype, shape)
    if shape == (1,):
        return pa.array(values.reshape(-1), typ)
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).reshape(-1)),
                                             list_size=shape[0])


def _names(name: str, shape: tuple) -> list[str] | None:
    if shape == (1,):
        return None
    short = name.split(".")[-1]
    return [f"{short}_{i}" for i in range(shape[0])]


def export_lerobot(episodes: Iterable[Episode], root: str | os.PathLike, *, fps: int,
                   robot_type: str | None = None, overwrite: bool = False, crf: int = 20,
                   progress: bool = False) -> Path:
    """Write ``episodes`` as a LeRobot v3.0 dataset folder at ``root``; returns ``root``.

    ``fps``: the env's control rate (frames per second of data and video);
    LeRobot needs an integer. ``robot_type`` is recorded in info.json
    (default: the env id). ``crf``: H.264 quality (lower is better; 20 keeps
    small renders close to the originals). ``overwrite`` replaces an
    existing ``root``; otherwise an existing non-empty ``root`` is an error.
    """
    root = Path(root)
    if int(fps) != fps or fps <= 0:
        raise ValueError(f"LeRobot datasets need a positive integer fps, got {fps}")
    fps = int(fps)
    if root.exists() and (not root.is_dir() or any(root.iterdir())) and not overwrite:
        raise ValueError(f"{root} already exists and is not empty (pass overwrite=True to replace it)")
    episodes = [ep for ep in episodes if ep.length > 0]
    if not episodes:
        raise ValueError("no episode with at least one step to export")
    has_success = any("success" in info for ep in episodes for info in ep.infos[1:])

    # Frame data, episode by episode; every episode must have the same features.
    cols = _Columns()
    for i, ep in enumerate(episodes):
        vec, img, tasks = _episode_columns(ep, i, has_success)
        if i and (set(vec) != set(cols.vectors) or set(img) != set(cols.images)):
            raise ValueError(f"episode {i} has features {sorted(vec) + sorted(img)}, episode 0 has "
                             f"{sorted(cols.vectors) + sorted(cols.images)}")
        for name, values in vec.items():
            first = cols.vectors.setdefault(name, [])
            if first and (first[0].shape[1:] != values.shape[1:] or first[0].dtype != values.dtype):
                raise ValueError(f"episode {i}: {name} is {values.dtype}{values.shape[1:]}, "
                                 f"episode 0 has {first[0].dtype}{first[0].shape[1:]}")
            first.append(values)
        for name, values in img.items():
            first = cols.images.setdefault(name, [])
            if first and first[0].shape[1:] != values.shape[1:]:
                raise ValueError(f"episode {i}: {name} frames are {values.shape[1:3]}, "
                                 f"episode 0 has {first[0].shape[1:3]}")
            first.append(values)
        cols.tasks.append(tasks)

    lengths = np.array([ep.length for ep in episodes])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    task_list = list(dict.fromkeys(t for tasks in cols.tasks for t in tasks))
    task_index = {t: i for i, t in enumerate(task_list)}

    # LeRobot's bookkeeping columns, per episode.
    for i, n in enumerate(lengths):
        frame_index = np.arange(n, dtype=np.int64)
        bookkeeping = {
            "timestamp": (frame_index / fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(n, i, dtype=np.int64),
            "index": starts[i] + frame_index,
            "task_index": np.array([task_index[t] for t in cols.tasks[i]], dtype=np.int64),
        }
        for name, values in bookkeeping.items():
            cols.vectors.setdefault(name, []).append(values)

    features: dict[str, dict] = {}
    for name, per_ep in cols.vectors.items():
        shape = tuple(per_ep[0].shape[1:]) or (1,)
        features[name] = {"dtype": per_ep[0].dtype.name, "shape": list(shape),
                          "names": _names(name, shape)}

    tmp = root.parent / f".{root.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    tmp.mkdir(parents=True)
    try:
        # Videos first: their encoding details go into info.json.
        for name, per_ep in cols.images.items():
            h, w = per_ep[0].shape[1:3]
            path = tmp / VIDEO_PATH.format(video_key=name, chunk_index=0, file_index=0)
            with Mp4Writer(path, fps, crf=crf, keyint=VIDEO_KEYINT) as writer:
                for frames in _progress(per_ep, progress, f"encoding {name}"):
                    for frame in frames:
                        writer.append(frame)
            features[name] = {
                "dtype": "video", "shape": [int(h), int(w), 3], "names": ["height", "width", "channels"],
                "info": {"video.height": int(h), "video.width": int(w), "video.codec": "h264",
                         "video.pix_fmt": writer.pix_fmt, "video.is_depth_map": False,
                         "video.fps": fps, "video.channels": 3, "has_audio": False}}

        # Frames: data/chunk-000/file-000.parquet.
        data_cols = {name: _column(np.concatenate(per_ep), tuple(features[name]["shape"]))
                     for name, per_ep in cols.vectors.items()}
        _write_parquet(pa.table(data_cols), tmp / DATA_PATH.format(chunk_index=0, file_index=0))

        # Stats: per episode (stored with the episode), then aggregated.
        ep_stats = [{} for _ in episodes]
        for name, per_ep in cols.vectors.items():
            for i, values in enumerate(per_ep):
                ep_stats[i][name] = _vector_stats(values)
        for name, per_ep in cols.images.items():
            for i, frames in enumerate(per_ep):
                ep_stats[i][name] = _image_stats(frames)
        stats = {name: _aggregate([s[name] for s in ep_stats]) for name in ep_stats[0]}
        _write_json(tmp / "meta/stats.json", {k: {s: v.tolist() for s, v in st.items()}
                                              for k, st in stats.items()})

        # Tasks: a pandas frame indexed by task string, as LeRobot reads it
        # (pandas comes with ray[rllib]; LeRobot itself uses it for this file).
        import pandas as pd
        tasks_df = pd.DataFrame({"task_index": np.arange(len(task_list), dtype=np.int64)},
                                index=pd.Index(task_list, name="task"))
        tasks_df.to_parquet(tmp / "meta/tasks.parquet")

        # Episodes: one row each, pointing into the data and video files.
        rows: dict[str, list] = {
            "episode_index": list(range(len(episodes))),
            "tasks": [list(dict.fromkeys(t)) for t in cols.tasks],
            "length": lengths.tolist(),
            "data/chunk_index": [0] * len(episodes), "data/file_index": [0] * len(episodes),
            "dataset_from_index": starts.tolist(), "dataset_to_index": (starts + lengths).tolist(),
        }
        for name in cols.images:
            rows[f"videos/{name}/chunk_index"] = [0] * len(episodes)
            rows[f"videos/{name}/file_index"] = [0] * len(episodes)
            rows[f"videos/{name}/from_timestamp"] = (starts / fps).tolist()
            rows[f"videos/{name}/to_timestamp"] = ((starts + lengths) / fps).tolist()
        rows["meta/episodes/chunk_index"] = [0] * len(episodes)
        rows["meta/episodes/file_index"] = [0] * len(episodes)
        for name in ep_stats[0]:
            for stat in ep_stats[0][name]:
                rows[f"stats/{name}/{stat}"] = [s[name][stat].tolist() for s in ep_stats]
        _write_parquet(pa.table(rows), tmp / EPISODES_PATH.format(chunk_index=0, file_index=0))

        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type or episodes[0].env_id,
            "total_episodes": len(episodes),
            "total_frames": total,
            "total_tasks": len(task_list),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
            "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
            "fps": fps,
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if cols.images else None,
            "features": _ordered(features),
        }
        _write_json(tmp / "meta/info.json", info)

        if root.exists():
            shutil.rmtree(root) if root.is_dir() else root.unlink()
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


_BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def _ordered(features: dict) -> dict:
    """Observations, action, next.*, then LeRobot's bookkeeping features (its own order)."""
    def rank(name: str) -> int:
        return (0 if name.startswith("observation.") else 1 if name == "action"
                else 3 if name in _BOOKKEEPING else 2)
    return dict(sorted(features.items(), key=lambda kv: rank(kv[0])))


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm
    return tqdm(items, desc=desc, unit="ep", leave=False)


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n")
