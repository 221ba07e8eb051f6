"""Finding files and opening their trees, with errors that name the file and the cause.

Local paths, directories, globs and ``file://`` URLs are expanded here; remote URLs
(``root://``, ``https://``, ``s3://``...) are handed to uproot/fsspec unchanged.
ROOT files are read with uproot: their TTrees here, their RNTuples in :mod:`._rntuple`,
both chosen by the same name (a spec's ``tree:``); Parquet and CSV with pyarrow
(:mod:`.tabular`). An RNTuple uproot cannot read (written before ROOT 6.34) is reported
in one line naming it, never skipped in silence.
"""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from ..errors import SourceError
from ._rntuple import RNTupleSource
from ._root_io import (
    TreeListing,
    cause,
    check_local_file,
    decompression_executor,
    is_remote,
    open_root,
    root_objects,
)
from ._uproot_source import UprootSource
from .schema import BranchInfo, TreeInfo, TreeSource

__all__ = [
    "RNTupleSource",
    "RootTreeSource",
    "TreeListing",
    "check_whole_files",
    "decompression_executor",
    "file_format",
    "find_trees",
    "inspect_file",
    "is_remote",
    "list_trees",
    "missing_reason",
    "open_tree",
    "resolve_files",
    "tree_info",
]


DATA_SUFFIXES = (".root", ".parquet", ".pq", ".csv", ".csv.gz")
_GLOB_CHARS = set("*?[")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def missing_reason(path: str) -> str:
    """Why an existing-looking ``path`` cannot be reached: no such file, a symbolic
    link to nowhere or in a loop, a folder on the way that may not be entered."""
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)!r}, which does not exist"
        return "no such file"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a loop of symbolic links (each points at another); link the real file"
        return f"cannot reach the file ({err.strerror})"
    return "no such file"


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
            if local.lower().rstrip("/").endswith(DATA_SUFFIXES):
                raise SourceError(pattern, "is a folder, not a data file; name a file inside it")
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
            raise SourceError(pattern, missing_reason(local))
        else:
            files.append(local)
    return list(dict.fromkeys(files))


def check_whole_files(paths: Iterable[str]) -> None:
    """Refuse (SourceError naming it) the first local ROOT file of ``paths`` that is
    truncated, empty, unreadable or not a ROOT file: reading 64 bytes of each, so a job
    is refused when it is submitted rather than failing when it reads the file."""
    for path in paths:
        if not is_remote(path) and file_format(path) == "root":
            check_local_file(_local(path))


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


class RootTreeSource(UprootSource):
    """A TTree of a ROOT file, read with uproot."""

    format = "TTree"
    noun = "tree"

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
            self._object = self._file[tree]
            self._branches = {
                str(b.name): _describe_branch(b) for b in self._object.values(recursive=True)
            }
        except SourceError:
            self.close()
            raise
        except Exception as err:
            self.close()
            raise SourceError(path, f"cannot read tree {tree!r} ({cause(err)})") from err

    def _read(self, columns: Sequence[str], start: int, end: int) -> dict[str, Any]:
        return dict(
            self._object.arrays(
                list(columns),
                entry_start=start,
                entry_stop=end,
                library="ak",
                how=dict,
                decompression_executor=decompression_executor(),
            )
        )

    def _boundaries(self) -> Sequence[int]:
        return [int(o) for o in self._object.common_entry_offsets()]


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
        When no tree can be read, saying why in one line: the reasons of the unreadable
        trees, and what else the file holds (histograms... by class name).
    """
    listing = find_trees(path)
    if not listing.formats:
        raise SourceError(path, listing.why_nothing())
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
