"""The whitelist of the expression grammar: its operators, constants and functions.

The compiler in :mod:`._expr_compiler` maps operator nodes, constant names and called
names through these tables and nothing else, so they are exactly what an expression can
run: NumPy ufuncs elementwise, awkward reductions over each event's list, the kinematic
functions of :mod:`._kinematics` (computed by ``vector``), and the helpers (``_where``,
``_jagged``) that let both take flat NumPy and jagged awkward values.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import awkward as ak
import numpy as np

from ..errors import ExpressionError
from ._kinematics import KINEMATICS


def _power(base: Any, exponent: Any) -> Any:
    # Python ints are exact: 9 ** 9 ** 9 would run for minutes, as a float it overflows
    if isinstance(base, int) and isinstance(exponent, int):
        return float(base) ** exponent
    return base**exponent


_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan}
_BINARY: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: _power, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}  # fmt: skip
_UNARY: dict[type[ast.AST], Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert,
    ast.Not: np.logical_not,
}  # fmt: skip
_COMPARE: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}  # fmt: skip


def _where(condition: Any, then: Any, otherwise: Any) -> Any:
    # np.where does not dispatch to awkward, so any awkward operand needs ak.where
    if any(isinstance(v, ak.Array) for v in (condition, then, otherwise)):
        return ak.where(condition, then, otherwise)
    return np.where(condition, then, otherwise)


_UNARY_FUNCS = "sqrt log log10 log2 exp sin cos tan arcsin arccos arctan sinh cosh tanh "
_UNARY_FUNCS += "isfinite isnan sign floor ceil"
_ELEMENTWISE: dict[str, tuple[int, Callable[..., Any]]] = {
    **{name: (1, getattr(np, name)) for name in _UNARY_FUNCS.split()},
    **{name: (2, getattr(np, name)) for name in ("arctan2", "hypot", "minimum", "maximum")},
    # ufuncs only (rint, absolute): they dispatch to awkward, np.round does not
    "abs": (1, np.absolute), "round": (1, np.rint), "where": (3, _where),
}  # fmt: skip
_PER_EVENT: dict[str, Callable[[Any], Any]] = {
    "num": functools.partial(ak.num, axis=1),
    "count": functools.partial(ak.count_nonzero, axis=-1),
    **{
        name: functools.partial(getattr(ak, name), axis=-1)
        for name in ("sum", "max", "min", "any", "all", "argmax", "argmin")
    },
    # ak.mean gives NaN for an empty list; None (missing) like max and min instead
    "mean": functools.partial(ak.mean, axis=-1, mask_identity=True),
}
_FUNCTIONS = ", ".join(sorted([*_ELEMENTWISE, *_PER_EVENT, *KINEMATICS]))


def _ndim(value: Any) -> int:
    return int(getattr(value, "ndim", 0))


def _jagged(value: Any, text: str, message: str) -> Any:
    """``value`` as an awkward array with a list per event, or an ExpressionError."""
    if _ndim(value) < 2:
        raise ExpressionError(text, message)
    return ak.from_numpy(value) if isinstance(value, np.ndarray) else value
