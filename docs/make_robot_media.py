"""Renders the README's robot pictures: one frame per manipulation task and
expert videos (GIF for the README, MP4 beside it).

    .venv/bin/python docs/make_robot_media.py [--out docs/images]
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import omnigym  # noqa: F401  (first: headless GL backend)
import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from omnigym.agents import ExpertAgent
from omnigym.datasets.video import write_mp4
from omnigym.registry import make

warnings.filterwarnings("ignore")
TASKS = ["robots/Reach-v0", "robots/Push-v0", "robots/PickPlace-v0", "robots/LangPush-v0",
         "robots/LangPickPlace-v0", "robots/PushT-v0", "robots/BulletReach-v0", "robots/BulletPush-v0"]
SIZE = (240, 320)


def expert_frames(env_id: str, seed: int, every: int = 1) -> tuple[list[np.ndarray], bool]:
    """Frames of one expert episode (every ``every``-th step) and its success."""
    env = make(env_id, mode="vector", render_mode="rgb_array", render_size=SIZE)
    expert = ExpertAgent()
    obs, info = env.reset(seed=seed)
    expert.reset(env=env, seed=seed)
    frames, step, done = [env.render()], 0, False
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
        step += 1
        done = terminated or truncated
        if step % every == 0 or done:
            frames.append(env.render())
    env.close()
    return frames, bool(info["success"])


def label(frame: np.ndarray, text: str) -> np.ndarray:
    """The id written under the frame (matplotlib, so no font files are needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    h, w, _ = frame.shape
    fig = plt.figure(figsize=(w / 100, (h + 28) / 100), dpi=100)
    fig.figimage(frame, 0, 28)
    fig.text(0.5, 10 / (h + 28), text, ha="center", fontsize=10, family="monospace")
    fig.canvas.draw()
    out = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/images")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tiles = []
    for env_id in tqdm(TASKS, desc="frames"):
        frames, _ = expert_frames(env_id, seed=3)
        tiles.append(label(frames[len(frames) // 2], env_id))  # mid-episode: the robot at work
    rows = [np.concatenate(tiles[i:i + 4], axis=1) for i in range(0, len(tiles), 4)]
    iio.imwrite(out / "robots_tasks.png", np.concatenate(rows, axis=0))

    for env_id, name, seed in (("robots/PickPlace-v0", "robots_pickplace_expert", 1),
                               ("robots/PushT-v0", "robots_pusht_expert", 2)):
        frames, success = expert_frames(env_id, seed)
        write_mp4(frames, out / f"{name}.mp4", fps=10)
        small = [f[::2, ::2] for f in frames]
        iio.imwrite(out / f"{name}.gif", small, duration=100, loop=0)
        print(f"{env_id} seed {seed}: {len(frames)} frames, success={success}")
    print(f"written to {out}/")


if __name__ == "__main__":
    main()
