"""Blocking helpers behind the browsing endpoints (files, trees, branches) and the
job artefacts; the handlers run them in a thread.

Each takes client paths through :class:`~mlaas_jupyter.core.paths.DataRoots`, so
nothing outside the roots is listed, opened or sent.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import NotFound, SourceError, SpecError
from ..jobs.models import Job
from ..specs import unknown_field
from ..specs.training import TrainSpec
from ..stream import sources
from ..stream.sources import DATA_SUFFIXES, find_trees, open_tree, resolve_files
from .paths import DataRoots

__all__ = [
    "BUNDLE_ZIP",
    "NotFound",
    "list_artefacts",
    "list_folder",
    "load_job_spec",
    "open_artefact",
    "tree_info",
    "tree_names",
    "zip_folder",
]

#: the virtual artefact that streams the run's bundle folder as a zip
BUNDLE_ZIP = "bundle.zip"
#: not artefacts: the bundle's own files, the checkpoints and the run's record (its
#: spec, for ``mlaas train --resume``)
_HIDDEN_IN_RUNS = ("bundle", "checkpoint", "run.json")


def _entry(roots: DataRoots, path: str, stat: os.stat_result, is_dir: bool) -> dict[str, Any]:
    return {
        "name": os.path.basename(path),
        "path": roots.display(path),
        "size": 0 if is_dir else stat.st_size,
        "mtime": stat.st_mtime,
        "is_dir": is_dir,
    }


def list_folder(roots: DataRoots, raw: str) -> dict[str, Any]:
    """The sub-folders and data files (ROOT, Parquet, CSV) of a folder under a root.

    Hidden entries and symlinks leading outside the roots are left out.
    """
    folder = roots.resolve(raw)
    if not os.path.exists(folder):
        raise NotFound(f"{raw!r}: no such folder")
    if not os.path.isdir(folder):
        raise NotFound(f"{raw!r}: not a folder")
    entries = []
    with os.scandir(folder) as scan:
        for item in scan:
            if item.name.startswith("."):
                continue
            real = os.path.realpath(item.path)
            if not roots.contains(real):
                continue
            try:
                stat = os.stat(real)
            except OSError:
                continue
            is_dir = os.path.isdir(real)
            if is_dir or item.name.lower().endswith(DATA_SUFFIXES):
                entries.append(_entry(roots, os.path.join(folder, item.name), stat, is_dir))
    entries.sort(key=lambda e: (not e["is_dir"], e["name"].lower()))
    return {"path": roots.display(folder), "roots": roots.roots, "entries": entries}


def _data_file(roots: DataRoots, raw: str) -> str:
    if roots.is_remote(raw):  # a URL, when the server allows them (else PathRefused)
        return roots.check_pattern(raw)
    path = roots.resolve(raw)
    if os.path.isdir(path):
        raise SourceError(raw, "is a folder, not a data file; name a file inside it")
    if not os.path.isfile(path):
        raise NotFound(f"{raw!r}: {sources.missing_reason(path)}")
    return path


def tree_names(roots: DataRoots, raw: str) -> dict[str, Any]:
    """The readable trees of a data file (``["table"]`` for Parquet and CSV), their
    ``formats`` (``TTree``, ``RNTuple``, ``Parquet``, ``CSV``) and, when some cannot be
    read, ``unreadable``: one line each saying why; ``others``: the objects that are
    not trees (histograms...) with their class names, when there are some.

    Raises
    ------
    SourceError
        When no tree can be read (as ``mlaas inspect``: the reasons and what else the
        file holds, in one line), never an empty list.
    """
    path = _data_file(roots, raw)
    listing = find_trees(path)
    shown = roots.display(path)
    if not listing.formats:
        raise SourceError(shown, listing.why_nothing())
    reply: dict[str, Any] = {
        "path": shown,
        "trees": list(listing.formats),
        "formats": listing.formats,
    }
    if listing.unreadable:
        reply["unreadable"] = list(listing.unreadable.values())
    if listing.others:
        reply["others"] = listing.others
    return reply


def tree_info(roots: DataRoots, raw: str, tree: str | None) -> dict[str, Any]:
    """Format, entries and branches (name, type, kind, dtype...) of one tree of a data
    file."""
    path = _data_file(roots, raw)
    try:
        source = open_tree(path, tree)
    except SourceError as err:  # the path as the client gave it, as list_trees says it
        if err.path != path:
            raise
        raise SourceError(roots.display(path), err.message) from None
    try:
        info = sources.tree_info(source, roots.display(path))
    finally:
        source.close()
    return info.to_dict()


# -- artefacts of a job ------------------------------------------------------------------


def list_artefacts(run_dir: str | None) -> list[dict[str, Any]]:
    """The files of a run folder (plots, curves...) and ``bundle.zip`` when it has a
    bundle; checkpoints and the bundle's own files are not listed."""
    if not run_dir or not os.path.isdir(run_dir):
        return []
    root = Path(os.path.realpath(run_dir))
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in _HIDDEN_IN_RUNS or path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        found.append(_artefact(relative.as_posix(), stat.st_size, stat.st_mtime))
    bundle = root / "bundle"
    if bundle.is_dir():
        found.append(_artefact(BUNDLE_ZIP, None, bundle.stat().st_mtime))
    return found


def _artefact(path: str, size: int | None, mtime: float) -> dict[str, Any]:
    media = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return {"path": path, "size": size, "mtime": mtime, "media_type": media}


def open_artefact(job: Job, raw: str) -> tuple[IO[bytes], str, str]:
    """An artefact of ``job`` opened for reading, its download name and media type.

    ``bundle.zip`` is the run's bundle folder zipped on the fly; other names are files
    of the run folder (``..``, absolute paths and symlinks out are refused).
    """
    run_dir = job.run_dir
    if not run_dir or not os.path.isdir(run_dir):
        raise NotFound(f"job {job.id} has no run folder yet")
    if raw == BUNDLE_ZIP:
        folder = os.path.join(os.path.realpath(run_dir), "bundle")
        if not os.path.isdir(folder):
            raise NotFound(f"job {job.id} has no bundle (yet)")
        return zip_folder(folder), f"{job.name}-{job.id}-bundle.zip", "application/zip"
    path = DataRoots([run_dir]).resolve(raw)
    if not os.path.isfile(path):
        raise NotFound(f"{raw!r}: no such artefact of job {job.id}")
    media = mimetypes.guess_type(path)[0] or "application/octet-stream"
    handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
    return handle, os.path.basename(path), media


def zip_folder(folder: str) -> IO[bytes]:
    """A zip of ``folder`` (symlinks skipped) in a spooled temporary file, at offset 0."""
    out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115 - returned
    root = Path(folder)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.write(path, Path(root.name) / path.relative_to(root))
    out.seek(0)
    return out


# -- job specs -----------------------------------------------------------------------


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(field, f"expected a non-empty string, got {value!r}")
    return value.strip()


_SUBMIT_KEYS = ["spec", "spec_path", "executor", "kernel_name", "name", "kind"]


def load_job_spec(roots: DataRoots, body: Mapping[str, Any]) -> TrainSpec:
    """The checked :class:`TrainSpec` of a ``POST jobs`` body.

    The body holds ``spec`` (a TrainSpec mapping; relative files are taken from the
    first data root) or ``spec_path`` (a YAML/JSON file under a root; relative files
    from its folder). Every path must be inside the roots (PathRefused) and every
    dataset file must exist (SpecError naming the class).
    """
    if body.get("kind", "train") != "train":
        raise SpecError(
            "kind",
            f"POST jobs submits training jobs; for kind {body['kind']!r} use "
            'POST models/{name}/predict_file with "async": true',
        )
    for key in body:
        if key not in _SUBMIT_KEYS:
            raise SpecError(str(key), unknown_field(str(key), _SUBMIT_KEYS))
    for key in ("executor", "kernel_name", "name"):
        if body.get(key) is not None:
            _text(key, body[key])
    if ("spec" in body) == ("spec_path" in body):
        raise SpecError("spec", "give exactly one of spec (a mapping) or spec_path (a file)")
    if "spec_path" in body:
        path = roots.resolve(_text("spec_path", body["spec_path"]))
        if not os.path.isfile(path):
            raise SpecError("spec_path", f"no such file: {body['spec_path']!r}")
        spec = TrainSpec.from_file(path)
    else:
        spec = TrainSpec.from_dict(body["spec"], base_dir=roots.primary)
    roots.check_spec(spec)
    for group in spec.dataset.classes:
        try:
            resolve_files(group.files)
        except SourceError as err:
            raise SpecError(f"dataset.classes.{group.name}", str(err)) from None
    if spec.model.file is not None and not os.path.isfile(spec.model.file):
        raise SpecError("model.file", f"no such file: {spec.model.file!r}")
    return spec
