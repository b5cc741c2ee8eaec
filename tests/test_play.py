"""`omnigym play`: text environments in the terminal; anything else is refused in one line."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

from omnigym.play import make_text_env, numbered, play


def play_with(monkeypatch, capsys, env_id: str, typed: str, seed: int = 0) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    assert play(env_id, seed) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("env_id", ["robots/Push-v0", "CartPole-v1"])
def test_a_non_text_env_is_refused_with_what_play_is_for(env_id):
    with pytest.raises(ValueError) as exc:
        make_text_env(env_id)
    message = str(exc.value)
    assert "\n" not in message and "text" in message
    assert "household, shell and tools" in message


def test_the_command_refuses_robots_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "omnigym.cli", "play", "robots/Push-v0"], input="0\nq\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "play is for text environments" in proc.stderr
    assert "observation.state" not in proc.stdout      # no numpy dicts printed


def test_household_is_played_in_text_mode(monkeypatch, capsys):
    out = play_with(monkeypatch, capsys, "household/Hold-v0", "0\n\n[grab] <nothing>\nwalk to the kitchen\nq\n")
    assert "Task: pick up the" in out and "  0. [walk] <kitchen>" in out
    assert out.count("(invalid action)") == 1             # the bogus grab; the empty line is no action
    assert out.count("Last action: [walk]") >= 2


def test_shell_construct_lists_the_arguments_its_grammar_allows(monkeypatch, capsys):
    env = make_text_env("shell/ConstructLs-v0")
    try:
        _, info = env.reset(seed=0)
        allowed = info["admissible_actions"]
    finally:
        env.close()
    assert "-l" in allowed and "<execute>" in allowed
    out = play_with(monkeypatch, capsys, "shell/ConstructLs-v0", f"{allowed.index('-l')}\n<execute>\nq\n")
    assert f"{allowed.index('-l')}. -l" in out              # the numbered arguments
    assert "$ ls -l" in out and "(invalid action)" not in out
    assert "Episode over: success=True" in out


def test_many_actions_are_laid_out_in_columns():
    actions = [f"--option-{i}" for i in range(40)]
    text = numbered(actions, width=80)
    lines = text.splitlines()
    assert len(lines) < 40 and all(len(line) <= 80 for line in lines)
    assert "  0. --option-0" in lines[0] and " 39. --option-39" in text
    assert numbered(["a", "b"]) == "    0. a\n    1. b"
