"""Parquet and CSV files as trees, read with pyarrow through the :class:`TreeSource` protocol.

A table is a tree named ``"table"``; its columns are branches. Numbers and booleans are
``flat``, lists of numbers ``jagged``, fixed-size lists of numbers ``fixed``; anything
else is listed as ``unsupported`` with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import SourceError
from .schema import BranchInfo, Chunk, TreeInfo, TreeSource

__all__ = ["CsvSource", "ParquetSource", "open_tabular", "parse_size"]

_SAMPLE_ROWS = 1024
_FORMATS = {"parquet": "Parquet", "csv": "CSV"}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kmgt]i?b|b)?\s*$", re.IGNORECASE)
# Decimal and binary prefixes, as uproot reads them, so "32 MB" means the same for every format.
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text: str) -> int:
    """Bytes in a size such as ``"32 MB"``, ``"512 KiB"`` or ``"1000"``.

    Raises
    ------
    ValueError
        When ``text`` is not a number followed by an optional unit.
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"expected a size like '32 MB' or '512 KiB', got {text!r}")
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _UNITS[unit])


def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _dtype_name(t: pa.DataType) -> str:
    return str(np.dtype(t.to_pandas_dtype()).name)


def _cause(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


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


class _TableSource:
    """What Parquet and CSV share: kinds, step sizing and chunking of record batches."""

    name = "table"
    _format = "table"

    def __init__(self, path: str, schema: pa.Schema) -> None:
        self.path = path
        self._branches = {f.name: describe_field(f) for f in schema}
        self._bytes_per_row: dict[tuple[str, ...], float] = {}

    @property
    def entries(self) -> int:
        raise NotImplementedError

    @property
    def branches(self) -> Mapping[str, BranchInfo]:
        return self._branches

    def _batches(self, columns: Sequence[str], start: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Record batches of ``columns``, each with its first row, from a row ``<= start``."""
        raise NotImplementedError

    def _check_columns(self, columns: Sequence[str]) -> None:
        for column in columns:
            info = self._branches.get(column)
            if info is None:
                known = ", ".join(self._branches)
                raise SourceError(self.path, f"no column {column!r}; columns: {known}")
            if info.kind == "unsupported":
                raise SourceError(self.path, f"column {column!r} cannot be read: {info.reason}")

    def entries_per_step(self, step_size: int | str, columns: Sequence[str]) -> int:
        if isinstance(step_size, int):
            return max(1, step_size)
        try:
            size = parse_size(step_size)
        except ValueError as err:
            raise SourceError(self.path, f"cannot size steps of {step_size!r}: {err}") from err
        key = tuple(columns)
        if key not in self._bytes_per_row:
            self._check_columns(columns)
            rows, nbytes = 0, 0
            for _, batch in self._guarded(columns, 0, _SAMPLE_ROWS):
                rows, nbytes = rows + batch.num_rows, nbytes + batch.nbytes
                if rows >= _SAMPLE_ROWS:
                    break
            self._bytes_per_row[key] = nbytes / rows if rows else 0.0
        return max(1, int(size // max(self._bytes_per_row[key], 1.0)))

    def _guarded(
        self, columns: Sequence[str], start: int, stop: int
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        """:meth:`_batches`, turning pyarrow's errors into ones that name the rows."""
        position = start
        try:
            for first, batch in self._batches(columns, start):
                position = first + batch.num_rows
                yield first, batch
        except Exception as err:
            where = f"rows {position}-{stop} of the {self._format} file"
            raise SourceError(self.path, f"cannot read {where} ({_cause(err)})") from err

    def iterate(
        self,
        columns: Sequence[str],
        step_size: int | str,
        entry_start: int = 0,
        entry_stop: int | None = None,
    ) -> Iterator[Chunk]:
        self._check_columns(columns)
        start = max(0, entry_start)
        stop = self.entries if entry_stop is None else min(entry_stop, self.entries)
        if start >= stop:
            return
        step = self.entries_per_step(step_size, columns)
        if not columns:
            for first in range(start, stop, step):
                yield Chunk(first, min(first + step, stop), {})
            return
        pending: list[pa.RecordBatch] = []
        have, chunk_start = 0, start
        for first, batch in self._guarded(columns, start, stop):
            # Batches follow file layout (row groups, CSV blocks); cut them to [start, stop).
            lo, hi = max(start - first, 0), min(stop - first, batch.num_rows)
            if hi <= lo:
                if first >= stop:
                    break
                continue
            pending.append(batch.slice(lo, hi - lo))
            have += hi - lo
            while have >= step or (have and chunk_start + have >= stop):
                take = min(step, have)
                table = pa.Table.from_batches(pending, schema=pending[0].schema)
                yield self._chunk(table.slice(0, take), columns, chunk_start)
                rest = table.slice(take)
                pending, have, chunk_start = rest.to_batches(), have - take, chunk_start + take
            if chunk_start >= stop:
                break
        if chunk_start < stop:
            raise SourceError(self.path, f"rows {chunk_start}-{stop} are missing: truncated file")

    def _chunk(self, table: pa.Table, columns: Sequence[str], start: int) -> Chunk:
        end = start + table.num_rows
        try:
            data = {c: _to_column(table.column(c), self._branches[c]) for c in columns}
        except (ValueError, pa.ArrowException) as err:
            raise SourceError(self.path, f"cannot convert rows {start}-{end}: {err}") from err
        return Chunk(start, end, data)

    def info(self) -> TreeInfo:
        return TreeInfo(self.path, self.name, self.entries, tuple(self._branches.values()))

    def close(self) -> None:
        return None


def _check_magic(path: str, fmt: str) -> None:
    """Reject files that cannot be ``fmt`` before pyarrow gives a vaguer message."""
    if "://" in path:
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
            if fmt == "parquet":
                handle.seek(max(0, handle.seek(0, 2) - 4))
                tail = handle.read(4)
    except FileNotFoundError as err:
        raise SourceError(path, "no such file") from err
    except OSError as err:
        raise SourceError(path, f"cannot open the file ({err.strerror})") from err
    if not head:
        raise SourceError(path, f"not a {_FORMATS[fmt]} file: the file is empty")
    if fmt == "parquet":
        if head[:4] != b"PAR1":
            raise SourceError(path, f"not a Parquet file: it starts with {head[:4]!r}, not b'PAR1'")
        if tail != b"PAR1":
            raise SourceError(path, "truncated or corrupted Parquet file: its footer is missing")
    elif b"\0" in head and not path.lower().endswith(".gz"):
        raise SourceError(path, "not a CSV file: it holds binary data")


class ParquetSource(_TableSource):
    """A Parquet file, read row group by row group with :class:`pyarrow.parquet.ParquetFile`."""

    _format = "Parquet"

    def __init__(self, path: str) -> None:
        _check_magic(path, "parquet")
        try:
            self._file = pq.ParquetFile(path)
            schema = self._file.schema_arrow
        except Exception as err:
            raise SourceError(path, f"cannot open as a Parquet file ({_cause(err)})") from err
        super().__init__(path, schema)
        meta = self._file.metadata
        self._group_rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]

    @property
    def entries(self) -> int:
        return sum(self._group_rows)

    def _batches(self, columns: Sequence[str], start: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        # Skip whole row groups before ``start`` instead of decoding them.
        first, group = 0, 0
        while group < len(self._group_rows) and first + self._group_rows[group] <= start:
            first += self._group_rows[group]
            group += 1
        groups = list(range(group, len(self._group_rows)))
        if not groups:
            return
        batches = self._file.iter_batches(
            batch_size=65536, row_groups=groups, columns=list(columns)
        )
        for batch in batches:
            yield first, batch
            first += batch.num_rows

    def close(self) -> None:
        self._file.close()


class CsvSource(_TableSource):
    """A CSV file (optionally gzipped) with a header line, streamed with pyarrow."""

    _format = "CSV"

    def __init__(self, path: str) -> None:
        _check_magic(path, "csv")
        try:
            reader = pacsv.open_csv(path)
            schema = reader.schema
            reader.close()
        except Exception as err:
            raise SourceError(path, f"cannot read as a CSV file ({_cause(err)})") from err
        super().__init__(path, schema)
        # Types come from the first block; fixing them keeps every chunk's dtypes equal.
        self._types = {f.name: f.type for f in schema}
        self._entries: int | None = None

    @property
    def entries(self) -> int:
        if self._entries is None:
            # One counting pass, reading a single column as text so no conversion can fail.
            first = next(iter(self._types))
            options = pacsv.ConvertOptions(
                include_columns=[first], column_types={first: pa.string()}
            )
            try:
                reader = pacsv.open_csv(self.path, convert_options=options)
                self._entries = sum(batch.num_rows for batch in reader)
            except Exception as err:
                raise SourceError(self.path, f"cannot count the rows ({_cause(err)})") from err
        return self._entries

    def _batches(self, columns: Sequence[str], start: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        convert = pacsv.ConvertOptions(
            include_columns=list(columns), column_types={c: self._types[c] for c in columns}
        )
        read = pacsv.ReadOptions(skip_rows_after_names=start)
        first = start
        for batch in pacsv.open_csv(self.path, read_options=read, convert_options=convert):
            yield first, batch
            first += batch.num_rows


def open_tabular(path: str, fmt: str) -> TreeSource:
    """Open a ``"parquet"`` or ``"csv"`` file as a tree named ``"table"``."""
    local = path[len("file://") :] if path.startswith("file://") else path
    if fmt == "parquet":
        return ParquetSource(local)
    if fmt == "csv":
        return CsvSource(local)
    raise SourceError(path, f"unknown table format {fmt!r}; expected 'parquet' or 'csv'")
