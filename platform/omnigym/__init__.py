"""omnigym: one environment contract for LLM tool agents, sandboxed shells,
households and robots, with rollout, recording and evaluation.

``import omnigym`` is light: families and heavy libraries load on first use.
"""
import os as _os

# MuJoCo picks its GL backend once, when it is first imported; without a
# display its default (glfw) aborts the process on the first offscreen render.
# EGL (software Mesa here) works headless. Set before anything imports mujoco.
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"
    _os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from omnigym.registry import describe_env, list_envs, make, register  # noqa: E402

__version__ = "0.1.0"
__all__ = ["make", "register", "list_envs", "describe_env", "__version__"]
