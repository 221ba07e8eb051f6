"""Safe evaluation of the expressions that define new branches and cuts.

The text is parsed with :mod:`ast` (``mode="eval"``), checked against the grammar below and
turned once into a tree of closures, so that each chunk of events costs no parsing. User
text never reaches ``eval``, ``exec`` or ``compile``.

Grammar: column names, the constants ``pi e inf nan`` (a column of the same name wins),
numbers, ``True``, ``False``; ``+ - * / // % **``, unary ``- + ~``, comparisons (``a < b < c``
means ``(a < b) and (b < c)``), ``& | ^``; ``and or not`` work elementwise
(``np.logical_and``, ...); ``a if c else b`` is the elementwise ``where(c, a, b)`` (both
sides are computed). Calls take positional arguments: the elementwise ``sqrt log log10
log2 exp abs sin cos tan arcsin arccos arctan arctan2 sinh cosh tanh hypot minimum maximum
where isfinite isnan sign floor ceil round``, and, over each event's list of a jagged value,
``num`` (objects), ``count`` (true / non-zero objects), ``sum mean max min any all argmax
argmin`` (``mean max min argmax argmin`` of an empty list are missing, None). Jagged values
take ``x[:, i]`` (the i-th object of every event, missing when there are too few; ``i`` may
be negative), ``x[:, a:b:c]`` (integer literals) and ``x[mask]`` with a per-object mask, e.g.
``Jet_pt[abs(Jet_eta) < 2.4]``.

Kinematics (:mod:`._kinematics`, computed by ``vector``): ``delta_phi(phi1, phi2)`` (in
[-pi, pi)), ``delta_r(eta1, phi1, eta2, phi2)``, ``px(pt, phi) py(pt, phi) pz(pt, eta)
energy(pt, eta, phi, mass)`` and back ``pt(px, py) eta(px, py, pz) phi(px, py) mass(px, py,
pz, energy)``, all elementwise; ``inv_mass(pt, eta, phi, mass, n=2)``, the mass of the sum of
each event's first ``n`` objects (all without ``n``; missing when the event has fewer than
``n``, or none); ``min_delta_r(eta1, phi1, eta2, phi2)``, for each object of collection 1
the delta R to the nearest object of collection 2 (inf when there is none). A call
``pt(...)`` is the function, a plain ``pt`` the branch.

Anything else (attributes, lambdas, comprehensions, strings, keyword arguments other than
``inv_mass``'s integer ``n=``, names starting with ``_``, ...) is an
:class:`~mlaas_jupyter.errors.ExpressionError` quoting the offending part. Texts are limited
to 2000 characters and 50 levels of nesting.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

import awkward as ak
import numpy as np

from ..errors import ExpressionError
from ._expr_compiler import MAX_DEPTH as MAX_DEPTH  # enforced by the compiler; re-exported
from ._expr_compiler import Columns, Node, _Compiler
from ._expr_functions import _ndim

__all__ = ["Expression", "compile_expression", "cut_mask", "to_numpy_column"]

MAX_LENGTH = 2000

Array = np.ndarray[Any, Any]


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
