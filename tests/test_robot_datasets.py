"""Robot datasets: `omnigym rollout`/`export` to LeRobot and Minari, evaluation videos.

Everything runs on robots/HalfCheetah-v5 (random policy, 20-step episodes,
48x64 camera images) so it does not depend on the arm envs. The CLI runs
as a real subprocess, as a user would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from omnigym.datasets.video import read_mp4, write_mp4
from omnigym.episodes import read_episodes

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "robots/HalfCheetah-v5"
CAMERA = "observation.images.track"
ENV_ARGS = ["--env-kwarg", 'cameras=["track"]', "--env-kwarg", "image_size=[48,64]"]
FPS = 20  # HalfCheetah-v5 control rate (dt = 0.05 s)


def omnigym(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "omnigym.cli", *map(str, args)], text=True,
                          capture_output=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two 20-step random episodes, recorded with --lerobot and --minari."""
    out = tmp_path_factory.mktemp("rollout")
    minari_root = tmp_path_factory.mktemp("minari")
    proc = omnigym("rollout", ENV_ID, "--policy", "random", "--episodes", 2, "--max-steps", 20, *ENV_ARGS,
                   "--out", out, "--lerobot", "--minari", "omnigym/cheetah-random-v0",
                   "--minari-root", minari_root)
    return out, minari_root, proc, read_episodes(out)


def images(ep) -> np.ndarray:
    """The camera frames LeRobot keeps: observations 0..T-1 (the last one has no action)."""
    return np.stack([o[CAMERA] for o in ep.observations[:-1]]).astype(np.float64)


# --------------------------------------------------------------------------
# rollout
# --------------------------------------------------------------------------
def test_rollout_records_episodes_and_prints_a_summary(recorded):
    out, _, proc, episodes = recorded
    assert "2 episodes of random on robots/HalfCheetah-v5 (seeds 0..1): success 0/2" in proc.stdout
    assert "LeRobot dataset:" in proc.stdout and "Minari dataset: omnigym/cheetah-random-v0" in proc.stdout
    assert (out / "episodes-000000.parquet").is_file()
    assert [(ep.seed, ep.length, ep.truncated[-1]) for ep in episodes] == [(0, 20, True), (1, 20, True)]
    obs = episodes[0].observations[0]
    assert obs[CAMERA].shape == (48, 64, 3) and obs["instruction"] == "run forward"
    assert episodes[0].metadata["env_kwargs"] == {"cameras": ["track"], "image_size": [48, 64]}


# --------------------------------------------------------------------------
# LeRobot
# --------------------------------------------------------------------------
def test_lerobot_meta_files(recorded):
    out, _, _, episodes = recorded
    root = out / "lerobot"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 40, 1)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    f = info["features"]
    assert f["observation.state"]["dtype"] == "float32" and f["observation.state"]["shape"] == [17]
    assert f["action"]["shape"] == [6] and len(f["action"]["names"]) == 6
    assert f[CAMERA]["dtype"] == "video" and f[CAMERA]["shape"] == [48, 64, 3]
    assert f[CAMERA]["info"]["video.codec"] == "h264" and f[CAMERA]["info"]["video.fps"] == FPS
    assert list(f)[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]

    tasks = pq.read_table(root / "meta/tasks.parquet").to_pydict()
    assert tasks["task"] == ["run forward"] and tasks["task_index"] == [0]

    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert eps["episode_index"] == [0, 1] and eps["length"] == [20, 20]
    assert eps["tasks"] == [["run forward"], ["run forward"]]
    assert eps["dataset_from_index"] == [0, 20] and eps["dataset_to_index"] == [20, 40]
    assert eps[f"videos/{CAMERA}/from_timestamp"] == [0.0, 1.0]
    assert eps[f"videos/{CAMERA}/to_timestamp"] == [1.0, 2.0]
    assert eps["data/file_index"] == [0, 0] and eps[f"videos/{CAMERA}/chunk_index"] == [0, 0]

    stats = json.loads((root / "meta/stats.json").read_text())
    img = {k: np.array(v) for k, v in stats[CAMERA].items()}
    assert img["mean"].shape == (3, 1, 1) and 0 <= img["min"].min() <= img["max"].max() <= 1
    recorded_pixels = np.concatenate([images(ep) for ep in episodes]) / 255.0
    assert np.allclose(img["mean"].ravel(), recorded_pixels.mean(axis=(0, 1, 2)))
    state = np.concatenate([np.stack([o["observation.state"] for o in ep.observations[:-1]]) for ep in episodes])
    assert np.allclose(stats["observation.state"]["mean"], state.mean(0), atol=1e-5)
    assert stats["observation.state"]["count"] == [40]
    assert {"min", "max", "mean", "std", "count", "q01", "q99"} <= set(stats["action"])


def test_lerobot_frames_pair_observation_t_with_action_t(recorded):
    out, _, _, episodes = recorded
    table = pq.read_table(out / "lerobot/data/chunk-000/file-000.parquet")
    assert set(table.column_names) == {"observation.state", "action", "next.reward", "next.done",
                                       "next.success", "timestamp", "frame_index", "episode_index",
                                       "index", "task_index"}
    data = table.to_pydict()
    assert data["index"] == list(range(40))
    assert data["episode_index"] == [0] * 20 + [1] * 20
    assert data["frame_index"] == list(range(20)) * 2
    assert np.allclose(data["timestamp"], np.tile(np.arange(20) / FPS, 2))
    assert data["task_index"] == [0] * 40
    i = 0
    for ep in episodes:
        for t in range(ep.length):
            assert np.array_equal(np.float32(data["observation.state"][i]), ep.observations[t]["observation.state"])
            assert np.array_equal(np.float32(data["action"][i]), ep.actions[t])
            assert data["next.reward"][i] == pytest.approx(ep.rewards[t], rel=1e-6)
            assert data["next.done"][i] == (t == ep.length - 1)  # truncated by --max-steps
            i += 1


def test_lerobot_video_holds_every_frame_at_the_episode_timestamps(recorded):
    out, _, _, episodes = recorded
    video = read_mp4(out / f"lerobot/videos/{CAMERA}/chunk-000/file-000.mp4").astype(np.float64)
    assert video.shape == (40, 48, 64, 3)
    eps = pq.read_table(out / "lerobot/meta/episodes/chunk-000/file-000.parquet").to_pydict()
    for e, ep in enumerate(episodes):
        # The episode's frames are the video frames between its from/to timestamps.
        lo = round(eps[f"videos/{CAMERA}/from_timestamp"][e] * FPS)
        hi = round(eps[f"videos/{CAMERA}/to_timestamp"][e] * FPS)
        frames = video[lo:hi]
        assert len(frames) == ep.length
        error = np.abs(frames - images(ep)).mean(axis=(1, 2, 3))  # H.264 is lossy
        assert error.max() < 8.0, error
    # And the boundary is where it should be: the other episode's first frame matches worse.
    first_1 = images(episodes[1])[0]
    assert np.abs(video[20] - first_1).mean() < np.abs(video[19] - first_1).mean()


def test_real_lerobot_reader_loads_the_export(recorded):
    """Runs only where lerobot is importable (it is not a project dependency)."""
    pytest.importorskip("lerobot")
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    out, _, _, episodes = recorded
    ds = LeRobotDataset(repo_id="local/omnigym", root=out / "lerobot")
    assert len(ds) == 40 and ds.num_episodes == 2 and ds.fps == FPS
    item = ds[25]
    assert item["episode_index"].item() == 1 and item["frame_index"].item() == 5
    assert item["task"] == "run forward"
    img = item[CAMERA].permute(1, 2, 0).numpy() * 255.0
    assert np.abs(img - episodes[1].observations[5][CAMERA]).mean() < 8.0


# --------------------------------------------------------------------------
# Minari
# --------------------------------------------------------------------------
def test_minari_dataset_round_trips(recorded, monkeypatch):
    import minari
    _, minari_root, _, episodes = recorded
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    ds = minari.load_dataset("omnigym/cheetah-random-v0")
    assert ds.total_episodes == 2 and ds.total_steps == 40
    assert ds.spec.env_spec.id == ENV_ID  # the recording env is recoverable
    for got, ep in zip(ds.iterate_episodes(), episodes):
        for key in ("observation.state", CAMERA):
            assert np.array_equal(got.observations[key], np.stack([o[key] for o in ep.observations]))
        assert list(got.observations["instruction"]) == [o["instruction"] for o in ep.observations]
        assert np.array_equal(got.actions, np.stack(ep.actions))
        assert np.array_equal(got.rewards, ep.rewards)
        assert got.terminations.tolist() == ep.terminated and got.truncations.tolist() == ep.truncated
        assert got.infos["success"].tolist() == [i["success"] for i in ep.infos]


# --------------------------------------------------------------------------
# export of existing recordings
# --------------------------------------------------------------------------
def test_export_converts_recordings(recorded, tmp_path, monkeypatch):
    out, _, _, episodes = recorded
    proc = omnigym("export", out, "--to", "lerobot", "--out", tmp_path / "lr")
    assert "2 episodes" in proc.stdout
    again = pq.read_table(tmp_path / "lr/data/chunk-000/file-000.parquet")
    assert again.equals(pq.read_table(out / "lerobot/data/chunk-000/file-000.parquet"))

    omnigym("export", out / "episodes-000000.parquet", "--to", "minari", "--out", "omnigym/again-v0",
            "--minari-root", tmp_path / "minari")
    import minari
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    got = next(minari.load_dataset("omnigym/again-v0").iterate_episodes())
    assert np.array_equal(got.actions, np.stack(episodes[0].actions))


# --------------------------------------------------------------------------
# evaluation videos
# --------------------------------------------------------------------------
def test_eval_films_the_first_episodes_and_links_them(tmp_path):
    # 10-step episodes, small renders: the video is 11 frames (reset + 10 steps).
    omnigym("eval", ENV_ID, "--agent", "random", "--panel", "0..1", "--video", 1, "--out", tmp_path,
            "--env-kwarg", "mode=vector", "--env-kwarg", "max_episode_steps=10",
            "--env-kwarg", "width=64", "--env-kwarg", "height=48")
    videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
    assert videos == ["random-seeds0-1-ep000.gif", "random-seeds0-1-ep000.mp4"]  # K=1 of 2 episodes
    frames = read_mp4(tmp_path / "videos/random-seeds0-1-ep000.mp4")
    assert frames.shape == (11, 260, 320, 3)        # enlarged to 320 wide, plus the caption strip
    report = (tmp_path / "report.md").read_text()
    assert "## Videos" in report
    assert "[random-seeds0-1-ep000.mp4](videos/random-seeds0-1-ep000.mp4)" in report
    assert "](videos/random-seeds0-1-ep000.gif)" in report
    section = json.loads((tmp_path / "summary.json").read_text())["sections"][0]
    assert [(v["episode"], v["seed"], v["frames"]) for v in section["videos"]] == [(0, 0, 11)]


def test_write_mp4_is_atomic_and_keeps_odd_sizes(tmp_path):
    frames = [np.full((47, 63, 3), 20 * i, np.uint8) for i in range(5)]
    path = write_mp4(frames, tmp_path / "odd.mp4", fps=10)
    got = read_mp4(path)
    assert got.shape == (5, 47, 63, 3) and np.abs(got.astype(int) - np.stack(frames)).mean() < 3
    with pytest.raises(ValueError):
        write_mp4([np.zeros((4, 4), np.uint8)], tmp_path / "bad.mp4", fps=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]  # no partial file left


# --------------------------------------------------------------------------
# user mistakes: one clear line, exit code 2, no traceback
# --------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["rollout", "robots/HalfCheeta-v5", "--episodes", 1, "--out", "x"], "Did you mean: robots/HalfCheetah-v5"),
    (["rollout", ENV_ID, "--episodes", 0, "--out", "x"], "--episodes must be at least 1"),
    (["rollout", ENV_ID, "--episodes", 1, "--out", "x", "--minari", "no-version"], "-vN version is required"),
    (["export", "does/not/exist", "--to", "lerobot", "--out", "x"], "does/not/exist: no such file or directory"),
])
def test_bad_input_gives_a_clear_error(args, message, tmp_path):
    out = tmp_path / "x"
    proc = omnigym(*[out if a == "x" else a for a in args], check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()  # nothing is written on a user mistake
