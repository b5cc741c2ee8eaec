"""The robots family: MuJoCo locomotion, arm manipulation on MuJoCo and
PyBullet, and Push-T. See ``base`` for the contract every env follows.
(``import omnigym`` selects MuJoCo's headless GL backend, EGL, when there is
no display; set ``MUJOCO_GL`` yourself before importing mujoco to choose.)"""
