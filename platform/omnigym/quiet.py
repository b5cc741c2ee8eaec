"""Quiet by default: the lines Ray and RLlib log on every train and checkpoint
eval, and MuJoCo on every compile of gymnasium's locomotion models, that ask
nothing of the user are dropped; ``omnigym -v`` shows them.

Each line is dropped at the logger that emits it, by a fragment of its text,
so every other message of those loggers still shows.
"""
from __future__ import annotations

import logging
import os
import sys

# logger name -> fragments of its messages that are dropped.
NOISE = {
    # Ray's secure default for a new local instance; the opt-out it offers weakens it.
    "ray._private.authentication.authentication_token_setup": ("Token authentication is enabled",),
    "ray._private.worker": ("Started a local Ray instance",),
    "ray.rllib.algorithms.algorithm_config": ("on the new API stack",),
    # RLlib 2.60's own RLModule.__init__ builds the deprecated RLModuleConfig for
    # every module, RLlib's built-in ones included: no caller can avoid it.
    "ray._common.deprecation": ("RLModuleConfig",),
    "ray.tune.utils.util": ("Install gputil",),
}


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fragments = NOISE.get(record.name, ())
        return not any(fragment in record.getMessage() for fragment in fragments)


_DROP_NOISE = _DropNoise()


# MuJoCo 4.0 warns on every compile of gymnasium's own locomotion models (their
# XML sets the deprecated `settotalmass`): once per env, so once per sub-env of
# every env runner. Only that warning is dropped; MuJoCo's others still print.
MUJOCO_NOISE = ("compiler attribute 'settotalmass' is deprecated",)
# The worker processes Ray starts inherit it, so they are quiet or verbose alike.
VERBOSE_VAR = "OMNIGYM_VERBOSE"


def _mujoco_warning(message: str) -> None:
    if not any(fragment in message for fragment in MUJOCO_NOISE):
        print(f"WARNING: {message}", file=sys.stderr, flush=True)


def quiet_simulator_of(spec) -> None:
    """Before ``gymnasium.make(spec.id)``: import the env's module and, if it
    runs on MuJoCo, route MuJoCo's warnings through the filter above."""
    if os.environ.get(VERBOSE_VAR) == "1":
        return
    if isinstance(spec.entry_point, str):
        from gymnasium.envs.registration import load_env_creator
        load_env_creator(spec.entry_point)
    mujoco = sys.modules.get("mujoco")
    if mujoco is not None and mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_mujoco_warning)


def configure(verbose: bool) -> None:
    """Quiet unless ``verbose``; call first thing, before Ray is used."""
    if verbose:
        os.environ[VERBOSE_VAR] = "1"
    else:
        os.environ.pop(VERBOSE_VAR, None)
    for name in NOISE:
        logger = logging.getLogger(name)
        if verbose:
            logger.removeFilter(_DROP_NOISE)
        else:
            logger.addFilter(_DROP_NOISE)
