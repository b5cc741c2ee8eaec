"""omnigym: one environment contract for LLM tool agents, sandboxed shells,
households and robots, with rollout, recording and evaluation.

``import omnigym`` registers every environment id with gymnasium (string
entry points: no simulator, torch or Ray is imported), so after it plain
``gymnasium.make("household/Hold-v0")`` works, as do the ``omnigym:`` module
prefix (``gymnasium.make("omnigym:robots/Push-v0")``),
``gymnasium.register_envs(omnigym)`` and RLlib's string env ids.
"""
import os as _os

# MuJoCo picks its GL backend once, when it is first imported; without a
# display its default (glfw) aborts the process on the first offscreen render.
# EGL (software Mesa here) works headless. Set before anything imports mujoco.
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"
    _os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from omnigym.registry import describe_env, list_envs, load_families, make, register  # noqa: E402

load_families()

__version__ = "0.1.0"
__all__ = ["make", "register", "list_envs", "describe_env", "__version__"]
