"""Episode storage: exact round-trips, atomic shards, recording wrapper, chat export."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gymnasium import spaces

import omnigym
from omnigym.episodes import (Episode, atomic_write, export_chat_jsonl, read_episodes,
                              to_jsonable, values_equal, write_episodes)
from omnigym.wrappers import RecordEpisodes


def _episode(obs_seq, actions, env_id="Test-v0", seed=0, infos=None, **kw) -> Episode:
    infos = infos or [{} for _ in obs_seq]
    ep = Episode.from_reset(obs_seq[0], infos[0], env_id=env_id, seed=seed, **kw)
    for t, action in enumerate(actions, start=1):
        last = t == len(actions)
        ep.append_step(obs_seq[t], action, 0.5 * t, last, False, infos[t])
    return ep


def _roundtrip(episodes, tmp_path) -> list[Episode]:
    path = write_episodes(episodes, tmp_path / "eps.parquet")
    back = read_episodes(path)
    assert len(back) == len(episodes)
    for a, b in zip(episodes, back):
        assert a == b
    return back


class EchoEnv(gym.Env):
    """A three-step text env: say "hi" to succeed."""

    observation_space = spaces.Text(64)
    action_space = spaces.Text(64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return "say hi", {"task_id": "echo-1", "instruction": "say hi",
                          "admissible_actions": ["hi", "bye"]}

    def step(self, action):
        self.t += 1
        ok = action == "hi"
        info = {"success": ok, "invalid_action": action not in ("hi", "bye")}
        return f"you said {action}", float(ok), ok, self.t >= 3, info


# ---------------------------------------------------------------- round-trips
def test_text_episode_round_trip_and_plain_parquet_layout(tmp_path):
    ep1 = _episode(["look", "a room", "a key"], ["go north", "take key"], seed=7,
                   task_id="t-1", policy={"name": "random"}, group=2, member=1,
                   metadata={"note": "ü ✓"})
    ep2 = _episode(["start"], [], seed=None)
    _, back2 = _roundtrip([ep1, ep2], tmp_path)
    assert back2.length == 0 and back2.seed is None and not back2.done

    table = pq.read_table(tmp_path / "eps.parquet")
    assert table.num_rows == 3 + 1
    rows = table.to_pylist()
    assert [r["step"] for r in rows] == [0, 1, 2, 0]
    assert rows[0]["action"] is None and rows[0]["reward"] is None
    assert rows[1]["action"] == "go north" and rows[2]["observation"] == "a key"
    assert rows[2]["terminated"] is True and rows[2]["reward"] == 1.0
    assert (rows[0]["seed"], rows[0]["group"], rows[0]["member"]) == (7, 2, 1)
    assert json.loads(rows[0]["policy"]) == {"name": "random"}


@pytest.mark.parametrize("dtype,shape", [
    (np.uint8, (2, 3, 4)), (np.float16, (5,)), (np.float32, ()), (np.int64, (0, 3)),
    (np.bool_, (2, 2)), (np.float64, (3,)), (np.int8, (4, 1))])
def test_ndarray_observations_keep_dtype_and_shape(tmp_path, dtype, shape):
    rng = np.random.default_rng(0)
    obs = [np.asarray(rng.normal(size=shape) * 50).astype(dtype) for _ in range(4)]
    if dtype == np.float64:
        obs[1][0] = np.nan
    actions = [rng.normal(size=2).astype(np.float32) for _ in range(3)]
    back = _roundtrip([_episode(obs, actions)], tmp_path)[0]
    for o in back.observations:
        assert isinstance(o, np.ndarray) and o.dtype == dtype and o.shape == shape
    assert back.actions[0].dtype == np.float32

    # A reader without omnigym rebuilds the array from the flat values and the shape column.
    row = pq.read_table(tmp_path / "eps.parquet").to_pandas().iloc[2]
    flat = np.asarray(row["observation"], dtype=dtype)
    assert values_equal(flat.reshape(row["observation.__shape__"]), obs[2])


def test_dict_observations_and_json_actions(tmp_path):
    obs = [{"observation.state": np.arange(3, dtype=np.float32) + t, "instruction": f"step {t}",
            "nested": {"count": t, "image": np.full((2, 2), t, np.uint8)}} for t in range(3)]
    actions = [[1, 2.5, "x"], {"move": "left", "speed": 2}]   # lists / dicts -> JSON column
    back = _roundtrip([_episode(obs, actions)], tmp_path)[0]
    assert back.observations[2]["nested"]["image"].dtype == np.uint8
    names = pq.read_schema(tmp_path / "eps.parquet").names
    assert {"observation.observation.state", "observation.instruction",
            "observation.nested.count", "observation.nested.image"} <= set(names)


def test_mixed_scalar_types_in_one_column_survive(tmp_path):
    obs = [1, 2.5, "three", None, True]
    actions = [np.int64(3), 4, 5, 6]
    back = _roundtrip([_episode(obs, actions)], tmp_path)[0]
    assert back.observations == [1, 2.5, "three", None, True]
    assert back.actions == [3, 4, 5, 6] and isinstance(back.actions[0], int)


def test_info_contract_keys_are_typed_and_extra_keys_are_json(tmp_path):
    class Opaque:
        def __repr__(self):
            return "<opaque>"

    extra = {"score": np.float32(0.25), "counts": np.array([[1, 2], [3, 4]]), "flag": np.bool_(1),
             "nested": {"ids": (np.int16(4), 5), 3: "int key"}, "obj": Opaque(),
             "success_note": None}
    reset_info = {"task_id": "pick-1", "instruction": "pick the cube", "state_key": "s0",
                  "admissible_actions": ("pick", "place"), **extra}
    step_info = {"success": np.bool_(True), "invalid_action": False, "state_key": "s1",
                 "action_mask": np.array([True, False, True]), "task_id": 17}
    ep = _episode(["o0", "o1"], ["pick"], infos=[reset_info, step_info])
    back = read_episodes(write_episodes([ep], tmp_path / "eps.parquet"))[0]

    r0, r1 = back.infos
    assert r0["admissible_actions"] == ["pick", "place"] and r0["state_key"] == "s0"
    assert r0["score"] == 0.25 and r0["counts"] == [[1, 2], [3, 4]] and r0["flag"] is True
    assert r0["nested"] == {"ids": [4, 5], "3": "int key"} and r0["obj"] == "<opaque>"
    assert r0 == {**to_jsonable(extra), "task_id": "pick-1", "instruction": "pick the cube",
                  "state_key": "s0", "admissible_actions": ["pick", "place"]}
    assert r1["success"] is True and r1["invalid_action"] is False
    assert r1["action_mask"].dtype == np.bool_ and r1["action_mask"].tolist() == [True, False, True]
    assert r1["task_id"] == 17            # wrong type for the contract: kept via the JSON column
    assert back.success and ep.task_id == back.task_id == "pick-1"

    schema = pq.read_schema(tmp_path / "eps.parquet")
    assert schema.field("info.success").type == pa.bool_()
    assert schema.field("info.action_mask").type.value_type == pa.bool_()
    assert schema.field("info.admissible_actions").type.value_type == pa.string()


# ---------------------------------------------------------------- atomic files
def test_failed_writer_leaves_no_file_and_keeps_the_old_one(tmp_path):
    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert list(tmp_path.iterdir()) == []

    atomic_write(target, lambda f: f.write(b'{"ok": true}'))
    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b'{"ok": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_reader_ignores_temporary_files(tmp_path):
    write_episodes([_episode(["a", "b"], ["x"])], tmp_path / "episodes-000000.parquet")
    (tmp_path / ".episodes-000001.parquet.123.abcd.partial").write_bytes(b"PAR1 garbage")
    (tmp_path / ".episodes-000002.parquet").write_bytes(b"PAR1 garbage")
    (tmp_path / "notes.txt").write_text("not data")
    assert len(read_episodes(tmp_path)) == 1
    with pytest.raises(ValueError, match="temporary"):
        read_episodes(tmp_path / ".episodes-000001.parquet.123.abcd.partial")


KILL_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from omnigym.episodes import Episode, write_episodes
    out, i = sys.argv[1], 0
    while True:
        episodes = []
        for e in range(4):
            ep = Episode.from_reset(np.zeros((64, 64, 3), np.uint8), {}, env_id="Kill-v0", seed=e)
            for t in range(1, 31):
                ep.append_step(np.full((64, 64, 3), t, np.uint8), t % 2, 1.0, t == 30, False,
                               {"t": t})
            episodes.append(ep)
        write_episodes(episodes, f"{out}/episodes-{i:06d}.parquet")
        i += 1
""")


def test_killed_writer_never_leaves_a_readable_half_file(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(omnigym.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(tmp_path)], env=env,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("episodes-*.parquet"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "writer produced no shards"
            time.sleep(0.005)
        time.sleep(0.013)   # land somewhere inside a later write
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()

    shards = list(tmp_path.glob("episodes-*.parquet"))
    episodes = read_episodes(tmp_path)
    assert len(shards) >= 3 and len(episodes) == 4 * len(shards)
    for ep in episodes:
        assert ep.done and ep.length == 30 and ep.total_return == 30.0
        assert int(ep.observations[-1][0, 0, 0]) == 30 and ep.infos[-1] == {"t": 30}


# ---------------------------------------------------------------- RecordEpisodes
def test_record_cartpole_in_shards_matches_manual_record(tmp_path):
    env = RecordEpisodes(gym.make("CartPole-v1"), tmp_path, episodes_per_file=2,
                         policy={"name": "random"}, metadata={"run": 1})
    rng = np.random.default_rng(0)
    manual = []
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        ep = Episode.from_reset(obs.copy(), info, env_id="CartPole-v1", seed=seed,
                                policy={"name": "random"}, metadata={"run": 1})
        done = False
        while not done:
            action = rng.integers(2)
            obs, reward, terminated, truncated, info = env.step(action)
            ep.append_step(obs.copy(), action, reward, terminated, truncated, info)
            done = terminated or truncated
        manual.append(ep)
    assert len(env.recorded_paths) == 2           # two full shards while running
    env.close()

    assert [p.name for p in env.recorded_paths] == [
        "episodes-000000.parquet", "episodes-000001.parquet", "episodes-000002.parquet"]
    back = read_episodes(tmp_path)
    assert back == manual
    assert [len(read_episodes(p)) for p in env.recorded_paths] == [2, 2, 1]
    assert back[0].observations[0].dtype == np.float32 and back[0].observations[0].shape == (4,)
    assert all(ep.done for ep in back) and back[3].seed == 3


def test_unfinished_episodes_are_kept_and_shard_numbers_continue(tmp_path):
    write_episodes([_episode(["a", "b"], ["x"])], tmp_path / "episodes-000004.parquet")
    env = RecordEpisodes(EchoEnv(), tmp_path, episodes_per_file=10)
    env.reset(seed=1)
    env.step("bye")                       # cut short by the next reset
    env.reset(seed=2)
    for _ in range(3):
        env.step("bye")                   # truncated after 3 steps
    env.reset(seed=3)
    env.step("hi")                        # terminated with success
    env.reset()
    env.step("bye")                       # still running at close()
    env.close()

    assert [p.name for p in env.recorded_paths] == ["episodes-000005.parquet"]
    eps = read_episodes(env.recorded_paths[0])
    assert [e.seed for e in eps] == [1, 2, 3, None]
    assert [e.metadata.get("incomplete", False) for e in eps] == [True, False, False, True]
    assert [e.length for e in eps] == [1, 3, 1, 1]
    assert eps[2].success and eps[2].task_id == "echo-1" and eps[0].env_id == "EchoEnv"
    assert eps[0].infos[0]["admissible_actions"] == ["hi", "bye"]


def test_export_chat_jsonl(tmp_path):
    env = RecordEpisodes(EchoEnv(), tmp_path / "rec", episodes_per_file=5)
    for seed, word in ((0, "hi"), (1, "bye")):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(word)
            done = term or trunc
    env.close()
    eps = read_episodes(tmp_path / "rec")

    out = export_chat_jsonl(eps, tmp_path / "chat.jsonl", system_prompt="Be polite.")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2
    assert lines[0] == {
        "messages": [{"role": "system", "content": "Be polite."},
                     {"role": "user", "content": "say hi"},
                     {"role": "assistant", "content": "hi"}],
        "tools": [], "reward": 1.0, "success": True, "env_id": "EchoEnv", "seed": 0, "task_id": "echo-1"}
    roles = [m["role"] for m in lines[1]["messages"]]
    assert roles == ["system"] + ["user", "assistant"] * 3
    assert lines[1]["messages"][3]["content"] == "you said bye"
    assert lines[1]["reward"] == 0.0 and lines[1]["success"] is False

    no_system = export_chat_jsonl(eps[:1], tmp_path / "plain.jsonl")
    assert json.loads(no_system.read_text())["messages"][0]["role"] == "user"

    cart = _episode([np.zeros(2, np.float32)] * 2, [1])
    with pytest.raises(ValueError, match="text trajectories"):
        export_chat_jsonl([cart], tmp_path / "bad.jsonl")
    assert not (tmp_path / "bad.jsonl").exists()
