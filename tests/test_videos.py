"""Evaluation videos: at least 320x240, with step, reward and success written under every frame."""
import gymnasium as gym
import imageio.v3 as iio
import numpy as np

from omnigym.agents import as_batched, resolve_agent
from omnigym.datasets.video import GifSampler, at_least, caption, read_mp4
from omnigym.rollout import _Film, run_batch

WHITE = (235, 235, 235)


class _Tiny(gym.Env):
    """Three steps; renders a 48x64 frame; succeeds on the last step."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 0, {"success": False}

    def step(self, action):
        self.t += 1
        return self.t, 0.5, self.t == 3, False, {"success": self.t == 3}

    def render(self):
        return np.full((48, 64, 3), 60 * self.t, np.uint8)


def test_small_renders_are_enlarged_and_large_ones_kept():
    assert at_least(np.zeros((48, 64, 3), np.uint8)).shape == (240, 320, 3)
    assert at_least(np.zeros((100, 100, 3), np.uint8)).shape == (400, 400, 3)
    frame = np.zeros((240, 320, 3), np.uint8)
    assert at_least(frame) is frame


def test_caption_writes_text_in_a_strip_under_the_frame():
    frame = np.full((240, 320, 3), 200, np.uint8)
    a = caption(frame, [("step 1", WHITE), ("success: no", (170, 170, 170))])
    b = caption(frame, [("step 2", WHITE), ("success: yes", (90, 220, 110))])
    assert a.shape[0] > 240 and a.shape[0] % 2 == 0 and a.shape[1] == 320
    assert np.array_equal(a[:240], frame)            # the scene is never covered
    assert (a[240:] > 150).any() and not np.array_equal(a[240:], b[240:])
    # A line too long for the frame is written smaller, not cut off or rejected.
    assert caption(frame, [("reward 123456.78 " * 6, WHITE)]).shape == a.shape


def test_gif_preview_keeps_at_least_320x240():
    sampler = GifSampler()
    sampler.append(np.zeros((260, 320, 3), np.uint8))
    assert sampler.frames[0].shape == (260, 320, 3)   # 160x120 before
    big = GifSampler()
    big.append(np.zeros((1040, 1280, 3), np.uint8))
    assert big.frames[0].shape == (260, 320, 3)


def test_filmed_episode_shows_step_reward_and_success(tmp_path):
    env = _Tiny()
    film = _Film(env, "tiny", tmp_path / "tiny.mp4")
    agent = as_batched(resolve_agent(lambda obs, info: 0), 1)
    episode, = run_batch([env], agent, [(0, 0, 0)], env_id="tiny", films={0: film})
    frames = read_mp4(tmp_path / "tiny.mp4")
    assert frames.shape[0] == 4 and frames.shape[1] >= 240 and frames.shape[2] >= 320
    strips = frames[:, 240:].astype(int)
    assert all(np.abs(strips[i] - strips[i + 1]).mean() > 1 for i in range(3))   # the step count changes
    last = strips[-1].reshape(-1, 3)
    assert ((last[:, 1] > 160) & (last[:, 0] < 140)).sum() > 20                  # "success: yes" in green
    assert not ((strips[0].reshape(-1, 3)[:, 1] > 160) & (strips[0].reshape(-1, 3)[:, 0] < 140)).any()
    gif = iio.imread(episode.metadata["video_preview"], index=None)
    assert gif.shape[1:3] == frames.shape[1:3]
