"""Finding files and opening their trees, with errors that name the file and the cause.

Local paths, directories, globs and ``file://`` URLs are expanded here; remote URLs
(``root://``, ``https://``, ``s3://``...) are handed to uproot/fsspec unchanged.
ROOT files are read with uproot; Parquet and CSV with pyarrow (:mod:`.tabular`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from ..errors import SourceError
from .schema import BranchInfo, Chunk, TreeInfo, TreeSource

__all__ = [
    "RootTreeSource",
    "file_format",
    "inspect_file",
    "list_trees",
    "open_tree",
    "resolve_files",
]

DATA_SUFFIXES = (".root", ".parquet", ".pq", ".csv", ".csv.gz")
_GLOB_CHARS = set("*?[")


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


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


def _cause(err: BaseException) -> str:
    # uproot's messages span several lines; the CLI and the REST API show one line.
    return " ".join(f"{type(err).__name__}: {err}".split())


def _check_root_magic(path: str) -> None:
    if is_remote(path):
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except FileNotFoundError as err:
        raise SourceError(path, "no such file") from err
    except OSError as err:
        raise SourceError(path, f"cannot open the file ({err.strerror})") from err
    if head != b"root":
        what = "the file is empty" if not head else f"it starts with {head!r}, not b'root'"
        raise SourceError(path, f"not a ROOT file: {what}")


def _open_root(path: str) -> Any:
    _check_root_magic(path)
    try:
        # No array cache: many files may be open at once and memory must stay bounded.
        return uproot.open(path, array_cache=None, object_cache=None)
    except FileNotFoundError as err:
        raise SourceError(path, "no such file") from err
    except Exception as err:
        raise SourceError(path, f"cannot open as a ROOT file ({_cause(err)})") from err


def _root_tree_names(handle: Any) -> list[str]:
    names = handle.keys(recursive=True, cycle=False, filter_classname="TTree")
    return sorted(dict.fromkeys(names))


def _describe_branch(branch: Any) -> BranchInfo:
    interp = branch.interpretation
    typename = str(branch.typename)
    name = str(branch.name)
    if isinstance(interp, uproot.AsDtype):
        dtype = interp.to_dtype
        if dtype.fields is None and dtype.kind in "biuf":
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

    def __init__(self, path: str, tree: str | None = None) -> None:
        self.path = path
        self._file = _open_root(path)
        trees = _root_tree_names(self._file)
        if tree is None:
            if len(trees) != 1:
                self.close()
                listed = ", ".join(trees) if trees else "none"
                raise SourceError(
                    path, f"name the tree to read: the file has {len(trees)} trees ({listed})"
                )
            tree = trees[0]
        if tree not in trees:
            self.close()
            listed = ", ".join(trees) or "none"
            raise SourceError(path, f"no tree {tree!r}; trees in the file: {listed}")
        self.name = tree
        try:
            self._tree = self._file[tree]
            self._branches = {
                str(b.name): _describe_branch(b) for b in self._tree.values(recursive=True)
            }
        except Exception as err:
            self.close()
            raise SourceError(path, f"cannot read tree {tree!r} ({_cause(err)})") from err

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
            message = f"cannot size steps of {step_size!r} ({_cause(err)})"
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
                    f"cannot read entries {start}-{end} of tree {self.name!r} ({_cause(err)})",
                ) from err
            chunk = Chunk(start, end, {c: _as_column(arrays[c], kinds[c]) for c in columns})
            del arrays  # a suspended generator must not keep its last chunk alive
            yield chunk
            del chunk

    def _ranges(self, start: int, stop: int, step: int) -> Iterator[tuple[int, int]]:
        """Entry ranges of about ``step`` entries that end on basket boundaries, so no
        basket is decompressed twice (the first and last may be cut by start/stop);
        ``iterate(..., align=True)`` reads in these instead of exactly ``step``."""
        offsets = [o for o in self._tree.common_entry_offsets() if start < o < stop]
        while start < stop:
            if start + step >= stop:
                end = stop
            else:
                fitting = [o for o in offsets if start < o <= start + step]
                later = [o for o in offsets if o > start]
                if fitting:
                    end = fitting[-1]
                elif later and later[0] - start < 2 * step:
                    end = later[0]  # a basket larger than a step: take it whole
                else:
                    end = start + step
            yield start, end
            start = end

    def aligned_entry(self, at_least: int) -> int:
        """The first entry >= ``at_least`` where every branch starts a new basket:
        reading up to it decompresses no basket twice."""
        for offset in self._tree.common_entry_offsets():
            if offset >= at_least:
                return int(offset)
        return self.entries

    def info(self) -> TreeInfo:
        return TreeInfo(self.path, self.name, self.entries, tuple(self._branches.values()))

    def close(self) -> None:
        self._file.close()


def _as_column(array: ak.Array, kind: str) -> Any:
    if kind == "flat" or kind == "fixed":
        return ak.to_numpy(array, allow_missing=False)
    return array


_EXECUTOR: Any = None


def decompression_executor() -> Any:
    """One shared pool decompressing baskets on all cores (zlib, lz4 and zstd release
    the GIL), so reading is not bound to a single core."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = uproot.ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
    return _EXECUTOR


def open_tree(path: str, tree: str | None = None) -> TreeSource:
    """Open ``tree`` of ``path`` (the only tree when ``None``) in its format."""
    fmt = file_format(path)
    if fmt == "root":
        return RootTreeSource(path, tree)
    from .tabular import open_tabular

    return open_tabular(path, fmt)


def list_trees(path: str) -> list[str]:
    """The trees of a file (also in subdirectories), as paths inside the file."""
    if file_format(path) != "root":
        return ["table"]
    handle = _open_root(path)
    try:
        return _root_tree_names(handle)
    finally:
        handle.close()


def inspect_file(path: str, tree: str | None = None) -> list[TreeInfo]:
    """Describe every tree of ``path`` (only ``tree`` when given): entries and branches."""
    infos = []
    for name in list_trees(path) if tree is None else [tree]:
        source = open_tree(path, name)
        try:
            branches = tuple(source.branches.values())
            infos.append(TreeInfo(path, source.name, source.entries, branches))
        finally:
            source.close()
    return infos
