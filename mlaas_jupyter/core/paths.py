"""Confine the paths that REST clients give to the server's data roots.

Every path a client sends (a file to list or inspect, the files and globs of a spec, a
model file) goes through :class:`DataRoots` before anything opens it. A path is refused
(:class:`PathRefused`, HTTP 403) when it

* holds a NUL byte or a ``..`` component,
* still holds an encoded dot, slash, backslash or NUL (``%2e``, ``%2f``, ``%5c``,
  ``%00``) after one round of URL decoding (double encoding is an attack, not a name),
* is absolute and outside every root, or
* resolves (:func:`os.path.realpath`, which follows symlinks) outside every root.

Relative paths are taken from the first root, as Jupyter takes them from ``root_dir``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote

from ..errors import PathRefused, SourceError
from ..specs.dataset import DatasetSpec
from ..specs.prediction import PredictSpec
from ..specs.training import TrainSpec
from ..stream.sources import resolve_files

__all__ = ["DataRoots", "PathRefused"]

_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_CHARS = frozenset("*?[")
_NO_REMOTE = (
    "remote URLs are not allowed on this server (its administrator allows them with "
    "c.Mlaas.allow_remote_urls = True)"
)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class DataRoots:
    """The folders clients may read, and the checks that keep them inside.

    Parameters
    ----------
    roots
        Folders (they need not exist yet); symlinks in them are resolved once here.
    allow_remote
        Accept ``root://``, ``https://``... URLs unchanged (they are not on this disk).
    """

    def __init__(self, roots: Iterable[str], *, allow_remote: bool = False) -> None:
        self.roots = [os.path.realpath(os.path.expanduser(str(root))) for root in roots]
        if not self.roots:
            raise ValueError("at least one data root is needed")
        self.allow_remote = allow_remote

    @property
    def primary(self) -> str:
        """The root that relative paths are taken from."""
        return self.roots[0]

    # -- single paths ----------------------------------------------------------
    def _clean(self, raw: str) -> str:
        """Decode once and refuse the tricks; return the decoded text."""
        if not isinstance(raw, str):
            raise PathRefused(repr(raw), "a path must be a string")
        text = unquote(raw)
        if "\x00" in raw or "\x00" in text:
            raise PathRefused(raw, "NUL bytes are not allowed in paths")
        if _ENCODED.search(text):
            raise PathRefused(raw, "encoded '.', '/', '\\' or NUL are not allowed in paths")
        if text.startswith("file://"):
            text = text[len("file://") :]
        if text.startswith("~"):
            raise PathRefused(raw, "'~' is not allowed; give a path inside the data roots")
        if any(part == ".." for part in re.split(r"[/\\]", text)):
            raise PathRefused(raw, "'..' is not allowed in paths")
        return text

    def is_remote(self, raw: str) -> bool:
        """Whether ``raw`` is a URL other than ``file://``."""
        return bool(_SCHEME.match(raw)) and not raw.startswith("file://")

    def absolute(self, raw: str) -> str:
        """``raw`` as an absolute path (relative ones from :attr:`primary`), unresolved."""
        text = self._clean(raw)
        return os.path.normpath(os.path.join(self.primary, text))

    def check_real(self, raw: str, path: str) -> str:
        """The real path of ``path``; refused when it is outside every root."""
        real = os.path.realpath(path)
        if not self.contains(real):
            where = "resolves (through a symlink) to" if _inside_any(path, self.roots) else "is"
            raise PathRefused(raw, f"the path {where} a place outside the data roots")
        return real

    def resolve(self, raw: str) -> str:
        """The checked real path of a client path (which may not exist).

        Raises
        ------
        PathRefused
            When the path is outside the roots or uses a refused construct.
        """
        if self.is_remote(raw):
            raise PathRefused(raw, _NO_REMOTE)
        return self.check_real(raw, self.absolute(raw))

    def contains(self, real: str) -> bool:
        """Whether the (already resolved) path ``real`` is inside a root."""
        return any(_inside(real, root) for root in self.roots)

    def display(self, real: str) -> str:
        """How to show ``real`` to clients: relative to :attr:`primary` when inside it."""
        if _inside(real, self.primary):
            return os.path.relpath(real, self.primary).replace(os.sep, "/")
        return real

    # -- patterns and specs ----------------------------------------------------
    def check_pattern(self, raw: str) -> str:
        """Check a file, folder or glob (and every file it matches); return it absolute.

        Remote URLs pass unchanged when :attr:`allow_remote` is set.
        """
        if self.is_remote(raw):
            if self.allow_remote:
                return raw
            raise PathRefused(raw, _NO_REMOTE)
        absolute = self.absolute(raw)
        parts = Path(absolute).parts
        fixed = list(parts[: _first_glob(parts)])
        self.check_real(raw, os.path.join(*fixed) if fixed else os.sep)
        matches: Sequence[str]
        if _GLOB_CHARS & set(absolute):
            matches = glob.glob(absolute, recursive=True)
        else:
            try:
                matches = resolve_files([absolute]) if os.path.isdir(absolute) else [absolute]
            except SourceError:
                matches = []
        for match in matches:
            self.check_real(raw, match)
        return absolute

    def check_spec(self, spec: DatasetSpec | TrainSpec | PredictSpec) -> None:
        """Check every dataset file and glob and the model file of ``spec`` (for a
        prediction: the files to score and the output folder).

        Raises
        ------
        PathRefused
            For the first path outside the roots.
        """
        if isinstance(spec, PredictSpec):
            for pattern in spec.files:
                self.check_pattern(pattern)
            if spec.output is not None:  # else scores/ beside each input (checked by admit)
                self.resolve(spec.output)
            return
        dataset = spec if isinstance(spec, DatasetSpec) else spec.dataset
        for group in dataset.classes:
            for pattern in group.files:
                self.check_pattern(pattern)
        if isinstance(spec, TrainSpec) and spec.model.file is not None:
            self.resolve(spec.model.file)


def _first_glob(parts: Sequence[str]) -> int:
    for index, part in enumerate(parts):
        if _GLOB_CHARS & set(part):
            return index
    return len(parts)


def _inside_any(path: str, roots: Sequence[str]) -> bool:
    return any(_inside(os.path.normpath(path), root) for root in roots)
