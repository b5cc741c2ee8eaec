"""Quiet by default: the lines Ray and RLlib log on every train and checkpoint
eval that ask nothing of the user are dropped; ``omnigym -v`` shows them.

Each line is dropped at the logger that emits it, by a fragment of its text,
so every other message of those loggers still shows.
"""
from __future__ import annotations

import logging

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


def configure(verbose: bool) -> None:
    """Quiet unless ``verbose``; call first thing, before Ray is used."""
    for name in NOISE:
        logger = logging.getLogger(name)
        if verbose:
            logger.removeFilter(_DROP_NOISE)
        else:
            logger.addFilter(_DROP_NOISE)
