"""Request bodies of ``predict``: JSON, or the columns form as an Arrow IPC stream.

JSON (``application/json``, the default) is parsed by ``orjson`` when it is installed
(several times faster than :func:`json.loads` on the large bodies of batch requests),
else by :func:`json.loads`. Whatever ``orjson`` refuses (``NaN`` literals, integers
beyond 64 bits, malformed JSON) goes to :func:`json.loads`, so what is accepted and
the error messages are those of the standard library.

Large bodies of the columns form whose columns are all flat lists of numbers (what
batch clients send) take a faster road first: ``simdjson`` (pysimdjson) validates the
whole document and copies each column straight into a buffer of doubles, with no
Python float per number (about 5 ms for 10k events of 28 features, against about 30 ms
for ``orjson`` plus the conversion). Anything else on that road (another shape, a
jagged column, a string or ``null`` among the numbers, a number out of range, bad
JSON) goes the ordinary way, which accepts or rejects it with the usual messages.
Without either fast parser, such bodies are read by Arrow's JSON reader.

``application/vnd.apache.arrow.stream`` bodies carry the columns form in binary: one
column per raw feature (numbers, or lists of numbers for jagged features), no nulls.
Parsing them costs next to nothing, which is what batch clients should send::

    import pyarrow as pa
    sink = pa.BufferOutputStream()
    batch = pa.record_batch({"MET_pt": met_pt, "nJet": n_jet})
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    requests.post(url, data=sink.getvalue().to_pybytes(),
                  headers={"Content-Type": ARROW_STREAM, "Authorization": f"token {t}"})

Replies are JSON (:func:`mlaas_jupyter._json.encode_json`: float32 at its precision),
or Arrow (columns ``score``, or one per class) when the request's ``Accept`` header
names :data:`ARROW_STREAM`.
"""

from __future__ import annotations

import importlib
import json
import threading
from typing import Any

import numpy as np

from ..errors import DataError

orjson: Any  # optional: a fast JSON parser (see the module's docstring)
try:
    orjson = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - where orjson is not installed
    orjson = None
simdjson: Any  # optional: the fast road of large columns-form bodies
try:
    simdjson = importlib.import_module("simdjson")
except ImportError:  # pragma: no cover - where pysimdjson is not installed
    simdjson = None

__all__ = [
    "ARROW_STREAM",
    "FAST_JSON_BYTES",
    "HAVE_ORJSON",
    "decode",
    "encode_arrow",
    "wants_arrow",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: bodies from this size on are parsed in a worker thread (and, without orjson, by Arrow)
FAST_JSON_BYTES = 256 * 1024
HAVE_ORJSON = orjson is not None


def _media(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def wants_arrow(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for an Arrow IPC stream."""
    return any(_media(part) == ARROW_STREAM for part in (accept or "").split(","))


def decode(body: bytes, content_type: str | None = None) -> Any:
    """The payload of a request body (JSON, or Arrow as ``{"columns": {...}}``).

    Raises
    ------
    DataError
        For an empty body, malformed JSON or a bad Arrow stream, saying what is wrong.
    """
    if not body:
        raise DataError("the request has no body; send a JSON object")
    if _media(content_type) == ARROW_STREAM:
        return {"columns": _arrow_columns(body)}
    if simdjson is not None and len(body) >= FAST_JSON_BYTES:
        payload = _simd_json_columns(body)
        if payload is not None:
            return payload
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # json.loads accepts NaN and big integers, and words its errors well
    elif len(body) >= FAST_JSON_BYTES:
        payload = _fast_json_columns(body)
        if payload is not None:
            return payload
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:
        raise DataError(f"malformed JSON body: {err}") from None


def _arrow_columns(body: bytes) -> dict[str, Any]:
    import awkward as ak
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"malformed Arrow IPC stream: {err}") from None
    columns: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if name in columns:
            raise DataError(f"feature {name!r} appears twice in the Arrow stream")
        if column.null_count:
            raise DataError(f"feature {name!r}: null values in the Arrow column")
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            columns[name] = column.to_numpy()
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            columns[name] = ak.from_arrow(column.combine_chunks(), highlevel=True)
        else:
            raise DataError(f"feature {name!r}: Arrow type {kind} is not numbers or lists")
    return columns


_PARSERS = threading.local()  # a simdjson parser holds one document: one per thread


def _simd_json_columns(body: bytes) -> dict[str, Any] | None:
    """``{"columns": {name: float64 ndarray}}`` of a columns-form body whose columns are
    all flat lists of numbers; None for anything else (then the ordinary road reads it).
    """
    start = body[:100].lstrip()
    if not start.startswith(b"{") or b'"columns"' not in start:
        return None
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = simdjson.Parser()
    try:
        document = parser.parse(body)
    except (ValueError, RuntimeError):
        return None
    columns: dict[str, Any] = {}
    try:
        if not isinstance(document, simdjson.Object) or list(document.keys()) != ["columns"]:
            return None
        table = document["columns"]
        if not isinstance(table, simdjson.Object):
            return None
        names = list(table.keys())
        # as_buffer flattens nested lists: one "[" per column proves none is nested
        # (counted by NumPy: 5x faster than bytes.count)
        if np.count_nonzero(np.frombuffer(body, np.uint8) == ord("[")) != len(names):
            return None
        for name in names:
            column = table[name]
            if not isinstance(column, simdjson.Array):
                return None
            buffer = column.as_buffer(of_type="d")
            columns[name] = np.frombuffer(buffer, dtype=np.float64)
            del column
        del table
    except (TypeError, ValueError, RuntimeError):  # a value that is not a number
        return None
    finally:
        del document  # the parser can only take the next body once no proxy is left
    return {"columns": columns}


def _fast_json_columns(body: bytes) -> dict[str, Any] | None:
    """``{"columns": {name: ndarray}}`` of a large columns-form body with flat numeric
    columns, read by Arrow; None for anything else (then json.loads reads it)."""
    start = body[:100].lstrip()
    if not start.startswith(b"{") or b'"columns"' not in start:
        return None
    import pyarrow as pa
    import pyarrow.json as pajson

    options = pajson.ReadOptions(use_threads=False, block_size=len(body) + 1)
    try:
        table = pajson.read_json(pa.BufferReader(body), read_options=options)
    except (pa.ArrowException, OSError, ValueError):
        return None
    if table.num_rows != 1 or table.column_names != ["columns"]:
        return None
    struct = table.column("columns").combine_chunks()
    if not pa.types.is_struct(struct.type) or struct.null_count:
        return None
    columns: dict[str, Any] = {}
    for index in range(struct.type.num_fields):
        child = struct.field(index)
        if not pa.types.is_list(child.type) or child.null_count:
            return None
        values = child.flatten()
        kind = values.type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)) or values.null_count:
            return None
        columns[struct.type.field(index).name] = values.to_numpy()
    return {"columns": columns}


def encode_arrow(scores: np.ndarray[Any, Any], classes: list[str], meta: dict[str, Any]) -> bytes:
    """An Arrow IPC stream of ``scores``: column ``score``, or one column per class;
    ``meta`` (model, version, task) goes into the schema metadata."""
    import pyarrow as pa

    if scores.ndim == 2:
        names = classes if len(set(classes)) == scores.shape[1] else []
        names = names or [f"score_{i}" for i in range(scores.shape[1])]
        data = {name: scores[:, i] for i, name in enumerate(names)}
    else:
        data = {"score": scores}
    batch = pa.record_batch(data)
    schema = batch.schema.with_metadata({k: json.dumps(v) for k, v in meta.items()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch.replace_schema_metadata(schema.metadata))
    return bytes(sink.getvalue().to_pybytes())
