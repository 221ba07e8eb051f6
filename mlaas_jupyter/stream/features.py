"""`FeatureBuilder`: raw events to model matrices, exactly as the training pipeline built them.

Serving receives raw features (columns read from a file, JSON rows, TFaaS-style
``{"keys": [...], "values": [[...], ...]}``) and must turn them into the same
``(n, width)`` float32 vectors the model was trained on: new branches evaluated with
the same expressions, jagged branches sorted, clipped and padded, the same masks and
normalisation constants. The builder does that from a bundle manifest, on every event
(no cuts: every event gets a score).

Numbers given as Python values (lists, JSON) become ``float32`` when any of them is a
float (the precision of ROOT ``Float_t`` branches and of the model matrix) and
``int64`` when all are integers.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from ..errors import DataError
from .expressions import Expression, compile_expression, to_numpy_column
from .jagged import JaggedParts, jagged_parts
from .layout import FeatureLayout

__all__ = ["FeatureBuilder", "columns_from_keys_values", "columns_from_rows"]

KINDS = ("flat", "jagged", "fixed")


class FeatureBuilder:
    """Builds model matrices from raw input columns.

    Parameters
    ----------
    layout
        The feature layout of the model (columns, normalisation, jagged lengths).
    new_branches
        ``(name, expression)`` pairs in definition order, as in the dataset spec.
        Only those the layout needs (directly or through other new branches) are
        compiled and evaluated.
    inputs
        Raw branches an event must provide, with their kinds (``flat``, ``jagged``
        or ``fixed``).

    Raises
    ------
    DataError
        When an input kind is unknown or the layout needs a name that is neither an
        input nor a new branch.
    ExpressionError
        When a needed new-branch expression reads an unknown name.
    """

    def __init__(
        self,
        layout: FeatureLayout,
        new_branches: Sequence[tuple[str, str]],
        inputs: Mapping[str, str],
    ) -> None:
        self.layout = layout
        self.inputs: dict[str, str] = dict(inputs)
        bad = {name: kind for name, kind in self.inputs.items() if kind not in KINDS}
        if bad:
            raise DataError(f"unknown input kinds {bad}; allowed kinds are {', '.join(KINDS)}")
        defined = [str(name) for name, _ in new_branches]
        unknown = [n for n in layout.inputs if n not in self.inputs and n not in defined]
        if unknown:
            raise DataError(
                f"the layout needs {', '.join(unknown)}, which are neither inputs nor new branches"
            )
        needed = set(layout.inputs)
        chosen: list[tuple[str, Expression]] = []
        for index in reversed(range(len(new_branches))):
            name, text = new_branches[index]
            if name not in needed:
                continue
            expr = compile_expression(str(text), [*self.inputs, *defined[:index]])
            needed |= set(expr.names)
            chosen.append((str(name), expr))
        self.new_branches: list[tuple[str, Expression]] = chosen[::-1]
        self._kinds = {f.name: f.kind for f in layout.features}
        self._widths = {f.name: f.width for f in layout.features if f.kind == "fixed"}

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> FeatureBuilder:
        """The builder described by a bundle manifest (``layout``, ``new_branches``, ``inputs``)."""
        layout = FeatureLayout.from_dict(manifest["layout"])
        new_branches = [(str(name), str(text)) for name, text in manifest.get("new_branches", [])]
        inputs = {str(name): str(kind) for name, kind in dict(manifest["inputs"]).items()}
        return cls(layout, new_branches, inputs)

    @property
    def width(self) -> int:
        return self.layout.width

    def matrix(
        self, columns: Mapping[str, Any], strict: bool = True
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The ``(n, width)`` float32 matrix of the events in ``columns``.

        Parameters
        ----------
        columns
            One column per raw input: NumPy arrays, awkward arrays or lists (jagged
            inputs as lists of lists, fixed-size inputs as lists of equal-length lists).
        strict
            Reject names that are not inputs of the model (serving must not silently
            ignore features); with ``False`` they are ignored.

        Raises
        ------
        DataError
            Missing or (with ``strict``) unknown features, values of the wrong type
            (naming the feature and the row), or columns of different lengths.
        """
        missing = [name for name in self.inputs if name not in columns]
        if missing:
            raise DataError(
                f"missing input features: {', '.join(missing)} "
                f"(the model reads {', '.join(self.inputs)})"
            )
        if strict:
            extra = [str(name) for name in columns if name not in self.inputs]
            if extra:
                raise DataError(
                    f"unknown features: {', '.join(extra)} "
                    f"(the model reads {', '.join(self.inputs)})"
                )
        converted = {
            name: _column(name, kind, columns[name], self._widths.get(name))
            for name, kind in self.inputs.items()
        }
        lengths = {name: len(value) for name, value in converted.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"input columns have different lengths: {lengths}")
        n = next(iter(lengths.values()), 0)
        return self._fill(converted, n)

    def _fill(self, columns: dict[str, Any], n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        for name, expr in self.new_branches:
            value = expr.evaluate(columns)
            if isinstance(value, ak.Array):
                if value.ndim == 1:  # as the training pipeline does: flat -> NumPy, missing -> 0
                    value = np.asarray(to_numpy_column(value, expr))
            elif np.ndim(value) == 0:
                value = np.full(n, value)
            columns[name] = value
        flat: dict[str, np.ndarray[Any, Any]] = {}
        jagged: dict[str, JaggedParts] = {}
        for name in self.layout.inputs:
            value = columns[name]
            kind = self._kinds.get(name, self.inputs.get(name))
            if kind == "jagged" or (isinstance(value, ak.Array) and value.ndim > 1):
                jagged[name] = jagged_parts(value, name)
            else:
                flat[name] = np.asarray(value)
        return self.layout.fill(flat, jagged, np.arange(n))


# -- conversion of one column -------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real | np.bool_)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"a string {value[:40]!r}"
    if isinstance(value, Sequence | np.ndarray | ak.Array):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    if _is_number(value):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def _where(name: str, row: int) -> str:
    return f"feature {name!r}, row {row}"


def _check_list(name: str, row: int, item: Any, width: int | None = None) -> None:
    """Raise unless ``item`` is a list of numbers (of ``width`` numbers when given)."""
    if not isinstance(item, Sequence | np.ndarray) or isinstance(item, str):
        size = f"{width} " if width is not None else ""
        raise DataError(
            f"{_where(name, row)}: expected a list of {size}numbers, got {_describe(item)}"
        )
    if width is not None and len(item) != width:
        raise DataError(f"{_where(name, row)}: expected {width} numbers, got {len(item)}")
    for inner in item:
        if not _is_number(inner):
            raise DataError(
                f"{_where(name, row)}: expected numbers, got {_describe(inner)} in the list"
            )


def _numbers(values: list[Any]) -> np.ndarray[Any, Any]:
    array = np.asarray(values)
    if array.dtype.kind == "f" or (array.size == 0 and array.dtype.kind not in "biu"):
        return array.astype(np.float32)
    return array.astype(np.int64) if array.dtype.kind in "iu" else array


def _rows(name: str, value: Any) -> list[Any]:
    """Python rows of a column given as a list, an array or an awkward array."""
    if isinstance(value, ak.Array):
        return list(value.to_list())
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            raise DataError(
                f"feature {name!r}: expected one value per event, got a single {value.dtype} number"
            )
        return list(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise DataError(
        f"feature {name!r}: expected one value per event (a list or an array), "
        f"got {_describe(value)}"
    )


def _column(name: str, kind: str, value: Any, width: int | None) -> Any:
    if kind == "jagged":
        return _jagged_column(name, value)
    return _flat_column(name, value, width if kind == "fixed" else None, kind == "fixed")


def _flat_column(name: str, value: Any, width: int | None, fixed: bool) -> np.ndarray[Any, Any]:
    ndim = 2 if fixed else 1
    if (
        isinstance(value, np.ndarray)
        and value.dtype.kind in "biuf"
        and value.ndim == ndim
        and (not fixed or width is None or value.shape[1:] == (width,))
    ):
        return value
    if isinstance(value, ak.Array) and value.ndim == ndim:
        try:
            array = np.asarray(ak.to_numpy(value, allow_missing=False))
        except (ValueError, TypeError):
            array = None
        if array is not None and array.dtype.kind in "biuf":
            return _flat_column(name, array, width, fixed)
    rows = _rows(name, value)
    for i, item in enumerate(rows):
        if fixed:
            _check_list(name, i, item, width)
        elif not _is_number(item):
            raise DataError(f"{_where(name, i)}: expected a number, got {_describe(item)}")
    array = _numbers(rows)
    if fixed and array.ndim != 2:
        raise DataError(f"feature {name!r}: every row must hold the same number of values")
    return array


def _jagged_column(name: str, value: Any) -> ak.Array:
    if isinstance(value, ak.Array) and value.ndim == 2:
        try:
            jagged_parts(value, name)
            return value
        except DataError:
            pass  # found below, with the row
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "biuf":
        return ak.from_regular(ak.Array(value))
    rows = _rows(name, value)
    counts = np.zeros(len(rows), dtype=np.int64)
    content: list[Any] = []
    for i, item in enumerate(rows):
        _check_list(name, i, item)
        counts[i] = len(item)
        content.extend(item)
    return ak.unflatten(_numbers(content), counts)


# -- JSON shapes ------------------------------------------------------------------
def columns_from_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Columns from rows of named raw features, e.g. ``[{"MET_pt": 40.5, "Jet_pt": [50, 30]}]``.

    Raises
    ------
    DataError
        When ``rows`` is not a list of objects, or a row lacks a feature other rows have.
    """
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Sequence):
        raise DataError(
            f"expected a list of rows (objects of named features), got {_describe(rows)}"
        )
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(f"row {i}: expected an object of named features, got {_describe(row)}")
        names.update(dict.fromkeys(str(key) for key in row))
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        lacking = [name for name in names if name not in row]
        if lacking:
            raise DataError(
                f"row {i}: missing features {', '.join(lacking)} (other rows have them)"
            )
        for name in names:
            columns[name].append(row[name])
    return columns


def columns_from_keys_values(
    keys: Sequence[str], values: Sequence[Sequence[Any]]
) -> dict[str, list[Any]]:
    """Columns from TFaaS-style input: ``keys`` names the features, each of ``values`` is a row.

    Raises
    ------
    DataError
        When ``keys`` is not a list of unique names or a row has the wrong number of values.
    """
    if (
        isinstance(keys, str | bytes)
        or not isinstance(keys, Sequence)
        or not all(isinstance(k, str) for k in keys)
    ):
        raise DataError(f"'keys' must be a list of feature names, got {_describe(keys)}")
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if list(keys).count(k) > 1})
        raise DataError(f"'keys' names features more than once: {', '.join(twice)}")
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence):
        raise DataError(f"'values' must be a list of rows, got {_describe(values)}")
    columns: dict[str, list[Any]] = {key: [] for key in keys}
    for i, row in enumerate(values):
        if isinstance(row, str | bytes | Mapping) or not isinstance(row, Sequence | np.ndarray):
            raise DataError(
                f"values row {i}: expected a list of {len(keys)} values, got {_describe(row)}"
            )
        if len(row) != len(keys):
            raise DataError(
                f"values row {i}: expected {len(keys)} values (one per key), got {len(row)}"
            )
        for key, item in zip(keys, row, strict=True):
            columns[key].append(item)
    return columns
