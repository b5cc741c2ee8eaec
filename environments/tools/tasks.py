"""Concrete tool-use problems from a suite task and a seed.

A suite task (``tasks/tools/tools.yaml``) fixes the *kind* of problem, e.g.
``arithmetic:mul:sub`` or ``multihop:founder:born_in.country``; the episode
seed draws the numbers, the data file, the facts or the question's start
entity. Each generator returns a ``Problem``: what the user is asked, the one
correct answer, how to check it, and the privileged ``plan`` the scripted
expert follows.
"""
from __future__ import annotations

import io
import csv
from dataclasses import dataclass, field

import numpy as np

from omnigym.suites import Task


@dataclass
class Problem:
    task_id: str
    template: str
    kind: str                              # the goal kind: ARITHMETIC, DATA, MEMORY, MULTIHOP
    question: str                          # the user's message
    answer: str                            # the one correct answer
    tolerance: float = 0.0                 # relative tolerance for numeric answers
    files: dict[str, str] = field(default_factory=dict)   # python's working directory
    facts: dict[str, str] = field(default_factory=dict)   # memory tasks: shown once, then hidden
    plan: dict = field(default_factory=dict)              # what the expert needs to know


def goal_args(task: Task) -> tuple[str, ...]:
    """The arguments of the task's one goal predicate, e.g. ('mul', 'sub')."""
    return tuple(task.goal[0][1:])


# --- arithmetic: the calculator -----------------------------------------
OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def arithmetic(task: Task, rng: np.random.Generator) -> Problem:
    inner, outer = goal_args(task)

    def number() -> str:
        # Decimals with 3-4 significant digits: too fiddly to do in one's head.
        return f"{rng.integers(100, 10_000) / (10 ** rng.integers(0, 3)):g}"

    a, b, c = number(), number(), number()
    if inner == "div" and float(b) == 0:
        b = "7"
    left = f"({a} {OPS[inner]} {b})"
    if outer == "sqrt":
        expression = f"sqrt(abs{left})"
    elif outer == "pow":
        expression = f"{left} ** 2"
    else:
        expression = f"{left} {OPS[outer]} {c}"
    from omnigym.environments.tools.calculator import evaluate, format_number
    value = evaluate(expression)
    question = f"What is {expression}? Give the number, accurate to 6 significant digits."
    return Problem(task.id, task.template, "ARITHMETIC", question, format_number(value), tolerance=1e-6,
                   plan={"expression": expression})


# --- data: python over a CSV file ----------------------------------------
REGIONS = ("north", "south", "east", "west")
PRODUCTS = ("lumen lamp", "orbit kettle", "quill pen", "tide mug", "ember stove", "frost jar")
AGGREGATES = {"sum": "total", "mean": "average", "max": "largest", "min": "smallest"}


def sales_table(rng: np.random.Generator) -> tuple[str, list[dict]]:
    rows = []
    for i in range(int(rng.integers(80, 160))):
        rows.append({"order": i + 1, "region": REGIONS[rng.integers(len(REGIONS))],
                     "product": PRODUCTS[rng.integers(len(PRODUCTS))],
                     "price": round(float(rng.uniform(2, 250)), 2), "quantity": int(rng.integers(1, 40))})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue(), rows


def data(task: Task, rng: np.random.Generator) -> Problem:
    agg, column = goal_args(task)
    text, rows = sales_table(rng)
    region = REGIONS[rng.integers(len(REGIONS))]
    values = [r["price"] * r["quantity"] if column == "revenue" else r[column]
              for r in rows if r["region"] == region]
    value = {"sum": sum, "mean": lambda v: sum(v) / len(v), "max": max, "min": min}[agg](values)
    what = "revenue (price times quantity)" if column == "revenue" else column
    question = (f"The file sales.csv (columns: order, region, product, price, quantity) lists orders. "
                f"What is the {AGGREGATES[agg]} {what} per order over the orders from the {region} region? "
                "Round to 2 decimal places.")
    return Problem(task.id, task.template, "DATA", question, f"{round(value, 2):.2f}", tolerance=1e-4,
                   files={"sales.csv": text}, plan={"agg": agg, "column": column, "region": region})


# --- memory: facts that leave the conversation --------------------------
SUBJECTS = {
    "locker": ("the code of locker {k}", lambda rng: f"{rng.integers(1000, 10_000)}"),
    "extension": ("the phone extension of {k}", lambda rng: f"{rng.integers(100, 1000)}"),
    "meeting": ("the room of the {k} meeting", lambda rng: f"room {rng.integers(100, 700)}"),
}
NAMES = ("Ardel", "Brisa", "Corvin", "Dalia", "Emrik", "Fenna", "Galen", "Hesper", "Ilsa", "Joren")
MEETINGS = ("budget", "design", "hiring", "launch", "safety", "travel", "quality", "roadmap")


def memory(task: Task, rng: np.random.Generator) -> Problem:
    subject, count = goal_args(task)
    phrase, draw = SUBJECTS[subject]
    pool = {"locker": [str(k) for k in rng.permutation(np.arange(1, 60))],
            "extension": list(rng.permutation(NAMES)), "meeting": list(rng.permutation(MEETINGS))}[subject]
    facts = {}
    for k in pool[: int(count)]:
        facts[phrase.format(k=k)] = draw(rng)
    asked = list(facts)[int(rng.integers(len(facts)))]
    question = f"What is {asked}?"
    return Problem(task.id, task.template, "MEMORY", question, facts[asked], facts=facts, plan={"asked": asked})


# --- multi-hop questions over the corpus --------------------------------
def multihop(task: Task, rng: np.random.Generator, corpus) -> Problem:
    from omnigym.environments.tools.questions import make_question
    path = ".".join(goal_args(task))
    q = make_question(corpus, path, rng)
    return Problem(task.id, task.template, "MULTIHOP", q.text, q.answer, tolerance=1e-6,
                   plan={"chain": list(q.chain), "path": list(q.path), "gold_titles": list(q.gold_titles)})


GENERATORS = {"ARITHMETIC": arithmetic, "DATA": data, "MEMORY": memory, "MULTIHOP": multihop}


def make_problem(task: Task, rng: np.random.Generator, corpus=None) -> Problem:
    kind = task.goal[0][0]
    if kind == "MULTIHOP":
        return multihop(task, rng, corpus)
    return GENERATORS[kind](task, rng)
