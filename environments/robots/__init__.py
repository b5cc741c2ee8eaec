"""The robots family: MuJoCo locomotion, arm manipulation on MuJoCo and
PyBullet, and Push-T. See ``base`` for the contract every env follows."""
import os

# Without a display MuJoCo's default GL backend (glfw) aborts the process on
# the first offscreen render; EGL (software Mesa here) works headless.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
