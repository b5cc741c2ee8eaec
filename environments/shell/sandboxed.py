"""One persistent sandbox per shell env, started on first use."""
from __future__ import annotations


class SandboxedEnv:
    """Mixin: ``_ensure_sandbox()`` starts the sandbox from ``_fixture()``,
    runs ``_setup_command()`` once, and keeps the resulting scratch tree as
    ``_baseline`` (what every episode or execution starts from)."""

    _sandbox = None
    _baseline = None
    sandbox_config = None

    def _fixture(self) -> dict:
        raise NotImplementedError

    def _setup_command(self) -> str:
        return ""

    def _ensure_sandbox(self):
        if self._sandbox is None or self._sandbox.closed:
            from omnigym.sandbox import Sandbox
            self._sandbox = Sandbox(self._fixture(), self.sandbox_config)
            setup = self._setup_command()
            if setup:
                result = self._sandbox.run(setup)
                if result.exit_code != 0:
                    raise RuntimeError(f"fixture setup failed: {result.stderr[:500]}")
            self._baseline = self._sandbox.snapshot()
        return self._sandbox

    def close(self):
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
