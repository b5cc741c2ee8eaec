"""omnigym: one environment contract for LLM tool agents, sandboxed shells,
households and robots, with rollout, recording and evaluation.

``import omnigym`` is light: families and heavy libraries load on first use.
"""
from omnigym.registry import describe_env, list_envs, make, register

__version__ = "0.1.0"
__all__ = ["make", "register", "list_envs", "describe_env", "__version__"]
