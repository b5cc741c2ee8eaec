"""The scripted expert of the tools family: the upper bound and the source of
demonstrations. It knows the problem it is solving (``env.unwrapped.problem.plan``:
the expression, the data question, the fact asked, the chain of entities)
and makes the same tool calls a careful agent would, in the fewest turns:

- arithmetic: ``calculator`` on the expression, then ``final_answer``;
- data: one ``python`` program over the CSV file, then ``final_answer``;
- memory: every fact with ``memory_set`` (one output, several calls),
  ``ready``, then ``memory_get`` and ``final_answer``;
- multi-hop: ``search`` the start entity, ``open`` each document along the
  chain, then ``final_answer``.
"""
from __future__ import annotations

from omnigym.environments.tools.candidates import call

AGGREGATE_CODE = {"sum": "sum(values)", "mean": "sum(values) / len(values)", "max": "max(values)",
                  "min": "min(values)"}


def data_program(plan: dict) -> str:
    value = "float(r['price']) * int(r['quantity'])" if plan["column"] == "revenue" \
        else f"float(r[{plan['column']!r}])"
    return ("import csv\n"
            "rows = list(csv.DictReader(open('sales.csv')))\n"
            f"values = [{value} for r in rows if r['region'] == {plan['region']!r}]\n"
            f"print(f'{{{AGGREGATE_CODE[plan['agg']]}:.2f}}')\n")


def plan_outputs(problem) -> list[str]:
    """The expert's outputs for ``problem``, in order."""
    plan, answer = problem.plan, call("final_answer", answer=problem.answer)
    if problem.template == "arithmetic":
        return [call("calculator", expression=plan["expression"]), answer]
    if problem.template == "data":
        return [call("python", code=data_program(plan)), answer]
    if problem.template == "memory":
        store = "".join(call("memory_set", key=k, value=v) for k, v in problem.facts.items())
        return [store, "ready", call("memory_get", key=plan["asked"]), answer]
    chain = plan["chain"]
    return [call("search", query=chain[0])] + [call("open", title=t) for t in plan["gold_titles"]] + [answer]


class ToolExpert:
    """What ``ToolEnv.make_expert()`` returns (privileged: it reads the problem)."""

    name = "expert"

    def __init__(self, **_):
        self.outputs: list[str] = []

    def reset(self, env=None, seed=None, member=None) -> None:
        self.outputs = plan_outputs(env.unwrapped.problem)

    def act(self, obs, info) -> str:
        return self.outputs.pop(0) if self.outputs else "I do not know."
