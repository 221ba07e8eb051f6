"""The JSON shapes of serving requests, turned into columns of raw features.

Two shapes name the features of each event: rows of objects
(``[{"MET_pt": 40.5, "Jet_pt": [50, 30]}]``) and TFaaS-style ``keys`` and ``values``.
Both become one list per feature; :meth:`FeatureBuilder.matrix
<.features.FeatureBuilder.matrix>` then checks the values themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DataError
from ._feature_columns import _describe

__all__ = ["columns_from_keys_values", "columns_from_rows"]


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
