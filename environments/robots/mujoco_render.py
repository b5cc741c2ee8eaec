"""Offscreen MuJoCo rendering shared by every MuJoCo robots env."""
from __future__ import annotations

import mujoco
import numpy as np


class RendererCache:
    """One ``mujoco.Renderer`` per image size: each owns a GL context, so
    they are made once and reused for every frame of that size."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self._by_size: dict[tuple[int, int], mujoco.Renderer] = {}

    def render(self, data: mujoco.MjData, camera: str, height: int, width: int) -> np.ndarray:
        """A new uint8 (height, width, 3) frame from the named camera."""
        key = (int(height), int(width))
        renderer = self._by_size.get(key)
        if renderer is None:
            renderer = self._by_size[key] = mujoco.Renderer(self.model, *key)
        renderer.update_scene(data, camera=camera)
        return renderer.render()

    def __len__(self) -> int:
        return len(self._by_size)  # renderers open now (0 after close)

    def close(self) -> None:
        for renderer in self._by_size.values():
            renderer.close()
        self._by_size.clear()
