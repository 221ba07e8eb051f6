"""Parquet and CSV files as trees, read with pyarrow through the :class:`TreeSource` protocol.

A table is a tree named ``"table"``; its columns are branches. Numbers and booleans are
``flat``, lists of numbers ``jagged``, fixed-size lists of numbers ``fixed``; anything
else is listed as ``unsupported`` with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import SourceError
from ._arrow_columns import describe_field as describe_field  # re-exported
from ._table_source import _cause, _TableSource, parse_size
from .schema import TreeSource

__all__ = ["CsvSource", "ParquetSource", "open_tabular", "parse_size"]

_FORMATS = {"parquet": "Parquet", "csv": "CSV"}


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
    format = "Parquet"

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
    format = "CSV"

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
