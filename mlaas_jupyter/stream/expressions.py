"""Safe evaluation of the expressions that define new branches and cuts.

The text is parsed with :mod:`ast` (``mode="eval"``), checked against the grammar below and
turned once into a tree of closures, so that each chunk of events costs no parsing. User
text never reaches ``eval``, ``exec`` or ``compile``.

Grammar: column names, the constants ``pi e inf nan`` (a column of the same name wins),
numbers, ``True``, ``False``; ``+ - * / // % **``, unary ``- + ~``, comparisons (``a < b < c``
means ``(a < b) and (b < c)``), ``& | ^``; ``and or not`` work elementwise
(``np.logical_and``, ...); ``a if c else b`` is the elementwise ``where(c, a, b)`` (both
sides are computed). Calls take positional arguments only: the elementwise ``sqrt log log10
log2 exp abs sin cos tan arcsin arccos arctan arctan2 sinh cosh tanh hypot minimum maximum
where isfinite isnan sign floor ceil round``, and, over each event's list of a jagged value,
``num`` (objects), ``count`` (true / non-zero objects), ``sum mean max min any all argmax
argmin`` (``mean max min argmax argmin`` of an empty list are missing, None). Jagged values
take ``x[:, i]`` (the i-th object of every event, missing when there are too few; ``i`` may
be negative), ``x[:, a:b:c]`` (integer literals) and ``x[mask]`` with a per-object mask, e.g.
``Jet_pt[abs(Jet_eta) < 2.4]``.

Anything else (attributes, lambdas, comprehensions, strings, keyword arguments, names
starting with ``_``, ...) is an :class:`~mlaas_jupyter.errors.ExpressionError` quoting the
offending part. Texts are limited to 2000 characters and 50 levels of nesting.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import awkward as ak
import numpy as np

from ..errors import ExpressionError

__all__ = ["Expression", "compile_expression", "cut_mask", "to_numpy_column"]

MAX_LENGTH = 2000
MAX_DEPTH = 50

Columns = Mapping[str, Any]
Node = Callable[[Columns], Any]
Array = np.ndarray[Any, Any]


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
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.Is: "is", ast.IsNot: "is not",
    ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip
_KINDS: dict[str, str] = {
    "Attribute": "attribute access", "Lambda": "lambda", "ListComp": "comprehension",
    "SetComp": "comprehension", "DictComp": "comprehension", "GeneratorExp": "generator",
    "JoinedStr": "f-string", "List": "list literal", "Tuple": "tuple literal",
    "Dict": "dict literal", "Set": "set literal", "NamedExpr": "assignment (:=)",
    "Starred": "starred argument", "Slice": "slice outside a subscript",
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
_FUNCTIONS = ", ".join(sorted([*_ELEMENTWISE, *_PER_EVENT]))


def _ndim(value: Any) -> int:
    return int(getattr(value, "ndim", 0))


def _jagged(value: Any, text: str, message: str) -> Any:
    """``value`` as an awkward array with a list per event, or an ExpressionError."""
    if _ndim(value) < 2:
        raise ExpressionError(text, message)
    return ak.from_numpy(value) if isinstance(value, np.ndarray) else value


def _constant(value: Any) -> Node:
    return lambda columns: value


def _suggest(name: str, known: Iterable[str]) -> str:
    lowered = {k.lower(): k for k in known}
    key = name.lower()
    close = [key] if key in lowered else difflib.get_close_matches(key, list(lowered), n=3)
    return f"; did you mean {', '.join(lowered[c] for c in close)}?" if close else ""


def _int_literal(node: ast.expr | None) -> int | None:
    """The value of an integer literal (``3``, ``-1``); raises ValueError for anything else."""
    value = None if node is None else ast.literal_eval(node)
    if value is not None and type(value) is not int:
        raise ValueError(node)
    return value


class _Compiler:
    """Checks one parsed expression and builds its closure tree."""

    def __init__(self, text: str, source: str, known: frozenset[str]) -> None:
        self.text, self.source, self.known = text, source, known
        self.names: set[str] = set()

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or type(node).__name__

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(self.text, message)

    def reject(self, what: str, node: ast.AST) -> ExpressionError:
        return self.error(f"{what} {self.segment(node)!r} is not allowed")

    def build(self, node: ast.AST, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:
            raise self.error(f"the expression is nested more than {MAX_DEPTH} levels deep")
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.reject(_KINDS.get(type(node).__name__, type(node).__name__), node)
        built: Node = method(node, depth + 1)
        return built

    def _Name(self, node: ast.Name, depth: int) -> Node:
        name = node.id
        if name.startswith("_"):
            raise self.error(f"names starting with '_' are not allowed: {name!r}")
        if name in self.known:
            self.names.add(name)
            return operator.itemgetter(name)
        if name in _CONSTANTS:
            return _constant(_CONSTANTS[name])
        if name in _ELEMENTWISE or name in _PER_EVENT:
            raise self.error(f"function {name!r} must be called, e.g. {name}(x)")
        raise self.error(f"unknown branch {name!r}{_suggest(name, self.known)}")

    def _Constant(self, node: ast.Constant, depth: int) -> Node:
        if isinstance(node.value, bool | int | float):
            return _constant(node.value)
        kinds = {str: "string", bytes: "bytes literal", complex: "complex number"}
        raise self.reject(kinds.get(type(node.value), "constant"), node)

    def _BinOp(self, node: ast.BinOp, depth: int) -> Node:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.reject(f"operator {_SYMBOLS.get(type(node.op), '?')!r} in", node)
        left, right = self.build(node.left, depth), self.build(node.right, depth)
        return lambda c: op(left(c), right(c))

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Node:
        op, operand = _UNARY[type(node.op)], self.build(node.operand, depth)
        return lambda c: op(operand(c))

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> Node:
        op = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        parts = [self.build(value, depth) for value in node.values]
        return lambda c: functools.reduce(op, (part(c) for part in parts))

    def _Compare(self, node: ast.Compare, depth: int) -> Node:
        ops = []
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise self.reject(f"operator {_SYMBOLS.get(type(op), '?')!r} in", node)
            ops.append(_COMPARE[type(op)])
        operands = [self.build(x, depth) for x in (node.left, *node.comparators)]

        def chain(c: Columns) -> Any:
            # each operand evaluated once, as Python does for a < b < c
            values = [operand(c) for operand in operands]
            tests = (op(values[i], values[i + 1]) for i, op in enumerate(ops))
            return functools.reduce(np.logical_and, tests)

        return chain

    def _IfExp(self, node: ast.IfExp, depth: int) -> Node:
        test, body = self.build(node.test, depth), self.build(node.body, depth)
        orelse = self.build(node.orelse, depth)
        return lambda c: _where(test(c), body(c), orelse(c))

    def _Call(self, node: ast.Call, depth: int) -> Node:
        if isinstance(node.func, ast.Attribute):
            raise self.reject("attribute access", node.func)
        if not isinstance(node.func, ast.Name):
            raise self.reject("calling", node.func)
        name = node.func.id
        if name not in _ELEMENTWISE and name not in _PER_EVENT:
            raise self.error(f"function {name!r} is not allowed; the functions are {_FUNCTIONS}")
        if node.keywords:
            raise self.reject("keyword argument", node.keywords[0])
        arity = _ELEMENTWISE[name][0] if name in _ELEMENTWISE else 1
        if len(node.args) != arity:
            hint = f"; for two values use {name}imum(a, b)" if name in ("max", "min") else ""
            plural = "s" if arity > 1 else ""
            message = f"{name}() takes {arity} argument{plural}, not {len(node.args)}"
            raise self.error(f"{message}: {self.segment(node)!r}{hint}")
        args = [self.build(arg, depth) for arg in node.args]
        if name in _ELEMENTWISE:
            fn = _ELEMENTWISE[name][1]
            return lambda c: fn(*[arg(c) for arg in args])
        reduce, arg, text = _PER_EVENT[name], args[0], self.text
        message = f"{name}() needs a jagged branch (a list per event), but its argument "
        message += f"{self.segment(node.args[0])!r} has one value per event"
        return lambda c: reduce(_jagged(arg(c), text, message))

    def _Subscript(self, node: ast.Subscript, depth: int) -> Node:
        value, index, text = self.build(node.value, depth), node.slice, self.text
        need = f"{self.segment(node)!r} needs a jagged value (a list per event)"
        usage = "x[:, i], x[:, a:b] and x[mask] are the allowed subscripts"
        if isinstance(index, ast.Tuple):
            first = index.elts[0] if len(index.elts) == 2 else None
            if not (isinstance(first, ast.Slice) and first.lower is first.upper is first.step):
                raise self.error(f"{usage}, not {self.segment(node)!r}")
            second = index.elts[1]
            try:
                if isinstance(second, ast.Slice):
                    bounds = (second.lower, second.upper, second.step)
                    key = slice(*(_int_literal(bound) for bound in bounds))
                    return lambda c: _jagged(value(c), text, need)[:, key]
                i = _int_literal(second)
            except ValueError:
                message = f"indices must be integer literals: {self.segment(node)!r}"
                raise self.error(message) from None
            if i is None:
                raise self.error(f"{usage}, not {self.segment(node)!r}")
            # a one-object slice is empty for short events, where x[:, i] would raise
            pick = slice(i, i + 1 or None)
            return lambda c: ak.firsts(_jagged(value(c), text, need)[:, pick], axis=1)
        literal = isinstance(index, ast.UnaryOp) and isinstance(index.operand, ast.Constant)
        if literal or isinstance(index, ast.Slice | ast.Constant):
            raise self.error(f"{usage} (x[i] would pick events), not {self.segment(node)!r}")
        mask = self.build(index, depth)
        per_object = f"the index of {self.segment(node)!r} must be per object, e.g. Jet_eta > 2;"
        per_object += " events are selected with a cut"

        def masked(c: Columns) -> Any:
            return _jagged(value(c), text, need)[_jagged(mask(c), text, per_object)]

        return masked


class Expression:
    """A checked expression (``text``) that reads the columns ``names``; compiled once."""

    __slots__ = ("_fn", "names", "text")

    def __init__(self, text: str, names: frozenset[str], fn: Node) -> None:
        self.text, self.names, self._fn = text, names, fn

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # closures do not pickle; dask workers recompile from the text instead
        return (compile_expression, (self.text, sorted(self.names)))

    def evaluate(self, columns: Columns) -> Array | ak.Array:
        """Evaluate on ``columns`` (name -> 1-D NumPy array or awkward array).

        Results that do not depend on any column are broadcast to one value per event.
        Flat NumPy inputs give NumPy results; jagged ones give awkward arrays, where
        missing values (``x[:, 5]``, ``max`` of an empty list) are None.

        Raises
        ------
        ExpressionError
            When a column is missing or NumPy/awkward cannot compute the result.
        """
        try:
            with np.errstate(all="ignore"):
                result = self._fn(columns)
        except ExpressionError:
            raise
        except KeyError as exc:
            missing = f"branch {exc.args[0]!r} is missing from the columns given"
            raise ExpressionError(self.text, missing) from None
        except Exception as exc:
            detail = str(exc).split("\n\n")[0].strip() or type(exc).__name__
            raise ExpressionError(self.text, f"cannot evaluate: {detail}") from exc
        if isinstance(result, np.ndarray | ak.Array):
            return result
        sizes = [len(columns[name]) for name in self.names] or [len(v) for v in columns.values()]
        if not sizes:
            raise ExpressionError(self.text, "no columns given: the number of events is unknown")
        return np.full(sizes[0], result)


def compile_expression(text: str, known: Iterable[str]) -> Expression:
    """Parse and check ``text`` once.

    Parameters
    ----------
    text
        The expression, e.g. ``"sqrt(Muon_Px**2 + Muon_Py**2)"`` or ``"NMuon >= 2"``.
    known
        The column names that exist: branches and the new branches defined before.

    Raises
    ------
    ExpressionError
        On a syntax error, a construct outside the grammar or an unknown name.
    """
    source = text.strip()
    if not source:
        raise ExpressionError(text, "the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(text[:60] + "...", f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        line, column = exc.lineno or 1, exc.offset or 0
        where = f"line {line}, column {column}" if line > 1 else f"column {column}"
        near = source.splitlines()[line - 1][column - 1 :][:20] if column > 0 else ""
        place = f"{where} near {near!r}" if near else "the end"
        raise ExpressionError(text, f"invalid syntax at {place}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(text, f"cannot parse: {exc}") from None
    compiler = _Compiler(text, source, frozenset(known))
    fn = compiler.build(tree.body)
    return Expression(text, frozenset(compiler.names), fn)


def cut_mask(value: Array | ak.Array, expression: Expression) -> Array:
    """One bool per event from an evaluated cut: missing is False, non-zero is True.

    Raises
    ------
    ExpressionError
        When the cut gives one value per object (it needs ``any(...)`` or ``all(...)``).
    """
    text = expression.text
    if _ndim(value) >= 2:
        message = "the cut gives one value per object, not one per event; wrap it in any(...)"
        raise ExpressionError(text, f"{message} or all(...), e.g. 'any({text})'")
    if _ndim(value) == 0:
        raise ExpressionError(text, "the cut gives a single value, not one per event")
    if isinstance(value, np.ndarray):
        return value if value.dtype == np.bool_ else value != 0
    try:
        return np.asarray(ak.to_numpy(ak.fill_none(value != 0, False)), dtype=bool)
    except (ValueError, TypeError) as exc:
        raise ExpressionError(text, f"the cut does not give true/false values: {exc}") from exc


def to_numpy_column(
    value: Array | ak.Array, expression: Expression, fill: float = 0.0
) -> Array | ak.Array:
    """An evaluated new branch as float32: a 1-D NumPy array, or awkward ``var * float32``.

    Missing values (None) become ``fill``, booleans 0/1; NaN and inf are kept. A jagged
    result comes back as awkward lists for the caller to pad; a missing list is empty.

    Raises
    ------
    ExpressionError
        For a single value, lists of lists, or values that are not numbers.
    """
    ndim, text = _ndim(value), expression.text
    if ndim == 0:
        raise ExpressionError(text, "the new branch is a single value, not one per event")
    if ndim > 2:
        raise ExpressionError(text, "the new branch has lists of lists; reduce one level")
    if isinstance(value, np.ndarray) and ndim == 1:
        return value.astype(np.float32, copy=False)
    try:
        floats = ak.values_astype(value, np.float32)
        if ndim == 1:
            return np.asarray(ak.to_numpy(ak.fill_none(floats, fill)), dtype=np.float32)
        # fill_none promotes to float64, hence the final cast
        lists = ak.fill_none(ak.fill_none(floats, fill, axis=-1), [], axis=0)
        return ak.from_regular(ak.values_astype(lists, np.float32), axis=1)
    except (ValueError, TypeError) as exc:
        raise ExpressionError(text, f"the new branch is not numeric: {exc}") from exc
