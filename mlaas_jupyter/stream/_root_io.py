"""What reading TTrees and RNTuples with uproot shares: opening a ROOT file with a clear
error, listing its trees of both kinds (and the RNTuples uproot cannot read), one-line
causes, the decompression pool, and entry ranges that end on basket or cluster
boundaries.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import uproot

from ..errors import SourceError
from ._http_probe import http_options, probe_http, read_failure

__all__ = [
    "PRE_1_0_CLASS",
    "TreeListing",
    "aligned_ranges",
    "as_column",
    "cause",
    "check_local_file",
    "check_remote_file",
    "declared_size",
    "decompression_executor",
    "is_remote",
    "open_root",
    "root_objects",
    "unreadable_reason",
]

#: the ROOT classes read as trees, and the format each is shown as (a TNtuple is a
#: TTree of float columns)
_FORMATS = {
    "TTree": "TTree",
    "TNtuple": "TTree",
    "TNtupleD": "TTree",
    "ROOT::RNTuple": "RNTuple",
}
#: folders inside a file: their contents are listed, not they themselves
_FOLDERS = ("TDirectory", "TDirectoryFile")
#: the class name of the RNTuples written by ROOT before 6.34 (format before 1.0)
PRE_1_0_CLASS = "ROOT::Experimental::RNTuple"


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def cause(err: BaseException) -> str:
    """``"Type: message"`` on one line (uproot's messages span several; the CLI and the
    REST API show one line); for a web server failing in the middle of a read, that
    in words (:func:`._http_probe.read_failure`)."""
    remote = read_failure(err)
    if remote is not None:
        return remote
    return " ".join(f"{type(err).__name__}: {err}".split())


#: the start of a ROOT file's header: b"root", the format version, fBEGIN; then fEND
#: (where the file ends) in 4 bytes, or in 8 bytes from version 1000000 (large files)
_HEADER_START = struct.Struct(">4sii")
_LARGE_FILE_VERSION = 1_000_000


def declared_size(head: bytes) -> int | None:
    """The size a ROOT file says it has (its header's ``fEND``), from the first bytes of
    the file; ``None`` when ``head`` is too short to hold it."""
    if len(head) < _HEADER_START.size:
        return None
    _, version, _ = _HEADER_START.unpack_from(head)
    layout = ">q" if version >= _LARGE_FILE_VERSION else ">i"
    if len(head) < _HEADER_START.size + struct.calcsize(layout):
        return None
    return int(struct.unpack_from(layout, head, _HEADER_START.size)[0])


def check_local_file(path: str) -> None:
    """Refuse, naming ``path``, a local file that cannot be a whole ROOT file: missing,
    unreadable, a folder, empty, not starting with ``b"root"``, or shorter than its
    header says (an interrupted copy: "truncated: N of M bytes"). uproot reads a cut
    file's header and directory without complaint and fails later, deep inside a read,
    so this is checked wherever a ROOT file is opened."""
    if os.path.isdir(path):
        raise SourceError(path, "is a folder, not a ROOT file; name a file inside it")
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError as err:
        raise SourceError(path, "no such file") from err
    except OSError as err:
        raise SourceError(path, f"cannot open the file ({err.strerror})") from err
    if head and b"root".startswith(head):
        raise SourceError(
            path,
            f"the file is truncated: {size} bytes, shorter than its ROOT header; "
            "copy it again from its source",
        )
    if head[:4] != b"root":
        what = "the file is empty" if not head else f"it starts with {head[:4]!r}, not b'root'"
        raise SourceError(path, f"not a ROOT file: {what}")
    expected = declared_size(head)
    if expected is None:
        raise SourceError(
            path,
            f"the file is truncated: {size} bytes, shorter than its ROOT header; "
            "copy it again from its source",
        )
    if size < expected:
        raise SourceError(
            path,
            f"the file is truncated: {size} of {expected} bytes (the size its ROOT "
            "header gives), as an interrupted copy leaves it; copy it again from its source",
        )


def check_remote_file(url: str) -> None:
    """Refuse, naming ``url``, an ``http(s)://`` file whose server does not serve it as
    uproot needs (no range requests, credentials wanted, no such file...: see
    :func:`._http_probe.probe_http`), or whose first bytes are not a whole ROOT file's
    header (not ROOT, or shorter than its header says). Other schemes pass."""
    found = probe_http(url)
    if found is None:
        return
    if found.head[:4] != b"root":
        head = found.head[:4]
        what = "the file is empty" if not head else f"it starts with {head!r}, not b'root'"
        raise SourceError(url, f"not a ROOT file: {what}")
    expected = declared_size(found.head)
    if expected is not None and found.size is not None and found.size < expected:
        raise SourceError(
            url,
            f"the file is truncated: {found.size} of {expected} bytes (the size its ROOT "
            "header gives); the copy on the server is incomplete",
        )


def _check_root_magic(path: str) -> None:
    if not is_remote(path):
        check_local_file(path[len("file://") :] if path.startswith("file://") else path)
    else:
        check_remote_file(path)


def open_root(path: str) -> Any:
    """The uproot handle of ``path``; SourceError naming the file when it is not ROOT."""
    _check_root_magic(path)
    try:
        # No array cache: many files may be open at once and memory must stay bounded.
        # http(s): a timeout for each read, so a stalled server is an error, not a hang
        return uproot.open(path, array_cache=None, object_cache=None, **http_options(path))
    except FileNotFoundError as err:
        raise SourceError(path, "no such file") from err
    except Exception as err:
        raise SourceError(path, f"cannot open as a ROOT file ({cause(err)})") from err


def unreadable_reason(name: str, classname: str) -> str | None:
    """Why the object ``name`` of class ``classname`` cannot be read, when it is an
    RNTuple uproot does not read (``None`` for anything else)."""
    if classname != PRE_1_0_CLASS:
        return None
    return (
        f"RNTuple {name!r} is a pre-1.0 (ROOT::Experimental) RNTuple that uproot "
        f"{uproot.__version__} cannot read; rewrite it with ROOT >= 6.34"
    )


@dataclass(frozen=True)
class TreeListing:
    """The trees of a file: readable ones with their format (``"TTree"`` or
    ``"RNTuple"``; ``"Parquet"`` or ``"CSV"`` for the table of a table file) by name,
    and unreadable ones with a one-line reason (naming the object), by name; ``others``
    are the other objects (histograms, strings...) with their class name."""

    formats: dict[str, str]
    unreadable: dict[str, str]
    others: dict[str, str] = field(default_factory=dict)

    def other_objects(self) -> str:
        """``"2 objects that are not trees: h_eta (TH1D), h_pt (TH1D)"``, or ``""``."""
        if not self.others:
            return ""
        count = len(self.others)
        shown = ", ".join(f"{name} ({classname})" for name, classname in self.others.items())
        what = "objects that are not trees" if count > 1 else "object that is not a tree"
        return f"{count} {what}: {shown}"

    def why_nothing(self) -> str:
        """Why no tree of the file can be read, in one line: the reasons of the
        unreadable trees, and what else the file holds (which is not training data)."""
        if self.unreadable:
            text = "; ".join(self.unreadable.values())
            also = "; the file also holds "
        else:
            text = "the file holds no TTree or RNTuple"
            also = ", only "
        if self.others:
            text += (
                f"{also}{self.other_objects()}; histograms and other objects are not events "
                "to train on"
            )
        elif not self.unreadable:
            text += ", nor any other object"
        return text

    def listing(self) -> str:
        """``"Events (RNTuple), Runs (TTree)"``; unreadable ones say so."""
        shown = [f"{name} ({kind})" for name, kind in self.formats.items()]
        shown += [f"{name} (unreadable)" for name in self.unreadable]
        return ", ".join(shown) or "none"

    def choose(self, path: str, tree: str | None) -> tuple[str, str]:
        """(name, format) of ``tree``, or of the only readable tree when ``None``.

        Raises
        ------
        SourceError
            Naming the file: no such tree, several to choose from, or (in one line)
            why the named or only tree cannot be read.
        """
        if tree is None:
            if len(self.formats) == 1:
                return next(iter(self.formats.items()))
            if not self.formats:
                raise SourceError(path, self.why_nothing())
            raise SourceError(
                path,
                f"name the tree to read: the file has {len(self.formats)} trees "
                f"(TTrees or RNTuples): {self.listing()}",
            )
        if tree in self.unreadable:
            raise SourceError(path, self.unreadable[tree])
        if tree not in self.formats:
            raise SourceError(
                path, f"no tree {tree!r} (TTree or RNTuple); trees in the file: {self.listing()}"
            )
        return tree, self.formats[tree]


def root_objects(path: str, handle: Any) -> TreeListing:
    """The TTrees and RNTuples of an open ROOT file (also in subdirectories), and the
    RNTuples uproot cannot read."""
    try:
        classnames = handle.classnames(recursive=True, cycle=False)
    except Exception as err:
        raise SourceError(path, f"cannot list the objects of the file ({cause(err)})") from err
    formats: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    others: dict[str, str] = {}
    for name, classname in classnames.items():
        if classname in _FORMATS:
            formats[name] = _FORMATS[classname]
        elif (reason := unreadable_reason(name, classname)) is not None:
            unreadable[name] = reason
        elif classname not in _FOLDERS:
            others[name] = classname
    return TreeListing(
        dict(sorted(formats.items())),
        dict(sorted(unreadable.items())),
        dict(sorted(others.items())),
    )


def as_column(array: ak.Array, kind: str) -> Any:
    """Flat and fixed columns as NumPy arrays, jagged ones left as awkward ``var * T``."""
    if kind == "flat" or kind == "fixed":
        return ak.to_numpy(array, allow_missing=False)
    return array


_EXECUTOR: Any = None


def decompression_executor() -> Any:
    """One shared pool decompressing baskets and pages on all cores (zlib, lz4 and zstd
    release the GIL), so reading is not bound to a single core."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = uproot.ThreadPoolExecutor(max_workers=_threads())
    return _EXECUTOR


def _threads() -> int:
    """Up to 4 threads; on a dask worker, its own thread count: its workers share the
    machine's cores, and a worker of one thread must not take its neighbours'."""
    worker = sys.modules.get("distributed.worker")  # not imported here: dask is not in use
    if worker is not None:
        with contextlib.suppress(Exception):  # not in a task of a dask worker
            return max(1, int(worker.get_worker().state.nthreads))
    return max(1, min(4, os.cpu_count() or 1))


def aligned_ranges(
    boundaries: Iterable[int], start: int, stop: int, step: int
) -> Iterator[tuple[int, int]]:
    """Entry ranges of about ``step`` entries from ``start`` to ``stop`` that end on
    ``boundaries`` (where every basket, or every cluster, starts), so nothing is
    decompressed twice; the first and last range may be cut by start/stop."""
    offsets = [o for o in boundaries if start < o < stop]
    while start < stop:
        if start + step >= stop:
            end = stop
        else:
            fitting = [o for o in offsets if start < o <= start + step]
            later = [o for o in offsets if o > start]
            if fitting:
                end = fitting[-1]
            elif later and later[0] - start < 2 * step:
                end = later[0]  # a basket (cluster) larger than a step: take it whole
            else:
                end = start + step
        yield start, end
        start = end
