"""A safe arithmetic evaluator for the ``calculator`` tool.

The expression is parsed with ``ast`` and walked by a tiny interpreter that
knows numbers, + - * / // % **, unary +/-, parentheses, a few math functions
and the constants ``pi`` and ``e``.  Nothing is ever passed to ``eval`` or
``exec``: names, attributes, calls of anything but the whitelisted functions,
lambdas, subscripts, comprehensions ... are refused by construction, because
only the node types below are interpreted at all.

Every limit exists because a model (or a fuzzer) will eventually send the
expression that needs it: ``9**9**9`` would take minutes and gigabytes as a
Python int, ``round(1, -10**9)`` computes ``10**10**9`` internally, and very
long or deeply nested expressions exhaust the parser's recursion.
"""

from __future__ import annotations

import ast
import math
import operator

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 256  # AST nodes; also bounds the interpreter's recursion depth
MAX_INT_BITS = 1024  # |int results| < 2**1024 ~ 1.8e308, the float range
MAX_ROUND_DIGITS = 100  # round(x, n): |n| above this is pointless and can be slow


class CalculatorError(ValueError):
    """The expression is invalid, unsupported, or its value is out of range."""


_CONSTANTS = {"pi": math.pi, "e": math.e}


def _log(x, base=None):
    return math.log(x) if base is None else math.log(x, base)


def _round(x, ndigits=None):
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int):
        raise CalculatorError("round(x, n): n must be an integer")
    if abs(ndigits) > MAX_ROUND_DIGITS:
        raise CalculatorError(f"round(x, n): |n| must be <= {MAX_ROUND_DIGITS}")
    return round(x, ndigits)


# name -> (function, min args, max args)
_FUNCTIONS = {
    "sqrt": (math.sqrt, 1, 1), "log": (_log, 1, 2), "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1), "exp": (math.exp, 1, 1), "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1), "tan": (math.tan, 1, 1), "abs": (abs, 1, 1),
    "round": (_round, 1, 2), "floor": (math.floor, 1, 1), "ceil": (math.ceil, 1, 1),
    "min": (min, 2, 50), "max": (max, 2, 50),
}

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}

# Hints for the syntax models reach for most often.
_HINTS = {
    ast.BitXor: "'^' is not a power here; use ** (2**10)",
    ast.Tuple: "tuples are not supported (write 1234, not 1,234; use min/max for several values)",
    ast.Attribute: "attribute access is not allowed (write sqrt(x), not math.sqrt(x))",
    ast.Compare: "comparisons are not supported",
}


def _check_number(value):
    """Keep every intermediate result a finite real of bounded size."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculatorError("result is not a real number")
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise CalculatorError("result too large (magnitude over ~1e308)")
    elif not math.isfinite(value):
        raise CalculatorError("result is not finite (overflow)")
    return value


def _power(base, exp):
    # Refuse before computing: an int power's size is known in advance, and
    # 9**9**9 must not be attempted at all.
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        if math.log2(abs(base)) * exp > MAX_INT_BITS + 8:
            raise CalculatorError("result too large (magnitude over ~1e308)")
    # (float powers need no check: they raise OverflowError at once)
    return base ** exp


class _Evaluator:
    def visit(self, node):
        kind = type(node)
        if kind is ast.Expression:
            return self.visit(node.body)
        if kind is ast.Constant:
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                what = f"{type(node.value).__name__} {_clip(repr(node.value))}"
                raise CalculatorError(f"only numbers are allowed, got {what}")
            return _check_number(node.value)
        if kind is ast.BinOp and type(node.op) in _BINARY:
            left, right = self.visit(node.left), self.visit(node.right)
            if type(node.op) is ast.Pow:
                return _check_number(_power(left, right))
            return _check_number(_BINARY[type(node.op)](left, right))
        if kind is ast.UnaryOp and type(node.op) in _UNARY:
            return _check_number(_UNARY[type(node.op)](self.visit(node.operand)))
        if kind is ast.Name:
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise CalculatorError(f"unknown name {_clip(node.id)!r}; constants: pi, e")
        if kind is ast.Call:
            return self.call(node)
        op = getattr(node, "op", None)
        hint = _HINTS.get(type(op)) or _HINTS.get(kind)
        raise CalculatorError(hint or f"unsupported syntax: {kind.__name__}")

    def call(self, node):
        if type(node.func) is ast.Attribute:
            raise CalculatorError(_HINTS[ast.Attribute])
        if type(node.func) is not ast.Name or node.func.id not in _FUNCTIONS:
            what = node.func.id if type(node.func) is ast.Name else type(node.func).__name__
            raise CalculatorError(f"unknown function {_clip(what)!r}; allowed: {', '.join(_FUNCTIONS)}")
        name = node.func.id
        if node.keywords or any(type(a) is ast.Starred for a in node.args):
            raise CalculatorError(f"{name}() takes positional numbers only")
        fn, lo, hi = _FUNCTIONS[name]
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise CalculatorError(f"{name}() takes {want} argument(s), got {len(node.args)}")
        args = [self.visit(a) for a in node.args]
        try:
            return _check_number(fn(*args))
        except (ValueError, ZeroDivisionError) as exc:
            if isinstance(exc, CalculatorError):
                raise
            raise CalculatorError(f"math domain error in {name}()") from None


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "..."


def evaluate(expression: str) -> int | float:
    """Value of an arithmetic expression; ``CalculatorError`` when it is not one
    (or is out of range).  Python syntax: ``2**10``, ``7 // 2``, ``1_000``."""
    if not isinstance(expression, str):
        raise CalculatorError(f"expression must be a string, got {type(expression).__name__}")
    expr = expression.strip()
    if not expr:
        raise CalculatorError("empty expression")
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression too long ({len(expr)} chars > {MAX_EXPRESSION_CHARS})")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"syntax error: {_clip(exc.msg or 'invalid syntax', 80)}") from None
    except (ValueError, RecursionError, MemoryError):  # null bytes, absurd nesting
        raise CalculatorError("expression could not be parsed (too complex?)") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise CalculatorError(f"expression too complex ({nodes} syntax nodes > {MAX_NODES})")
    try:
        return _Evaluator().visit(tree)
    except CalculatorError:
        raise
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("result too large (overflow)") from None
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        raise CalculatorError(f"cannot evaluate: {_clip(str(exc), 80)}") from None


def format_number(x) -> str:
    """Ints as ints; floats with up to 12 significant digits, no trailing zeros."""
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    text = format(float(x), ".12g")
    return "0" if text == "-0" else text
