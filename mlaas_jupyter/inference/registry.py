"""`ModelRegistry`: named, versioned bundles on disk, loaded on demand into a bounded cache.

::

    models_dir/
      higgs-mlp/
        1/   manifest.json  model.onnx  model.pt  registered.json
        2/
      .staging-*/  .trash-*/     (work folders: never listed, never served)

A bundle becomes visible only complete and checked: it is copied (or extracted from an
upload, see :mod:`~mlaas_jupyter.inference.archive`) into a staging folder, loaded and run
once on a zero event, then renamed into ``<name>/<version>/``. Versions count from 1;
"latest" is the highest. Loaded bundles are kept in an LRU cache bounded by count and
bytes; all methods may be called from several threads.
"""

from __future__ import annotations

import builtins
import collections
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MlaasError, NotFound
from .archive import ArchiveLimits, bundle_prefix, extract_archive
from .bundle import ModelBundle, load_bundle, read_manifest

__all__ = ["ModelInfo", "ModelNotFound", "ModelRegistry"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_REGISTERED = "registered.json"


class ModelNotFound(NotFound):
    """No model (or no such version of it) in the registry."""


@dataclass(frozen=True)
class ModelInfo:
    """What the registry tells about one version of a model (JSON-ready via ``to_dict``)."""

    name: str
    version: int
    created: str  # when it was trained (the manifest's "created")
    registered: str  # when it entered the registry
    task: str
    classes: list[str]
    inputs: dict[str, str]
    metrics: dict[str, Any]
    engine: str  # "onnxruntime" or "native": what serving will use
    backend: str
    size: int  # bytes on disk

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Cached:
    bundle: ModelBundle
    size: int
    stamp: tuple[int, int]  # of the manifest file
    folder_key: tuple[int, int, int]  # of the model's folder when last checked


def _stamp(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_ino, info.st_mtime_ns


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


class ModelRegistry:
    """Versioned bundles in ``directory`` and a cache of loaded ones.

    Parameters
    ----------
    directory
        The registry folder (created when missing).
    max_cached
        Loaded bundles kept in memory at most (least recently used dropped first).
    max_cached_bytes
        Bound on the on-disk size of the cached bundles (None: no bound); the most
        recent bundle is kept even when larger.
    engine, threads
        Passed to :func:`~mlaas_jupyter.inference.load_bundle` (ONNX Runtime intra-op threads:
        1 suits serving, where requests run side by side).
    limits
        Bounds on uploaded archives.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        max_cached: int = 4,
        max_cached_bytes: int | None = None,
        engine: str = "auto",
        threads: int | None = 1,
        limits: ArchiveLimits | None = None,
    ) -> None:
        self.directory = Path(directory).expanduser().absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._root = str(self.directory)
        self.max_cached = max(1, max_cached)
        self.max_cached_bytes = max_cached_bytes
        self.engine, self.threads = engine, threads
        self.limits = limits or ArchiveLimits()
        self._lock = threading.RLock()
        self._cache: collections.OrderedDict[tuple[str, int], _Cached] = collections.OrderedDict()
        self._index: dict[str, tuple[tuple[int, int, int], builtins.list[int]]] = {}

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.directory)!r}, cached={len(self._cache)})"

    # -- reading -------------------------------------------------------------------
    def names(self) -> builtins.list[str]:
        """Names of the registered models, sorted."""
        found = [p.name for p in self.directory.iterdir() if NAME.fullmatch(p.name)]
        return sorted(n for n in found if self.versions(n, missing_ok=True))

    def _scan(self, name: str) -> tuple[tuple[int, int, int], builtins.list[int]] | None:
        """(stamp of the model's folder, its versions), from the index while the folder
        is unchanged (one ``stat``); None when there is no such folder."""
        if not NAME.fullmatch(name):
            return None
        folder = os.path.join(self._root, name)
        try:
            info = os.stat(folder)
        except OSError:
            return None
        key = (info.st_ino, info.st_mtime_ns, info.st_nlink)
        cached = self._index.get(name)
        if cached is None or cached[0] != key:
            with os.scandir(folder) as entries:
                found = sorted(
                    int(e.name)
                    for e in entries
                    if e.name.isdigit() and os.path.isfile(os.path.join(e.path, "manifest.json"))
                )
            cached = self._index[name] = (key, found)
        return cached

    def versions(self, name: str, *, missing_ok: bool = False) -> builtins.list[int]:
        """The versions of ``name``, ascending; ModelNotFound when there are none."""
        scanned = self._scan(name)
        if not (scanned and scanned[1]) and not missing_ok:
            raise ModelNotFound(f"no model named {name!r}")
        return list(scanned[1]) if scanned else []

    def resolve(self, name: str, version: int | None = None) -> int:
        """``version`` checked, or the latest version of ``name``."""
        return self.lookup(name, version)[0]

    def lookup(self, name: str, version: int | None = None) -> tuple[int, ModelBundle | None]:
        """(version, loaded bundle or None): the cheap part of :meth:`get` (a ``stat``
        or two, never a load)."""
        scanned = self._scan(name)
        if not (scanned and scanned[1]):
            raise ModelNotFound(f"no model named {name!r}")
        key, versions = scanned
        if version is None:
            version = versions[-1]
        elif version not in versions:
            have = ", ".join(map(str, versions))
            raise ModelNotFound(f"model {name!r} has no version {version} (versions: {have})")
        with self._lock:
            entry = self._cache.get((name, version))
            if entry is None:
                return version, None
            if entry.folder_key != key:  # something changed: is it still the same bundle?
                if self._manifest_stamp(name, version) != entry.stamp:
                    del self._cache[(name, version)]
                    return version, None
                entry.folder_key = key
            self._cache.move_to_end((name, version))
            return version, entry.bundle

    def path(self, name: str, version: int | None = None) -> Path:
        """The bundle folder of ``name`` (latest version by default)."""
        return self.directory / name / str(self.resolve(name, version))

    def info(self, name: str, version: int | None = None) -> ModelInfo:
        """Metadata of one version (latest by default)."""
        version = self.resolve(name, version)
        folder = self.directory / name / str(version)
        manifest = read_manifest(folder)
        try:
            registered = json.loads((folder / _REGISTERED).read_text())
        except (OSError, ValueError):
            registered = {}
        return ModelInfo(
            name=name,
            version=version,
            created=str(manifest.get("created", "")),
            registered=str(registered.get("registered", "")),
            task=str(manifest["task"]),
            classes=[str(c) for c in manifest.get("classes") or []],
            inputs={str(k): str(v) for k, v in dict(manifest["inputs"]).items()},
            metrics=dict(manifest.get("metrics") or {}),
            engine="onnxruntime" if manifest.get("onnx") and self.engine != "native" else "native",
            backend=str(manifest["backend"]),
            size=_size(folder),
        )

    def list(self) -> builtins.list[ModelInfo]:
        """Every version of every model, by name then version."""
        return [self.info(n, v) for n in self.names() for v in self.versions(n, missing_ok=True)]

    def get(self, name: str, version: int | None = None) -> ModelBundle:
        """The loaded bundle of ``name`` (latest version by default), from the cache."""
        version, found = self.lookup(name, version)
        if found is not None:
            return found
        folder = self.directory / name / str(version)
        stamp = self._manifest_stamp(name, version)
        bundle = load_bundle(folder, self.engine, self.threads)
        size = _size(folder)
        scanned = self._scan(name)
        with self._lock:
            entry = self._cache.get((name, version))
            if entry is not None and entry.stamp == stamp:
                return entry.bundle
            folder_key = scanned[0] if scanned else (0, 0, 0)
            self._cache[(name, version)] = _Cached(bundle, size, stamp, folder_key)
            self._cache.move_to_end((name, version))
            self._evict()
        return bundle

    def _manifest_stamp(self, name: str, version: int) -> tuple[int, int]:
        try:
            return _stamp(self.directory / name / str(version) / "manifest.json")
        except OSError:
            raise ModelNotFound(f"model {name!r} has no version {version} (deleted)") from None

    def cached(self) -> builtins.list[tuple[str, int]]:
        """Keys of the loaded bundles, least recently used first."""
        with self._lock:
            return list(self._cache)

    def _evict(self) -> None:
        def over() -> bool:
            if len(self._cache) > self.max_cached:
                return True
            total = sum(e.size for e in self._cache.values())
            return self.max_cached_bytes is not None and total > self.max_cached_bytes

        while len(self._cache) > 1 and over():
            self._cache.popitem(last=False)

    # -- writing -------------------------------------------------------------------
    def register(self, bundle_path: str | Path, name: str | None = None) -> ModelInfo:
        """Copy the bundle folder ``bundle_path`` in as the next version of ``name``
        (default: the manifest's name)."""
        manifest = read_manifest(bundle_path)
        folder = Path(bundle_path)
        folder = folder.parent if folder.is_file() else folder
        chosen = self._check_name(name if name is not None else str(manifest["name"]))
        with self._staging() as work:
            staging = Path(work)
            shutil.copytree(folder, staging / "bundle")
            return self._commit(staging / "bundle", chosen, str(folder))

    def register_archive(self, data: bytes, filename: str, name: str | None = None) -> ModelInfo:
        """Register the bundle in a zip or tar(.gz) upload (see :mod:`.archive`).

        Raises
        ------
        MlaasError
            Naming what is wrong: an unsafe or oversized member, no bundle, several
            bundles, a corrupted manifest or a model that does not load or run.
        """
        if name is not None:
            self._check_name(name)
        with self._staging() as work:
            staging = Path(work)
            files = extract_archive(data, filename, staging / "x", self.limits)
            prefix = bundle_prefix(files, filename)
            root = staging / "x" / prefix
            try:
                manifest = read_manifest(root)
            except MlaasError as err:
                detail = str(err).replace(str(root / "manifest.json"), "manifest.json")
                raise MlaasError(f"bad bundle archive {filename!r}: {detail}") from None
            chosen = self._check_name(name if name is not None else str(manifest["name"]))
            return self._commit(root, chosen, filename)

    def delete(self, name: str, version: int | None = None) -> builtins.list[int]:
        """Remove one version, or every version of ``name``; return the versions removed."""
        targets = self.versions(name) if version is None else [self.resolve(name, version)]
        with self._lock:
            for number in targets:
                trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.directory))
                os.rename(self.directory / name / str(number), trash / "bundle")
                shutil.rmtree(trash, ignore_errors=True)
                self._cache.pop((name, number), None)
            self._index.pop(name, None)
            if not self.versions(name, missing_ok=True):
                shutil.rmtree(self.directory / name, ignore_errors=True)
        return targets

    def _check_name(self, name: str) -> str:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise MlaasError(
                f"model name {str(name)[:100]!r}: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return name

    def _staging(self) -> tempfile.TemporaryDirectory[str]:
        """A work folder in the registry (same file system: renames are atomic),
        removed on exit whatever happens."""
        return tempfile.TemporaryDirectory(
            prefix=".staging-", dir=self.directory, ignore_cleanup_errors=True
        )

    def _commit(self, folder: Path, name: str, source: str) -> ModelInfo:
        """Check that ``folder`` loads and runs, then rename it into the next version."""
        try:
            bundle = load_bundle(folder, self.engine, 1)
            bundle.predict_matrix(np.zeros((1, bundle.layout.width), dtype=np.float32))
        except Exception as err:
            detail = str(err).replace(str(folder), source)
            raise MlaasError(f"bundle {source!r} does not load or run: {detail}") from None
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (folder / _REGISTERED).write_text(json.dumps({"registered": stamp, "source": source}))
        with self._lock:
            (self.directory / name).mkdir(exist_ok=True)
            for _ in range(100):
                versions = self.versions(name, missing_ok=True)
                version = (versions[-1] if versions else 0) + 1
                try:
                    os.rename(folder, self.directory / name / str(version))
                    break
                except OSError:  # another process took that number
                    self._index.pop(name, None)
            else:  # pragma: no cover
                raise MlaasError(f"cannot find a free version number for {name!r}")
            self._index.pop(name, None)
        return self.info(name, version)
