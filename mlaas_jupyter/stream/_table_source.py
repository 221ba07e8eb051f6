"""What Parquet and CSV sources share: sizing steps and cutting record batches into chunks.

:class:`_TableSource` turns the record batches a format yields (row groups, CSV blocks)
into :class:`~.schema.Chunk` objects of ``step_size`` rows over a row range, sizes steps
given in bytes (``"32 MB"``, read by :func:`parse_size`) from a sample of rows, and names
the rows when pyarrow fails; :mod:`.tabular` adds the file formats themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa

from ..errors import SourceError
from ._arrow_columns import _to_column, describe_field
from .schema import BranchInfo, Chunk, TreeInfo

__all__ = ["parse_size"]

_SAMPLE_ROWS = 1024
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


def _cause(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


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
