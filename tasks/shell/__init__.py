"""Shell task suites (free-form tasks: one whole command per turn)."""
