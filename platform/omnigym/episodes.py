"""Episodes: one trajectory record for every env family, stored as Parquet.

Text agents, shells, households and robots all produce the same thing: a reset
observation followed by (action, observation, reward, flags, info) steps. One
record type and one file format means one loader for training, evaluation and
dataset export.

Parquet layout (one file holds many episodes, one row per step)
----------------------------------------------------------------
================================  ==========================================
``episode_index``  int64          episode number inside this file (0..N-1)
``step``           int64          0 = the reset row, t = the row after step t
``env_id``, ``task_id``  string   episode-level, repeated on every row
``seed``, ``group``, ``member``   int64, episode-level (null when unknown)
``policy``, ``metadata``  string  JSON objects, episode-level
``observation``...                observation after reset (row 0) / step t
``action``...                     action that led to this row (null on row 0)
``reward`` float64, ``terminated``/``truncated`` bool   (null on row 0)
``info.success``, ``info.invalid_action``               bool
``info.state_key``, ``info.task_id``, ``info.instruction``  string
``info.admissible_actions``  list<string>;  ``info.action_mask``  list<bool>
``info.extra``     string         JSON object with every other info key
================================  ==========================================

Typed info columns are null where the key is absent (or not of the contract
type, in which case the value lands in ``info.extra`` instead, so it is kept).

Observation and action values are encoded by type, consistently per column:
``str`` -> string, ``bool`` -> bool, ``int`` -> int64, ``float`` -> float64
(numpy scalars such as ``np.int64`` from ``Discrete.sample()`` included: they
come back as Python numbers, equal in value);
``np.ndarray`` (bool/int/uint/float dtypes) -> ``list<dtype>`` holding the
array flattened in C order plus ``<column>.__shape__`` (``list<int64>``) with
its shape (float16 is stored as float32, losslessly); ``dict`` -> one column
per key, ``observation.<key>`` (nested dicts join keys with '.'); anything
else (lists, tuples, mixed types in one column) -> a JSON string.

Without omnigym, e.g. in pandas::

    df = pd.read_parquet("episodes-000000.parquet")
    row = df.iloc[1]
    img = np.asarray(row["observation"]).reshape(row["observation.__shape__"])

The schema metadata key ``omnigym`` (JSON) lists each value column with its
slot, dict key path, encoding and numpy dtype, so :func:`read_episodes` gives
back the exact values (ndarray dtype and shape included).

Files are only ever created through :func:`atomic_write`: the data goes to a
hidden ``.<name>.<pid>.<rand>.partial`` file next to the target, is fsynced,
renamed over the target, and the directory is fsynced. Readers skip names that
start with '.' or end with '.partial', so a killed writer never leaves a file
that looks complete.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "Episode",
    "atomic_write",
    "atomic_write_text",
    "to_jsonable",
    "values_equal",
    "write_episodes",
    "read_episodes",
    "list_episode_files",
    "episodes_to_table",
    "table_to_episodes",
    "export_chat_jsonl",
]

FORMAT_VERSION = 1
SCHEMA_KEY = b"omnigym"
PARTIAL_SUFFIX = ".partial"
SHAPE_SUFFIX = ".__shape__"

INFO_BOOL_KEYS = ("success", "invalid_action")
INFO_STR_KEYS = ("state_key", "task_id", "instruction")
INFO_EXTRA = "info.extra"


# --------------------------------------------------------------------------
# Episode record
# --------------------------------------------------------------------------
@dataclass(eq=False)
class Episode:
    """One trajectory: the reset observation/info, then one entry per step.

    ``observations`` and ``infos`` have length T+1 (index 0 is the reset);
    ``actions``, ``rewards``, ``terminated`` and ``truncated`` have length T.
    Equality compares values deeply, treating ndarrays by dtype, shape and
    content, so a read-back episode can be compared with the original.
    """

    env_id: str
    seed: int | None = None
    task_id: str | None = None
    policy: dict = field(default_factory=dict)
    group: int | None = None
    member: int | None = None
    observations: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminated: list[bool] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    infos: list[dict] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_reset(cls, obs: Any, info: dict | None = None, *, env_id: str,
                   seed: int | None = None, task_id: str | None = None,
                   policy: dict | None = None, group: int | None = None,
                   member: int | None = None, metadata: dict | None = None) -> "Episode":
        """Start an episode from what ``env.reset`` returned.

        ``task_id`` defaults to ``info["task_id"]`` when that is a string.
        """
        info = dict(info or {})
        if task_id is None and isinstance(info.get("task_id"), str):
            task_id = info["task_id"]
        return cls(env_id=env_id, seed=seed, task_id=task_id, policy=dict(policy or {}),
                   group=group, member=member, observations=[obs], infos=[info],
                   metadata=dict(metadata or {}))

    def append_step(self, obs: Any, action: Any, reward: float, terminated: bool,
                    truncated: bool, info: dict | None = None) -> None:
        """Add what ``env.step(action)`` returned."""
        self.observations.append(obs)
        self.actions.append(action)
        self.rewards.append(float(reward))
        self.terminated.append(bool(terminated))
        self.truncated.append(bool(truncated))
        self.infos.append(dict(info or {}))

    @property
    def length(self) -> int:
        return len(self.actions)

    @property
    def total_return(self) -> float:
        return float(sum(self.rewards))

    @property
    def success(self) -> bool:
        return bool(self.infos[-1].get("success", False)) if self.infos else False

    @property
    def done(self) -> bool:
        return bool(self.actions) and bool(self.terminated[-1] or self.truncated[-1])

    def check(self) -> None:
        """Raise ValueError if the per-step lists disagree in length."""
        t = len(self.actions)
        lengths = {"observations": len(self.observations) - 1, "infos": len(self.infos) - 1,
                   "rewards": len(self.rewards), "terminated": len(self.terminated),
                   "truncated": len(self.truncated)}
        bad = {k: v for k, v in lengths.items() if v != t}
        if bad or not self.observations:
            raise ValueError(f"inconsistent episode ({self.env_id!r}, {t} actions): {bad}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Episode):
            return NotImplemented
        return all(values_equal(getattr(self, f), getattr(other, f))
                   for f in self.__dataclass_fields__)


def values_equal(a: Any, b: Any) -> bool:
    """Deep equality that is safe for ndarrays (same dtype, shape and values; NaN == NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(values_equal(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(values_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        if math.isnan(a) and math.isnan(b):
            return True
    return bool(a == b)


# --------------------------------------------------------------------------
# Atomic files and JSON
# --------------------------------------------------------------------------
def _is_partial_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIX)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, writer_fn: Callable[[BinaryIO], None]) -> Path:
    """Create ``path`` all at once: ``writer_fn(f)`` writes into a binary file object.

    The bytes go to a hidden ``.<name>.<pid>.<rand>.partial`` file in the same
    directory (same filesystem, so the rename is atomic), which is flushed,
    fsynced and renamed over ``path``; then the directory is fsynced. If
    ``writer_fn`` raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")
    try:
        with open(tmp, "xb") as f:
            writer_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write` for a whole text document (JSON, Markdown, JSONL)."""
    data = text.encode(encoding)
    return atomic_write(path, lambda f: f.write(data))


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Turn ``value`` into plain JSON types; numpy becomes Python, the rest its repr."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if _depth > 64:
        return repr(value)
    if isinstance(value, np.generic):
        item = value.item()
        return item if isinstance(item, (str, bool, int, float)) else repr(value)
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), _depth + 1)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, _depth + 1) for v in value]
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not lose the whole record
        return f"<unrepresentable {type(value).__name__}>"


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), ensure_ascii=False)


# --------------------------------------------------------------------------
# Encoding observation / action columns
# --------------------------------------------------------------------------
def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def _kind_of(values: list) -> str:
    """One encoding for all non-null values of a column; 'json' when they disagree."""
    if all(isinstance(v, str) for v in values):
        return "str"
    if all(_is_bool(v) for v in values):
        return "bool"
    if all(isinstance(v, (int, np.integer)) and not _is_bool(v) and -2**63 <= int(v) < 2**63
           for v in values):
        return "int"
    if all(isinstance(v, (float, np.floating)) for v in values):
        return "float"
    if (all(isinstance(v, np.ndarray) for v in values) and values[0].dtype.kind in "biuf"
            and len({v.dtype for v in values}) == 1):
        return "ndarray"
    if all(isinstance(v, dict) and v and all(isinstance(k, str) for k in v) for v in values):
        return "dict"
    return "json"


def _unique(name: str, taken: dict) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name}#{n}", n + 1
    return out


def _ndarray_column(values: list, dtype: np.dtype) -> tuple[pa.Array, pa.Array]:
    storage = np.dtype(np.float32) if dtype == np.float16 else dtype.newbyteorder("=")
    flat = [None if v is None else np.ascontiguousarray(v, dtype=storage).reshape(-1)
            for v in values]
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([0 if f is None else f.size for f in flat])
    present = [f for f in flat if f is not None]
    data = pa.array(np.concatenate(present) if present else np.zeros(0, storage))
    mask = pa.array([f is None for f in flat], pa.bool_())
    list_cls = pa.LargeListArray if offsets[-1] >= 2**31 else pa.ListArray
    off_type = pa.int64() if list_cls is pa.LargeListArray else pa.int32()
    arr = list_cls.from_arrays(pa.array(offsets, off_type), data, mask=mask)
    shapes = pa.array([None if v is None else list(v.shape) for v in values], pa.list_(pa.int64()))
    return arr, shapes


def _encode_slot(slot: str, path: list, values: list, cols: dict, specs: list) -> None:
    present = [v for v in values if v is not None]
    kind = _kind_of(present) if present else "json"
    if kind == "dict":
        keys = list(dict.fromkeys(k for v in present for k in v))
        for k in keys:
            sub = [v.get(k) if isinstance(v, dict) else None for v in values]
            _encode_slot(slot, path + [k], sub, cols, specs)
        return
    name = _unique(".".join([slot, *path]), cols)
    spec = {"name": name, "slot": slot, "path": path, "kind": kind}
    if kind == "str":
        cols[name] = pa.array(values, pa.string())
    elif kind == "bool":
        cols[name] = pa.array([None if v is None else bool(v) for v in values], pa.bool_())
    elif kind == "int":
        cols[name] = pa.array([None if v is None else int(v) for v in values], pa.int64())
    elif kind == "float":
        cols[name] = pa.array([None if v is None else float(v) for v in values], pa.float64())
    elif kind == "ndarray":
        dtype = present[0].dtype
        shape_name = _unique(name + SHAPE_SUFFIX, cols)
        cols[name], cols[shape_name] = _ndarray_column(values, dtype)
        spec.update(dtype=dtype.newbyteorder("=").str, shape_column=shape_name)
    else:
        cols[name] = pa.array([None if v is None else _dumps(v) for v in values], pa.string())
    specs.append(spec)


def _decode_column(table: pa.Table, spec: dict) -> list:
    kind = spec["kind"]
    if kind == "ndarray":
        col = table.column(spec["name"]).combine_chunks()
        shapes = table.column(spec["shape_column"]).to_pylist()
        if len(col) == 0:
            return []
        dtype = np.dtype(spec["dtype"])
        offsets = col.offsets.to_numpy()
        data = col.values.to_numpy(zero_copy_only=False)
        return [None if shape is None
                else np.array(data[offsets[i]:offsets[i + 1]], dtype=dtype).reshape(shape)
                for i, shape in enumerate(shapes)]
    values = table.column(spec["name"]).to_pylist()
    if kind == "json":
        return [None if v is None else json.loads(v) for v in values]
    return values


def _assemble(specs: list[dict], decoded: dict, row: int) -> Any:
    """Rebuild one slot value (scalar, array or nested dict) for one row."""
    if len(specs) == 1 and not specs[0]["path"]:
        return decoded[specs[0]["name"]][row]
    out: dict = {}
    for spec in specs:
        node = out
        for key in spec["path"][:-1]:
            node = node.setdefault(key, {})
        node[spec["path"][-1]] = decoded[spec["name"]][row]
    return out


# --------------------------------------------------------------------------
# Info columns
# --------------------------------------------------------------------------
def _split_info(info: dict) -> tuple[dict, dict]:
    """Contract keys of the right type go to typed columns, the rest to JSON."""
    typed, extra = {}, {}
    for k, v in info.items():
        if k in INFO_BOOL_KEYS and _is_bool(v):
            typed[k] = bool(v)
        elif k in INFO_STR_KEYS and isinstance(v, str):
            typed[k] = str(v)
        elif (k == "admissible_actions" and isinstance(v, (list, tuple))
              and all(isinstance(a, str) for a in v)):
            typed[k] = [str(a) for a in v]
        elif (k == "action_mask" and isinstance(v, np.ndarray) and v.dtype == np.bool_
              and v.ndim == 1):
            typed[k] = v.tolist()
        else:
            extra[k] = v
    return typed, extra


def _info_columns(infos: list[dict]) -> dict[str, pa.Array]:
    split = [_split_info(i) for i in infos]
    cols = {}
    for k in INFO_BOOL_KEYS:
        cols[f"info.{k}"] = pa.array([t.get(k) for t, _ in split], pa.bool_())
    for k in INFO_STR_KEYS:
        cols[f"info.{k}"] = pa.array([t.get(k) for t, _ in split], pa.string())
    cols["info.admissible_actions"] = pa.array(
        [t.get("admissible_actions") for t, _ in split], pa.list_(pa.string()))
    cols["info.action_mask"] = pa.array([t.get("action_mask") for t, _ in split],
                                        pa.list_(pa.bool_()))
    cols[INFO_EXTRA] = pa.array([_dumps(e) if e else None for _, e in split], pa.string())
    return cols


def _decode_infos(table: pa.Table) -> list[dict]:
    cols = {name: table.column(name).to_pylist() for name in table.column_names
            if name.startswith("info.")}
    infos = []
    for row in range(table.num_rows):
        info: dict = {}
        for k in (*INFO_BOOL_KEYS, *INFO_STR_KEYS, "admissible_actions"):
            v = cols[f"info.{k}"][row]
            if v is not None:
                info[k] = v
        mask = cols["info.action_mask"][row]
        if mask is not None:
            info["action_mask"] = np.array(mask, dtype=bool)
        if cols[INFO_EXTRA][row] is not None:
            info.update(json.loads(cols[INFO_EXTRA][row]))
        infos.append(info)
    return infos


# --------------------------------------------------------------------------
# Parquet read / write
# --------------------------------------------------------------------------
def episodes_to_table(episodes: Iterable[Episode]) -> pa.Table:
    """One row per step (row 0 of each episode is the reset); see the module docstring."""
    episodes = list(episodes)
    for ep in episodes:
        ep.check()
    rows: dict[str, list] = {k: [] for k in (
        "episode_index", "step", "env_id", "seed", "task_id", "group", "member", "policy",
        "metadata", "observation", "action", "reward", "terminated", "truncated", "info")}
    for i, ep in enumerate(episodes):
        policy, metadata = _dumps(ep.policy), _dumps(ep.metadata)
        for t in range(ep.length + 1):
            step = t > 0
            for key, value in (("episode_index", i), ("step", t), ("env_id", ep.env_id),
                               ("seed", ep.seed), ("task_id", ep.task_id), ("group", ep.group),
                               ("member", ep.member), ("policy", policy), ("metadata", metadata),
                               ("observation", ep.observations[t]), ("info", ep.infos[t]),
                               ("action", ep.actions[t - 1] if step else None),
                               ("reward", ep.rewards[t - 1] if step else None),
                               ("terminated", ep.terminated[t - 1] if step else None),
                               ("truncated", ep.truncated[t - 1] if step else None)):
                rows[key].append(value)
    ints = lambda xs: pa.array([None if x is None else int(x) for x in xs], pa.int64())  # noqa: E731
    cols: dict[str, pa.Array] = {
        "episode_index": ints(rows["episode_index"]), "step": ints(rows["step"]),
        "env_id": pa.array(rows["env_id"], pa.string()), "seed": ints(rows["seed"]),
        "task_id": pa.array(rows["task_id"], pa.string()), "group": ints(rows["group"]),
        "member": ints(rows["member"]), "policy": pa.array(rows["policy"], pa.string()),
        "metadata": pa.array(rows["metadata"], pa.string()),
    }
    specs: list[dict] = []
    _encode_slot("observation", [], rows["observation"], cols, specs)
    _encode_slot("action", [], rows["action"], cols, specs)
    cols["reward"] = pa.array(rows["reward"], pa.float64())
    cols["terminated"] = pa.array(rows["terminated"], pa.bool_())
    cols["truncated"] = pa.array(rows["truncated"], pa.bool_())
    cols.update(_info_columns(rows["info"]))
    meta = {"format": "omnigym.episodes", "version": FORMAT_VERSION, "columns": specs}
    return pa.table(cols).replace_schema_metadata({SCHEMA_KEY: json.dumps(meta)})


def table_to_episodes(table: pa.Table) -> list[Episode]:
    """Inverse of :func:`episodes_to_table`."""
    raw = (table.schema.metadata or {}).get(SCHEMA_KEY)
    if raw is None:
        raise ValueError("not an omnigym episodes table (schema metadata 'omnigym' missing)")
    meta = json.loads(raw)
    if meta.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"episodes format version {meta['version']} is newer than "
                         f"this reader ({FORMAT_VERSION})")
    order = np.lexsort((table.column("step").to_numpy(), table.column("episode_index").to_numpy()))
    if np.any(order != np.arange(len(order))):   # files written here are already in order
        table = table.take(pa.array(order, pa.int64()))
    specs = meta["columns"]
    decoded = {s["name"]: _decode_column(table, s) for s in specs}
    slots = {slot: [s for s in specs if s["slot"] == slot] for slot in ("observation", "action")}
    base = {k: table.column(k).to_pylist() for k in (
        "episode_index", "step", "env_id", "seed", "task_id", "group", "member", "policy",
        "metadata", "reward", "terminated", "truncated")}
    infos = _decode_infos(table)
    episodes: list[Episode] = []
    current_index = None
    for row in range(table.num_rows):
        obs = _assemble(slots["observation"], decoded, row)
        if base["episode_index"][row] != current_index:
            current_index = base["episode_index"][row]
            episodes.append(Episode(
                env_id=base["env_id"][row], seed=base["seed"][row], task_id=base["task_id"][row],
                policy=json.loads(base["policy"][row]), group=base["group"][row],
                member=base["member"][row], metadata=json.loads(base["metadata"][row]),
                observations=[obs], infos=[infos[row]]))
            continue
        episodes[-1].append_step(obs, _assemble(slots["action"], decoded, row),
                                 base["reward"][row], base["terminated"][row],
                                 base["truncated"][row], infos[row])
    return episodes


def write_episodes(episodes: Iterable[Episode], path: str | os.PathLike) -> Path:
    """Write ``episodes`` to one Parquet file, atomically. Returns the final path."""
    table = episodes_to_table(episodes)
    return atomic_write(path, lambda f: pq.write_table(table, f))


def list_episode_files(directory: str | os.PathLike) -> list[Path]:
    """Finished ``*.parquet`` files in ``directory``, sorted; temporary files are skipped."""
    return sorted(p for p in Path(directory).iterdir()
                  if p.suffix == ".parquet" and not _is_partial_name(p.name) and p.is_file())


def read_episodes(path_or_dir: str | os.PathLike) -> list[Episode]:
    """Episodes from one Parquet file, or from every finished ``*.parquet`` in a directory."""
    path = Path(path_or_dir)
    if path.is_dir():
        files = list_episode_files(path)
    elif _is_partial_name(path.name):
        raise ValueError(f"{path} is a temporary file of an unfinished write")
    else:
        files = [path]
    episodes: list[Episode] = []
    for file in files:
        try:
            episodes.extend(table_to_episodes(pq.read_table(file)))
        except ValueError as exc:
            raise ValueError(f"{file}: {exc}") from exc
    return episodes


# --------------------------------------------------------------------------
# Chat export
# --------------------------------------------------------------------------
def export_chat_jsonl(episodes: Iterable[Episode], path: str | os.PathLike,
                      system_prompt: str | None = None) -> Path:
    """Write text trajectories as chat JSONL (the ``messages`` + ``tools``
    format TRL/HF datasets read), one episode per line, for every family
    through one path: ``omnigym.conversation.chat`` joins the episode's turns
    (system, user, assistant, tool messages). ``system_prompt`` replaces the
    env's system message. The observation after the last action is left out:
    no assistant turn follows it, so it carries nothing to learn from.
    """
    from omnigym.conversation import chat
    lines = []
    for i, ep in enumerate(episodes):
        for t, v in enumerate(ep.observations):
            if not isinstance(v, str):
                raise ValueError(f"export_chat_jsonl is for text trajectories (str observations); "
                                 f"episode {i} observation {t} is {type(v).__name__}")
        record = {**chat(ep, system_prompt), "reward": ep.total_return, "success": ep.success,
                  "env_id": ep.env_id, "seed": ep.seed, "task_id": ep.task_id}
        lines.append(json.dumps(to_jsonable(record), ensure_ascii=False) + "\n")
    return atomic_write_text(path, "".join(lines))
