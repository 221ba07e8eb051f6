"""Checking a parsed expression against the grammar and building its closure tree.

:class:`_Compiler` walks the ``ast`` of one expression: each allowed node type has a
method that checks it and returns a closure over the columns; any other node type, and
any operator or function outside the tables of :mod:`._expr_functions`, is an
:class:`~mlaas_jupyter.errors.ExpressionError` quoting the offending part. Parsing, the
length limit and evaluation are left to :mod:`.expressions`.
"""

from __future__ import annotations

import ast
import difflib
import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import awkward as ak
import numpy as np

from ..errors import ExpressionError
from ._expr_functions import (
    _BINARY,
    _COMPARE,
    _CONSTANTS,
    _ELEMENTWISE,
    _FUNCTIONS,
    _PER_EVENT,
    _UNARY,
    _jagged,
    _where,
)
from ._kinematics import KINEMATICS, KinematicsError

__all__ = ["MAX_DEPTH", "Columns", "Node"]

MAX_DEPTH = 50

Columns = Mapping[str, Any]
Node = Callable[[Columns], Any]

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
        if name in KINEMATICS:
            example = f"{name}({', '.join(KINEMATICS[name].params)})"
            message = f"{name!r} is a function and must be called, e.g. {example}"
            raise self.error(f"{message}; no branch is named {name!r}{_suggest(name, self.known)}")
        if name in _ELEMENTWISE or name in _PER_EVENT:
            raise self.error(f"function {name!r} must be called, e.g. {name}(x)")
        raise self.error(f"unknown branch {name!r}{_suggest(name, self.known)}")

    def _Attribute(self, node: ast.Attribute, depth: int) -> Node:
        # RNTuple fields of a record are branches named with dots (Jet.pt): a dotted
        # chain of names is one of those names, never an attribute of a Python object
        parts: list[str] = [node.attr]
        value: ast.expr = node.value
        while isinstance(value, ast.Attribute):
            parts.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name):
            name = ".".join([value.id, *reversed(parts)])
            if name in self.known:
                self.names.add(name)
                return operator.itemgetter(name)
            if any(k.startswith(f"{value.id}.") for k in self.known):
                raise self.error(f"unknown branch {name!r}{_suggest(name, self.known)}")
        raise self.reject("attribute access", node)

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
        if name in KINEMATICS:
            # a branch of the same name (pt, mass) stays reachable as a plain name
            return self._kinematic(name, node, depth)
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

    def _kinematic(self, name: str, node: ast.Call, depth: int) -> Node:
        """A call of a kinematic function: positional arguments, and ``n=`` for inv_mass."""
        kinematic, call = KINEMATICS[name], self.segment(node)
        usage, positional, count = kinematic.usage(name), list(node.args), None
        for keyword in node.keywords:
            if keyword.arg != "n" or not kinematic.takes_n:
                what = f"keyword argument {self.segment(keyword)!r} is not allowed"
                raise self.error(f"{usage}: {what} in {call!r}")
            count = keyword.value
        if kinematic.takes_n and count is None and len(positional) == len(kinematic.params) + 1:
            count = positional.pop()
        if len(positional) != len(kinematic.params):
            given = f"{len(positional)} argument{'s' if len(positional) != 1 else ''}"
            raise self.error(f"{usage}: {call!r} has {given}")
        options: dict[str, int] = {}
        if count is not None:
            try:
                n = _int_literal(count)
            except (ValueError, TypeError):
                n = None
            if n is None or n < 1:
                wrong = f"n must be an integer literal >= 1, e.g. n=2, not {self.segment(count)!r}"
                raise self.error(f"{usage}: {wrong} in {call!r}")
            options["n"] = n
        args, fn, text = [self.build(arg, depth) for arg in positional], kinematic.fn, self.text

        def compute(c: Columns) -> Any:
            values = [arg(c) for arg in args]
            try:
                return fn(*values, **options)
            except KinematicsError as exc:
                raise ExpressionError(text, f"{exc}: {call!r}") from None

        return compute

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
