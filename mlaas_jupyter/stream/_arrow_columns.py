"""Arrow columns as branches: their kind, and their values as NumPy or awkward arrays.

:func:`describe_field` sorts a column of a Parquet or CSV schema into the branch kinds of
:mod:`.schema` (flat, jagged, fixed, or unsupported with a reason); ``_to_column`` turns
the values of a readable column into what a :class:`~.schema.Chunk` holds, NumPy arrays
for flat and fixed branches and awkward ``var * T`` arrays for jagged ones.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa

from .schema import BranchInfo

__all__ = ["describe_field"]


def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _dtype_name(t: pa.DataType) -> str:
    return str(np.dtype(t.to_pandas_dtype()).name)


def describe_field(field: pa.Field) -> BranchInfo:
    """The kind of an Arrow column: flat, jagged, fixed or unsupported (with a reason)."""
    t, name, typename = field.type, field.name, str(field.type)
    if _is_number(t):
        return BranchInfo(name, typename, "flat", _dtype_name(t))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if _is_number(t.value_type):
            return BranchInfo(name, typename, "jagged", _dtype_name(t.value_type))
        reason = "lists of non-numbers or nested lists"
        return BranchInfo(name, typename, "unsupported", reason=reason)
    if pa.types.is_fixed_size_list(t):
        if _is_number(t.value_type):
            return BranchInfo(name, typename, "fixed", _dtype_name(t.value_type), int(t.list_size))
        return BranchInfo(name, typename, "unsupported", reason="fixed-size lists of non-numbers")
    reasons = [
        (pa.types.is_string(t) or pa.types.is_large_string(t), "strings are not numbers"),
        (pa.types.is_struct(t), "records (structs) are not numbers"),
        (pa.types.is_dictionary(t), "categorical (dictionary) values are not numbers"),
        (pa.types.is_null(t), "the column holds no values"),
    ]
    reason = next((r for hit, r in reasons if hit), f"Arrow type {typename} is not supported")
    return BranchInfo(name, typename, "unsupported", reason=reason)


def _numbers(values: pa.Array, name: str) -> np.ndarray[Any, Any]:
    if values.null_count:
        if not pa.types.is_floating(values.type):
            raise ValueError(f"column {name!r} has {values.null_count} missing values")
        # Missing floats become NaN, which the nonfinite policy downstream already handles.
        values = values.fill_null(float("nan"))
    return np.asarray(values.to_numpy(zero_copy_only=False))


def _to_column(array: pa.ChunkedArray, info: BranchInfo) -> Any:
    values = array.combine_chunks()
    if info.kind == "flat":
        return _numbers(values, info.name)
    if info.kind == "fixed":
        if values.null_count:
            raise ValueError(f"column {info.name!r} has {values.null_count} missing arrays")
        flat = _numbers(values.flatten(), info.name)
        return flat.reshape(len(values), int(info.width or 0))
    # Not ak.from_arrow: it types every nullable Arrow field as an option (?float32),
    # while a chunk promises plain var * T. Missing lists become empty lists.
    counts = values.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    content = _numbers(values.flatten(), info.name)
    return ak.unflatten(content, np.asarray(counts, dtype=np.int64))
