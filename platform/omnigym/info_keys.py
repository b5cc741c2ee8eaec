"""The info-key conventions every omnigym environment follows.

Use these names (never string literals of your own) so that rollouts,
evaluation, recording and trainers work on every family unchanged.
"""
from __future__ import annotations

SUCCESS = "success"
"""bool, on every step: the task's goal holds now."""

INSTRUCTION = "instruction"
"""str: the goal in words, as a person would say it."""

ADMISSIBLE_ACTIONS = "admissible_actions"
"""list[str]: the actions whose preconditions hold now (text families)."""

ACTION_MASK = "action_mask"
"""np.ndarray[bool] of the Discrete action space's size: True where an index
is admissible. Masked PPO samples only these."""

INVALID_ACTION = "invalid_action"
"""bool: the last action could not be parsed or failed a precondition. The
environment never raises for a bad action; it says why in the observation."""

STATE_KEY = "state_key"
"""str: a canonical hash of the simulator state (world + agent), never of the
rendered text: two situations that read the same but differ get different
keys. The anchor for step-level credit assignment (GiGPO)."""

TASK_ID = "task_id"
"""str: which task of the suite this episode poses."""

OBJECTIVES = "objectives"
"""np.ndarray: a reward vector for multi-objective tasks."""

TURN = "turn"
"""list[dict], text families: the chat messages this step added (see
``omnigym.conversation``): system + user on reset, assistant (+ tool results)
+ user on every step."""

TOOLS = "tools"
"""list[dict], on reset only, families with tools: OpenAI-style tool specs
(constant for the episode, so recorded once)."""

ACTION_CLIPPED = "action_clipped"
"""bool, continuous actions: the action lay outside the action space's bounds
and was clipped to them (not an invalid action: nothing is penalised)."""

GROUP = "group"
MEMBER = "member"
"""int: which group of identical resets this episode belongs to, and its
index in the group (grouped rollouts and RLlib group schedules)."""

CONTRACT_KEYS = (SUCCESS, INSTRUCTION, ADMISSIBLE_ACTIONS, ACTION_MASK, INVALID_ACTION,
                 STATE_KEY, TASK_ID, OBJECTIVES)
REQUIRED_KEYS = (SUCCESS, INSTRUCTION, INVALID_ACTION, STATE_KEY, TASK_ID)
"""What every omnigym env puts in the info of reset and of every step."""
RESET_ONLY_KEYS = (TOOLS,)
"""Episode constants: in the reset info only. Every other key a family emits
is present on reset and on every step alike."""

DOCS = {
    SUCCESS: "bool every step: the goal holds now",
    INSTRUCTION: "str: the goal in words",
    ADMISSIBLE_ACTIONS: "list[str]: actions whose preconditions hold now",
    ACTION_MASK: "np.ndarray[bool]: admissible indices of the Discrete action space",
    INVALID_ACTION: "bool: the last action was unparseable or failed a precondition",
    STATE_KEY: "str: canonical hash of simulator state (not of the text)",
    TASK_ID: "str: the task of the suite this episode poses",
    OBJECTIVES: "np.ndarray: reward vector of multi-objective tasks",
    TURN: "list[dict] (text families): chat messages this step added",
    TOOLS: "list[dict] (reset only, tool families): OpenAI-style tool specs",
    ACTION_CLIPPED: "bool (continuous actions): out-of-bounds action clipped",
}
