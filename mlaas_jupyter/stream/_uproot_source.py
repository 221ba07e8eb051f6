"""What a TTree source and an RNTuple source share: an uproot object of an open file,
its described branches, steps sized by uproot, reading in entry ranges (aligned on the
object's basket or cluster boundaries) with errors that name the file and the entries.
Each kind says how to read a range of columns (:meth:`UprootSource._read`) and where
its boundaries are (:meth:`UprootSource._boundaries`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import SourceError
from ._http_probe import read_failure
from ._root_io import aligned_ranges, as_column, cause
from .schema import BranchInfo, Chunk, TreeInfo

__all__ = ["DAMAGED", "UprootSource"]

#: what the error of a damaged basket ends with (a skip note leaves it out)
DAMAGED = "; the file is damaged: copy it again (a dataset's on_error: skip leaves such files out)"


class UprootSource:
    """Base of :class:`~.sources.RootTreeSource` and :class:`~._rntuple.RNTupleSource`:
    subclasses set ``path``, ``name``, ``_file`` (closed with the source), ``_object``
    (the uproot TTree or RNTuple) and ``_branches``."""

    format: ClassVar[str]
    #: what messages call the object ("tree", "RNTuple")
    noun: ClassVar[str]

    path: str
    name: str
    _file: Any
    _object: Any
    _branches: dict[str, BranchInfo]

    @property
    def entries(self) -> int:
        return int(self._object.num_entries)

    @property
    def branches(self) -> Mapping[str, BranchInfo]:
        return self._branches

    def entries_per_step(self, step_size: int | str, columns: Sequence[str]) -> int:
        if isinstance(step_size, int):
            return max(1, step_size)
        try:
            per_step = self._object.num_entries_for(step_size, filter_name=list(columns))
        except Exception as err:
            message = f"cannot size steps of {step_size!r} ({cause(err)})"
            raise SourceError(self.path, message) from err
        return max(1, int(per_step))

    def _boundaries(self) -> Sequence[int]:
        """Entries where every column starts a new basket (TTree) or cluster (RNTuple)."""
        raise NotImplementedError

    def _read(self, columns: Sequence[str], start: int, end: int) -> dict[str, Any]:
        """``columns`` (branch name -> awkward array) of entries ``start:end``."""
        raise NotImplementedError

    def iterate(
        self,
        columns: Sequence[str],
        step_size: int | str,
        entry_start: int = 0,
        entry_stop: int | None = None,
        align: bool = False,
    ) -> Iterator[Chunk]:
        """Chunks of ``columns``; with ``align`` ranges of about ``step_size`` entries
        that end on :meth:`_boundaries`, so nothing is decompressed twice."""
        missing = [c for c in columns if c not in self._branches]
        if missing:
            raise SourceError(self.path, f"{self.noun} {self.name!r} has no branch {missing[0]!r}")
        stop = self.entries if entry_stop is None else min(entry_stop, self.entries)
        step = self.entries_per_step(step_size, columns)
        kinds = {c: self._branches[c].kind for c in columns}
        ranges = (
            aligned_ranges(self._boundaries(), entry_start, stop, step)
            if align
            else ((a, min(a + step, stop)) for a in range(entry_start, stop, step))
        )
        for start, end in ranges:
            try:
                arrays = self._read(columns, start, end)
                read = {c: as_column(arrays[c], kinds[c]) for c in columns}
            except Exception as err:
                raise self._read_error(columns, start, end, err) from err
            chunk = Chunk(start, end, read)
            del arrays, read  # a suspended generator must not keep its last chunk alive
            yield chunk
            del chunk

    def _read_error(
        self, columns: Sequence[str], start: int, end: int, err: Exception
    ) -> SourceError:
        """The error of a range that failed to read, naming the branch whose basket
        (page) cannot be read or decompressed: each column is read alone until one
        fails (only on this path, so good reads pay nothing for it)."""
        where = f"entries {start}-{end} of {self.noun} {self.name!r}"
        failing = columns[0] if len(columns) == 1 else None
        for column in columns if failing is None else ():
            try:
                self._read([column], start, end)
            except Exception:
                failing = column
                break
        if failing is not None:
            where = f"branch {failing!r} in {where}"
        if read_failure(err) is not None:  # the network failed, not the file
            return SourceError(self.path, f"cannot read {where}: {cause(err)}")
        return SourceError(self.path, f"cannot read or decompress {where} ({cause(err)}){DAMAGED}")

    def aligned_entry(self, at_least: int) -> int:
        """The first entry >= ``at_least`` on a boundary (or the end): reading up to it
        decompresses nothing twice."""
        for offset in self._boundaries():
            if offset >= at_least:
                return int(offset)
        return self.entries

    def info(self) -> TreeInfo:
        branches = tuple(self._branches.values())
        return TreeInfo(self.path, self.name, self.entries, branches, self.format)

    def close(self) -> None:
        self._file.close()
