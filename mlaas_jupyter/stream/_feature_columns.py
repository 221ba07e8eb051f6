"""One raw input column of a model, checked and converted to a NumPy or awkward array.

Serving gets columns as NumPy arrays, awkward arrays or plain Python lists (from JSON);
``_column`` gives back the arrays :class:`~.features.FeatureBuilder` evaluates and fills
(lists of numbers as ``float32``, or ``int64`` when all are integers), or a
:class:`~mlaas_jupyter.errors.DataError` naming the feature, the row and what was found
there, worded by ``_describe``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from ..errors import DataError
from .jagged import jagged_parts


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
