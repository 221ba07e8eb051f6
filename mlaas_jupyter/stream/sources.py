"""Finding files and opening their trees, with errors that name the file and the cause.

Local paths, directories, globs and ``file://`` URLs are expanded here; remote URLs
(``root://``, ``https://``, ``s3://``...) are handed to uproot/fsspec unchanged.
ROOT files are read with uproot: their TTrees here, their RNTuples in :mod:`._rntuple`,
both chosen by the same name (a spec's ``tree:``); Parquet and CSV with pyarrow
(:mod:`.tabular`). An RNTuple uproot cannot read (written before ROOT 6.34) is reported
in one line naming it, never skipped in silence.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from ..errors import SourceError
from ._rntuple import RNTupleSource
from ._root_io import (
    TreeListing,
    aligned_ranges,
    as_column,
    cause,
    decompression_executor,
    is_remote,
    open_root,
    root_objects,
)
from .schema import BranchInfo, Chunk, TreeInfo, TreeSource

__all__ = [
    "RNTupleSource",
    "RootTreeSource",
    "TreeListing",
    "decompression_executor",
    "file_format",
    "find_trees",
    "inspect_file",
    "is_remote",
    "list_trees",
    "open_tree",
    "resolve_files",
    "tree_info",
]


DATA_SUFFIXES = (".root", ".parquet", ".pq", ".csv", ".csv.gz")
_GLOB_CHARS = set("*?[")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def resolve_files(patterns: Iterable[str]) -> list[str]:
    """Expand paths, directories and globs into a sorted, de-duplicated file list.

    Raises
    ------
    SourceError
        When a path does not exist or a glob or directory matches no data file.
    """
    files: list[str] = []
    for pattern in patterns:
        if is_remote(pattern):
            files.append(pattern)
            continue
        local = os.path.expanduser(_local(pattern))
        if _GLOB_CHARS & set(local):
            matches = sorted(m for m in glob.glob(local, recursive=True) if os.path.isfile(m))
            if not matches:
                raise SourceError(pattern, "the pattern matches no files")
            files.extend(matches)
        elif os.path.isdir(local):
            found = sorted(
                str(p)
                for p in Path(local).iterdir()
                if p.is_file() and p.name.endswith(DATA_SUFFIXES)
            )
            if not found:
                suffixes = ", ".join(DATA_SUFFIXES)
                raise SourceError(pattern, f"the directory holds no data files ({suffixes})")
            files.extend(found)
        elif not os.path.exists(local):
            raise SourceError(pattern, "no such file")
        else:
            files.append(local)
    return list(dict.fromkeys(files))


def file_format(path: str) -> str:
    """``"root"``, ``"parquet"`` or ``"csv"``, from the file name."""
    name = path.lower().split("?")[0]
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    return "root"


def _describe_branch(branch: Any) -> BranchInfo:
    interp = branch.interpretation
    typename = str(branch.typename)
    name = str(branch.name)
    if isinstance(interp, uproot.AsDtype):
        dtype = interp.to_dtype
        # a fixed-size array (float[3]) is a sub-array dtype: its numbers are its base's
        if dtype.fields is None and dtype.base.kind in "biuf":
            if dtype.shape:
                width = int(np.prod(dtype.shape))
                return BranchInfo(name, typename, "fixed", dtype.base.name, width)
            return BranchInfo(name, typename, "flat", dtype.name)
    if isinstance(interp, uproot.AsJagged) and isinstance(interp.content, uproot.AsDtype):
        dtype = interp.content.to_dtype
        if dtype.fields is None and dtype.kind in "biuf" and not dtype.shape:
            return BranchInfo(name, typename, "jagged", dtype.name)
    if isinstance(interp, uproot.AsStrings):
        reason = "strings are not numbers"
    else:
        reason = "objects or nested containers"
    return BranchInfo(name, typename, "unsupported", reason=reason)


class RootTreeSource:
    """A TTree of a ROOT file, read with uproot."""

    format = "TTree"

    def __init__(self, path: str, tree: str | None = None, handle: Any = None) -> None:
        """Open ``tree`` of ``path``, or of ``handle`` (an open uproot file, then closed
        with this source) once :func:`open_tree` has chosen it."""
        self.path = path
        self._file = open_root(path) if handle is None else handle
        try:
            if handle is None or tree is None:
                tree, kind = root_objects(path, self._file).choose(path, tree)
                if kind != "TTree":
                    raise SourceError(path, f"{tree!r} is an {kind}, not a TTree: use open_tree")
            self.name = tree
            self._tree = self._file[tree]
            self._branches = {
                str(b.name): _describe_branch(b) for b in self._tree.values(recursive=True)
            }
        except SourceError:
            self.close()
            raise
        except Exception as err:
            self.close()
            raise SourceError(path, f"cannot read tree {tree!r} ({cause(err)})") from err

    @property
    def entries(self) -> int:
        return int(self._tree.num_entries)

    @property
    def branches(self) -> Mapping[str, BranchInfo]:
        return self._branches

    def entries_per_step(self, step_size: int | str, columns: Sequence[str]) -> int:
        if isinstance(step_size, int):
            return max(1, step_size)
        try:
            return max(1, int(self._tree.num_entries_for(step_size, filter_name=list(columns))))
        except Exception as err:
            message = f"cannot size steps of {step_size!r} ({cause(err)})"
            raise SourceError(self.path, message) from err

    def iterate(
        self,
        columns: Sequence[str],
        step_size: int | str,
        entry_start: int = 0,
        entry_stop: int | None = None,
        align: bool = False,
    ) -> Iterator[Chunk]:
        missing = [c for c in columns if c not in self._branches]
        if missing:
            raise SourceError(self.path, f"tree {self.name!r} has no branch {missing[0]!r}")
        stop = self.entries if entry_stop is None else min(entry_stop, self.entries)
        step = self.entries_per_step(step_size, columns)
        kinds = {c: self._branches[c].kind for c in columns}
        ranges = (
            self._ranges(entry_start, stop, step)
            if align
            else ((a, min(a + step, stop)) for a in range(entry_start, stop, step))
        )
        for start, end in ranges:
            try:
                arrays = self._tree.arrays(
                    list(columns),
                    entry_start=start,
                    entry_stop=end,
                    library="ak",
                    how=dict,
                    decompression_executor=decompression_executor(),
                )
            except Exception as err:
                raise SourceError(
                    self.path,
                    f"cannot read entries {start}-{end} of tree {self.name!r} ({cause(err)})",
                ) from err
            chunk = Chunk(start, end, {c: as_column(arrays[c], kinds[c]) for c in columns})
            del arrays  # a suspended generator must not keep its last chunk alive
            yield chunk
            del chunk

    def _ranges(self, start: int, stop: int, step: int) -> Iterator[tuple[int, int]]:
        """Entry ranges of about ``step`` entries that end on basket boundaries, so no
        basket is decompressed twice (the first and last may be cut by start/stop);
        ``iterate(..., align=True)`` reads in these instead of exactly ``step``."""
        return aligned_ranges(self._tree.common_entry_offsets(), start, stop, step)

    def aligned_entry(self, at_least: int) -> int:
        """The first entry >= ``at_least`` where every branch starts a new basket:
        reading up to it decompresses no basket twice."""
        for offset in self._tree.common_entry_offsets():
            if offset >= at_least:
                return int(offset)
        return self.entries

    def info(self) -> TreeInfo:
        return tree_info(self)

    def close(self) -> None:
        self._file.close()


def tree_info(source: TreeSource, file: str | None = None) -> TreeInfo:
    """Entries, branches and format of an open source; ``file`` replaces its path (as
    the REST API shows it)."""
    branches = tuple(source.branches.values())
    fmt = getattr(source, "format", None)
    return TreeInfo(file or source.path, source.name, source.entries, branches, fmt)


def _open_root_tree(path: str, tree: str | None) -> TreeSource:
    handle = open_root(path)
    try:
        name, kind = root_objects(path, handle).choose(path, tree)
    except BaseException:
        handle.close()
        raise
    if kind == "RNTuple":
        return RNTupleSource(path, name, handle)
    return RootTreeSource(path, name, handle)


def open_tree(path: str, tree: str | None = None) -> TreeSource:
    """Open ``tree`` of ``path`` (the only tree when ``None``) in its format: a TTree or
    an RNTuple of a ROOT file, or the table of a Parquet or CSV file."""
    fmt = file_format(path)
    if fmt == "root":
        return _open_root_tree(path, tree)
    from .tabular import open_tabular

    return open_tabular(path, fmt)


def find_trees(path: str) -> TreeListing:
    """The trees of a file (also in subdirectories, as paths inside the file) with their
    format, and those that cannot be read with the reason (one line each)."""
    fmt = file_format(path)
    if fmt != "root":
        return TreeListing({"table": "Parquet" if fmt == "parquet" else "CSV"}, {})
    handle = open_root(path)
    try:
        return root_objects(path, handle)
    finally:
        handle.close()


def list_trees(path: str) -> list[str]:
    """The readable trees (TTrees and RNTuples) of a file, sorted, as paths inside it.

    Raises
    ------
    SourceError
        When the file holds trees but none can be read (saying why in one line).
    """
    listing = find_trees(path)
    if not listing.formats and listing.unreadable:
        raise SourceError(path, "; ".join(listing.unreadable.values()))
    return list(listing.formats)


def inspect_file(path: str, tree: str | None = None) -> list[TreeInfo]:
    """Describe every readable tree of ``path`` (only ``tree`` when given): format,
    entries and branches. See :func:`find_trees` for the trees that cannot be read."""
    infos = []
    for name in list_trees(path) if tree is None else [tree]:
        source = open_tree(path, name)
        try:
            infos.append(tree_info(source))
        finally:
            source.close()
    return infos
