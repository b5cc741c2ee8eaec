"""Robot-learning dataset formats and videos for omnigym episodes.

- :mod:`omnigym.datasets.lerobot`: LeRobot datasets (codebase v3.0 layout:
  Parquet frames + MP4 videos + meta/), :func:`export_lerobot`;
- :mod:`omnigym.datasets.minari_export`: Minari datasets, :func:`export_minari`;
- :mod:`omnigym.datasets.video`: MP4/GIF writing (evaluation videos too).

Submodules are imported on first use, so ``import omnigym.datasets`` stays
cheap and Minari is only needed by its exporter.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "export_lerobot": "omnigym.datasets.lerobot",
    "export_minari": "omnigym.datasets.minari_export",
    "write_mp4": "omnigym.datasets.video",
    "read_mp4": "omnigym.datasets.video",
    "Mp4Writer": "omnigym.datasets.video",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'omnigym.datasets' has no attribute {name!r}")
