"""``omnigym play ID``: you are the agent of a text environment, in the terminal.

Play needs text observations: every omnigym id with a ``text`` mode (the
household, shell and tools families; they are played in that mode, so a
shell ``Construct`` id lists the arguments its grammar allows now), or any
other id whose observation space is ``Text``. Anything else (robots, CartPole)
is refused with one line that says so and how to watch it act instead.
"""
from __future__ import annotations

import shutil

from omnigym import info_keys as K

QUIT = ("q", "quit", "exit")
RESTART = ("r", "reset")
HELP = "Type an action (free text), a number from the list, 'r' to restart, 'q' to quit.\n"


def text_families() -> list[str]:
    """The families with a text mode, for the refusal message."""
    from omnigym.registry import list_envs
    return sorted({e.family for e in list_envs() if "text" in e.modes})


def make_text_env(env_id: str):
    """The env in its text mode; ValueError when it has none."""
    import gymnasium

    from omnigym.registry import entry, make
    found = entry(env_id)  # an unknown id fails here with close matches
    if "text" in found.modes:
        return make(env_id, mode="text")
    if found.modes == ("default",):  # not omnigym's: playable if it speaks text anyway
        env = make(env_id)
        if isinstance(env.observation_space, gymnasium.spaces.Text):
            return env
        env.close()
    hint = f"; to watch it act: omnigym eval {env_id} --agent expert --video 2" if found.expert else ""
    raise ValueError(f"{env_id} has no text observations (modes: {', '.join(found.modes)}): play is for text "
                     f"environments, the {_and(text_families())} families{hint}")


def numbered(actions: list[str], width: int | None = None) -> str:
    """The actions numbered, one per line, or in columns read downwards when
    there are many (a shell utility's arguments would otherwise scroll the
    observation away), as ``ls`` lays out names."""
    items = [f"{i:>3}. {a}" for i, a in enumerate(actions)]
    if len(items) <= 15:
        return "\n".join(f"  {item}" for item in items)
    width = (width or shutil.get_terminal_size((100, 24)).columns) - 2
    for columns in range(len(items), 0, -1):
        rows = -(-len(items) // columns)
        cells = [items[c * rows:(c + 1) * rows] for c in range(columns)]
        widths = [max(map(len, column)) + 2 for column in cells if column]
        if sum(widths) - 2 <= width or columns == 1:
            break
    lines = []
    for r in range(rows):
        row = [column[r].ljust(w) for column, w in zip(cells, widths) if r < len(column)]
        lines.append("  " + "".join(row).rstrip())
    return "\n".join(lines)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _show(obs) -> None:
    print(obs if isinstance(obs, str) else repr(obs))


def play(env_id: str, seed: int | None = 0) -> int:
    """Play ``env_id`` from stdin; every new episode takes the next seed. Returns the exit status."""
    env = make_text_env(env_id)
    try:
        obs, info = env.reset(seed=seed)
        total = 0.0
        print(HELP)
        while True:
            _show(obs)
            actions = list(info.get(K.ADMISSIBLE_ACTIONS) or [])
            if actions:
                print(numbered(actions))
            try:
                line = input("> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if line in QUIT:
                return 0
            over = line in RESTART
            if line and not over:
                # A number picks from the list; anything else (a number past its end too:
                # an answer such as 12345) is the action as typed.
                action = actions[int(line)] if line.isdigit() and int(line) < len(actions) else line
                obs, reward, terminated, truncated, info = env.step(action)
                total += reward
                if info.get(K.INVALID_ACTION):
                    print("(invalid action)")
                over = terminated or truncated
                if over:
                    _show(obs)
                    print(f"\nEpisode over: success={info.get(K.SUCCESS)} return={total:.2f}. New episode.\n")
            if over:
                seed = None if seed is None else seed + 1
                obs, info = env.reset(seed=seed)
                total = 0.0
    finally:
        env.close()
