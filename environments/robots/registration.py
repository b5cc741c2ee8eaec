"""Registers the robots family's ids.

MuJoCo locomotion (gymnasium's v5 physics, our info conventions; no expert),
the arm tasks on MuJoCo and PyBullet, and Push-T. ``expert=`` describes the
expert that the env's ``make_expert()`` builds.
"""
from __future__ import annotations

from omnigym.registry import register

# Layouts come from the seed: "train" seeds are for tuning and training,
# "test" seeds are never used for either (held-out layouts).
PANELS = {"train": (0, 50), "test": (100_000, 50)}

LOCOMOTION = {
    # name: (one-line doc, success definition used for info["success"])
    "HalfCheetah": "run forward (gymnasium HalfCheetah-v5 physics)",
    "Hopper": "hop forward without falling (gymnasium Hopper-v5 physics)",
    "Walker2d": "walk forward without falling (gymnasium Walker2d-v5 physics)",
    "Ant": "walk forward on four legs (gymnasium Ant-v5 physics)",
    "Humanoid": "walk forward without falling (gymnasium Humanoid-v5 physics)",
    "HumanoidStandup": "stand up from lying down (gymnasium HumanoidStandup-v5 physics)",
    "Swimmer": "swim forward (gymnasium Swimmer-v5 physics)",
}
for _name, _doc in LOCOMOTION.items():
    register(f"robots/{_name}-v5", "omnigym.environments.robots.locomotion:make_locomotion", family="robots",
             doc=_doc, modes=("dict", "vector"), kwargs={"name": _name}, max_episode_steps=1000, panels=PANELS)

ARM = "omnigym.environments.robots.arm_env:ArmEnv"
ARM_EXPERT = "scripted waypoints from the state vector: approach, push or grasp, carry to the goal"
ARM_TASKS = {
    # id name: (kwargs, max steps, doc)
    "Reach": ({"task": "reach"}, 50, "move the gripper to a 3-D target"),
    "Push": ({"task": "push"}, 100, "push a block onto a target zone on the table"),
    "PickPlace": ({"task": "pick_place"}, 100, "pick a block up and place it at a target (on the table or in the air)"),
    "LangPush": ({"task": "push", "n_blocks": 3, "n_pads": 3}, 120,
                 "language-conditioned: push the named one of three coloured blocks onto the named pad"),
    "LangPickPlace": ({"task": "pick_place", "n_blocks": 3, "n_pads": 3}, 120,
                      "language-conditioned: put the named block on the named pad"),
}
for _name, (_kwargs, _steps, _doc) in ARM_TASKS.items():
    register(f"robots/{_name}-v0", ARM, family="robots", doc=f"{_doc} (MuJoCo arm)", modes=("dict", "vector"),
             kwargs={**_kwargs, "backend": "mujoco"}, max_episode_steps=_steps, expert=ARM_EXPERT,
             panels=PANELS)

for _name in ("Reach", "Push"):
    _kwargs, _steps, _doc = ARM_TASKS[_name]
    register(f"robots/Bullet{_name}-v0", ARM, family="robots", doc=f"{_doc} (PyBullet Panda)",
             modes=("dict", "vector"), kwargs={**_kwargs, "backend": "pybullet"}, max_episode_steps=_steps,
             expert=ARM_EXPERT, panels=PANELS)

register("robots/PushT-v0", "omnigym.environments.robots.push_t:PushTEnv", family="robots",
         doc="push a T-shaped block onto a target pose with a round pusher (Diffusion Policy's Push-T)",
         modes=("dict", "vector"), max_episode_steps=300,
         expert="push primitives chosen by simulating them on the env's snapshots (privileged)", panels=PANELS)
