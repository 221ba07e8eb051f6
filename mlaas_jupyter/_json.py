"""The one JSON encoder of every reply, event and request body.

Strict JSON for browsers and other clients: NaN and infinities become ``null``, NumPy
arrays and scalars are written as numbers (float32 at float32 precision: read back as
float32 they are the same numbers), non-string keys as strings.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["encode_json", "to_plain"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _fallback(value: Any) -> Any:
    # what orjson does not write itself: non-contiguous or object arrays, sets, paths
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_json(data: Any) -> bytes:
    """``data`` as strict JSON bytes (NaN and infinities as null)."""
    return orjson.dumps(data, default=_fallback, option=_OPTIONS)


def to_plain(data: Any) -> Any:
    """``data`` as a client reads it back from a JSON document."""
    return orjson.loads(encode_json(data))
