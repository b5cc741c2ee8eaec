"""A few well-formed candidate outputs for the current context.

``info["admissible_actions"]`` for the tools family: not every possible
output (that set is infinite) but concrete, valid moves built from what the
agent has seen -- search for a name in the question, open a result, run the
calculator on the question's expression, store or recall a fact, answer with
a value that appeared. The random agent picks among them (so it is a fair
floor, not a typist), and ``omnigym play`` lists them as numbered shortcuts.
"""
from __future__ import annotations

import json
import re

MAX_CANDIDATES = 24
NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")  # whole numbers, not doc ids
EXPRESSION = re.compile(r"What is (.+?)\? Give")
OPENED_TITLE = re.compile(r"^# (.+)$", re.M)
HIT_TITLE = re.compile(r"^\d+\. (.+?) \((d\d+)\):", re.M)
QUESTION_WORDS = {"What", "Which", "Who", "In", "The", "Give", "Round", "How", "When", "Where"}


def call(name: str, **arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def candidate_actions(env) -> list[str]:
    names = set(env.registry.names)
    problem, out = env.problem, []
    if env.phase == "facts":
        if "memory_set" in names:
            out += [call("memory_set", key=k, value=v) for k, v in problem.facts.items()]
        return out + ["ready"]
    question = problem.question
    last = env.last_tool_output
    if "calculator" in names:
        match = EXPRESSION.search(question)
        if match:
            out.append(call("calculator", expression=match.group(1)))
    if "search" in names:
        out.append(call("search", query=question))
        for name in dict.fromkeys(NAME.findall(question)):
            if name.split()[0] not in QUESTION_WORDS:
                out.append(call("search", query=name))
    if "open" in names:
        titles = [t for t, _ in HIT_TITLE.findall(last)]
        links = re.search(r"^Links: (.+)$", last, re.M)
        if links:
            titles += [t.strip() for t in links.group(1).split(",")]
        out += [call("open", title=t) for t in dict.fromkeys(titles)]
    if "python" in names and problem.files:
        name = sorted(problem.files)[0]
        out.append(call("python", code=f"print(open({name!r}).read()[:500])"))
    if "memory_get" in names:
        out += [call("memory_get", key=k) for k in env.ctx.memory]
    if "final_answer" in names and last:
        values = OPENED_TITLE.findall(last) + [t for t, _ in HIT_TITLE.findall(last)] + NUMBER.findall(last)[:6]
        out += [call("final_answer", answer=v) for v in dict.fromkeys(values)]
    return out[:MAX_CANDIDATES]
