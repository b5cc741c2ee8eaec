"""MP4 (H.264) and GIF files from RGB frames, written atomically.

Encoding goes through imageio's FFmpeg binary (``imageio[ffmpeg]`` ships
one, so no system FFmpeg is needed). Frames are streamed to the encoder as
they come (:class:`Mp4Writer`), so a 1000-step episode rendered at 480x480
never sits in memory as a whole.

Files follow :func:`omnigym.episodes.atomic_write`'s protocol: FFmpeg
writes a hidden ``.<name>.<pid>.<rand>.partial`` file next to the target,
which is fsynced and renamed over the target only once the encoder has
finished. A crashed or interrupted recording leaves no ``.mp4`` that looks
complete.

Frame timing: frame ``i`` has presentation time ``i / fps`` exactly (the
input is declared constant-rate), which is what LeRobot's decoders look up.

Evaluation videos are for people: :func:`at_least` enlarges small renders
(nearest neighbour, so pixels stay sharp) to at least 320x240 and
:func:`caption` draws a line of text (step, reward, success) in a strip
under the frame, so it never hides the scene. Text comes from Pillow's
built-in font (no font file to find) and costs well under a millisecond a
frame.
"""
from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from omnigym.episodes import PARTIAL_SUFFIX, _fsync_dir, atomic_write

__all__ = ["Mp4Writer", "write_mp4", "read_mp4", "write_gif", "GifSampler", "at_least", "caption", "MIN_SIZE"]

MIN_SIZE = (240, 320)   # (height, width): the smallest frame an evaluation video shows


def _check_frame(frame) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"video frames must be uint8 arrays of shape (H, W, 3), got "
                         f"{frame.dtype} {frame.shape}")
    return np.ascontiguousarray(frame)


class Mp4Writer:
    """Stream frames into an H.264 MP4; :meth:`close` publishes the file.

    ``crf``: x264 quality (0 lossless .. 51 worst; 23 is x264's default).
    ``keyint``: frames between key frames (``None``: x264's default). Small
    values make random access cheap, which is why LeRobot encodes with 2.

    Pixel format is yuv420p (plays everywhere) when height and width are
    even; x264 cannot subsample odd sizes, so those use yuv444p instead
    of rescaling, which keeps the stored size equal to the frame size.
    """

    def __init__(self, path: str | os.PathLike, fps: float, *, crf: int = 23,
                 keyint: int | None = None):
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.crf = int(crf)
        self.keyint = keyint
        self.n_frames = 0
        self.size: tuple[int, int] | None = None      # (height, width)
        self.pix_fmt: str | None = None
        self._gen = None
        self._tmp: Path | None = None

    def _start(self, height: int, width: int) -> None:
        import imageio_ffmpeg

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(
            f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")
        self.size = (height, width)
        self.pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        # '-f mp4' because the temporary name does not end in .mp4;
        # quality=None so imageio adds no -crf of its own.
        params = ["-crf", str(self.crf), "-f", "mp4"]
        if self.keyint:
            params += ["-g", str(int(self.keyint))]
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp), (width, height), fps=self.fps, codec="libx264", pix_fmt_out=self.pix_fmt,
            quality=None, macro_block_size=1, ffmpeg_log_level="error", output_params=params)
        self._gen.send(None)  # starts FFmpeg

    def append(self, frame) -> None:
        frame = _check_frame(frame)
        if self._gen is None:
            self._start(*frame.shape[:2])
        elif frame.shape[:2] != self.size:
            raise ValueError(f"frame size {frame.shape[:2]} differs from the video's {self.size}")
        self._gen.send(frame)
        self.n_frames += 1

    def close(self) -> Path:
        """Finish encoding and move the file into place; returns its path."""
        if self._gen is None:
            raise ValueError(f"{self.path}: no frames to write")
        try:
            self._gen.close()  # waits for FFmpeg to finish the file
            with open(self._tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._gen = None
        _fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Stop encoding and remove the partial file (the target is untouched)."""
        if self._gen is not None:
            try:
                self._gen.close()
            except Exception:  # FFmpeg may already be gone; cleanup continues
                pass
            self._gen = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_mp4(frames: Iterable, path: str | os.PathLike, fps: float, *, crf: int = 23,
              keyint: int | None = None) -> Path:
    """Encode ``frames`` (uint8 HxWx3) as an H.264 MP4 at ``fps``, atomically."""
    writer = Mp4Writer(path, fps, crf=crf, keyint=keyint)
    with writer:
        for frame in frames:
            writer.append(frame)
    return writer.path


def read_mp4(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video as uint8 (N, H, W, 3) (for checks and tests)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]
    return np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)


def at_least(frame, size: tuple[int, int] = MIN_SIZE) -> np.ndarray:
    """``frame`` enlarged by the smallest whole factor that makes it at least
    ``size`` (height, width); frames already that large are returned as they are."""
    frame = np.asarray(frame)
    factor = max(-(-size[0] // frame.shape[0]), -(-size[1] // frame.shape[1]), 1)
    return frame if factor == 1 else frame.repeat(factor, axis=0).repeat(factor, axis=1)


@functools.lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def caption(frame, parts: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """``frame`` with a dark strip below it holding ``parts``, pieces of text
    (each with its RGB colour) written left to right; the strip's height
    (even, so H.264 keeps working) and the font scale with the frame's width."""
    from PIL import Image, ImageDraw

    frame = np.asarray(frame)
    width = frame.shape[1]
    height = 2 * max(10, round(width / 32))
    strip = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(strip)
    size, margin = round(0.6 * height), round(0.3 * height)
    text = "  ".join(t for t, _ in parts)
    # A long line gets a smaller font rather than running off the frame.
    size = max(8, min(size, int(size * (width - 2 * margin) / max(1.0, draw.textlength(text, font=_font(size))))))
    font, x = _font(size), margin
    for piece, colour in parts:
        draw.text((x, height / 2), piece, fill=colour, font=font, anchor="lm")
        x += draw.textlength(piece + "  ", font=font)
    return np.concatenate([frame, np.asarray(strip)], axis=0)


class GifSampler:
    """Keeps a bounded, evenly spaced subset of a stream of frames for a preview GIF.

    The length of an episode is unknown while it runs, so frames are kept
    every ``stride`` steps and, whenever more than ``max_frames`` are held,
    every other one is dropped and the stride doubles. Large frames are
    downscaled by the largest whole factor that keeps them at least
    ``min_size`` (height, width), so a preview is as legible as the video.
    """

    def __init__(self, max_frames: int = 60, min_size: tuple[int, int] = MIN_SIZE):
        self.max_frames = max_frames
        self.min_size = min_size
        self.stride = 1
        self.frames: list[np.ndarray] = []
        self._seen = 0

    def append(self, frame) -> None:
        if self._seen % self.stride == 0:
            frame = np.asarray(frame)
            step = max(1, min(frame.shape[0] // self.min_size[0], frame.shape[1] // self.min_size[1]))
            self.frames.append(np.ascontiguousarray(frame[::step, ::step]))
            if len(self.frames) > self.max_frames:
                self.frames = self.frames[::2]
                self.stride *= 2
        self._seen += 1


def write_gif(frames: list, path: str | os.PathLike, fps: float) -> Path:
    """An endlessly looping animated GIF at ``fps`` frames per second, atomically."""
    import imageio.v3 as iio

    if not frames:
        raise ValueError(f"{path}: no frames to write")
    data = iio.imwrite("<bytes>", np.stack([_check_frame(f) for f in frames]), extension=".gif",
                       duration=1000.0 / fps, loop=0)
    return atomic_write(path, lambda f: f.write(data))
