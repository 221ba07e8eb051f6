"""Batch prediction as a job: score ROOT files with a bundle into friend trees.

A prediction job's spec is ``{"predict": {...}}`` (a :class:`PredictSpec`); the job
system runs it like a training job (local subprocess, kernel or dask: they all call
:func:`~mlaas_jupyter.jobs.worker.run_job`, which hands it to :func:`run_prediction`)
and records it with kind ``predict``.

:func:`run_prediction`

1. resolves the files (paths, folders, globs), loads the bundle and works out every
   output path (refusing two inputs that would write the same friend tree);
2. opens each file once to check it has the model's inputs and to count its entries,
   before anything is written (a missing branch fails the job at once);
3. writes each friend tree under a hidden temporary name beside its final one, with a
   ``progress`` event (entries done and total, events/s) at most twice a second, which
   is also where a cancellation stops the job;
4. renames all of them into place only when every one is complete, then emits
   ``done`` with the output paths (they become the job's ``outputs``).

So a failed or cancelled job leaves no friend tree under a final name (a job killed
outright may leave a hidden ``.<name>.*.partial`` file, never a complete-looking one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..stream._validate import as_int, as_mapping, as_str, as_str_list, check_keys

__all__ = ["PredictSpec", "is_prediction", "run_prediction"]

_FIELDS = ["bundle", "files", "tree", "output", "prefix", "step_size", "model", "version"]
#: seconds between two progress events of a prediction job
PROGRESS_EVERY = 0.5


def is_prediction(spec: Mapping[str, Any]) -> bool:
    """Whether a job spec is a prediction (``{"predict": ...}``) rather than a training."""
    return "predict" in spec


@dataclass(frozen=True)
class PredictSpec:
    """What a prediction job scores and where the friend trees go.

    ``bundle`` is the bundle folder that scores (a registered model is resolved to the
    folder of one version when the job is submitted, and ``model``/``version`` record
    which). ``files`` are paths, folders or globs. ``output`` is a folder, where the
    friend tree of ``x.root`` is ``<output>/x_<prefix>.root``, or, for a single input
    file, a path ending in ``.root``. ``step_size`` is entries (int) or bytes
    (``"64 MB"``) read per chunk.
    """

    bundle: str
    files: tuple[str, ...]
    output: str
    tree: str | None = None
    prefix: str = "score"
    step_size: str | int = "64 MB"
    model: str | None = None
    version: int | None = None

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path | None = None) -> PredictSpec:
        """The spec of a mapping; relative paths are taken from ``base_dir`` if given."""
        data = as_mapping("predict", data)
        check_keys("predict", data, _FIELDS)
        for key in ("bundle", "files", "output"):
            if key not in data:
                raise SpecError(f"predict.{key}", "missing")
        base = Path(base_dir) if base_dir is not None else None

        def place(path: str) -> str:
            if base is None or "://" in path or Path(path).is_absolute():
                return path
            return str(base / path)

        files = data["files"]
        files = [files] if isinstance(files, str) else files
        step = data.get("step_size", "64 MB")
        if not isinstance(step, str | int) or isinstance(step, bool):
            raise SpecError("predict.step_size", f"entries or bytes ('64 MB'), got {step!r}")
        if isinstance(step, int) and step < 1:
            raise SpecError("predict.step_size", f"at least 1 entry, got {step}")
        tree, model, version = data.get("tree"), data.get("model"), data.get("version")
        checked = as_str_list("predict.files", files)
        if not checked:
            raise SpecError("predict.files", "give at least one file, folder or glob")
        return cls(
            bundle=place(as_str("predict.bundle", data["bundle"])),
            files=tuple(place(f) for f in checked),
            output=place(as_str("predict.output", data["output"])),
            tree=None if tree is None else as_str("predict.tree", tree),
            prefix=as_str("predict.prefix", data.get("prefix", "score")),
            step_size=step,
            model=None if model is None else as_str("predict.model", model),
            version=None if version is None else as_int("predict.version", version, minimum=1),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"predict": {**asdict(self), "files": list(self.files)}}

    def job_name(self) -> str:
        """Default name of the job: ``predict-<model>``."""
        return "predict-" + (self.model or Path(self.bundle.rstrip("/")).name or "model")

    @property
    def single_file(self) -> bool:
        """Whether ``output`` names the friend-tree file itself (not a folder)."""
        return self.output.lower().endswith(".root")

    def outputs_for(self, sources: list[str]) -> list[Path]:
        """The friend-tree path of each input file, in order.

        Raises
        ------
        SpecError
            When ``output`` is a ``.root`` file but several files match, or two inputs
            (same name in different folders) would write the same friend tree.
        """
        if self.single_file:
            if len(sources) != 1:
                raise SpecError(
                    "predict.output",
                    f"{self.output!r} is one file but {len(sources)} files match; "
                    "give a folder for several inputs",
                )
            return [Path(self.output)]
        outputs = [Path(self.output) / f"{_stem(s)}_{self.prefix}.root" for s in sources]
        seen: dict[Path, str] = {}
        for source, out in zip(sources, outputs, strict=True):
            if out in seen:
                raise SpecError(
                    "predict.files",
                    f"{seen[out]} and {source} would both write {out}; "
                    "score files of the same name in separate jobs",
                )
            seen[out] = source
        return outputs


def _stem(source: str) -> str:
    return Path(source.rstrip("/").rsplit("/", 1)[-1]).stem


class _Progress:
    """``progress`` events: entries done of the total, at most every PROGRESS_EVERY s."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], total: int, files: int) -> None:
        self.emit, self.total, self.files = emit, total, files
        self.started = self.last = time.perf_counter()
        self.done = self.files_done = 0
        self.file = ""

    def chunk(self, entries: int) -> None:
        self.done += entries
        if time.perf_counter() - self.last >= PROGRESS_EVERY:
            self.report()

    def report(self) -> None:
        now = time.perf_counter()
        self.last = now
        seconds = now - self.started
        self.emit(
            {
                "type": "progress",
                "file": self.file,
                "files_done": self.files_done,
                "files": self.files,
                "events": self.done,
                "events_total": self.total,
                "fraction": round(self.done / self.total, 4) if self.total else 1.0,
                "events_per_s": round(self.done / seconds, 1) if seconds > 0 else 0.0,
            }
        )


def run_prediction(
    spec: Mapping[str, Any], emit: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Score every file of ``spec`` (a ``{"predict": ...}`` mapping) into friend trees;
    returns the ``done`` event (``outputs`` and ``metrics``). See the module docstring."""
    from ..stream.sources import resolve_files
    from .bundle import load_bundle
    from .friend import check_output, score_branches, write_partial_friend_tree

    task = PredictSpec.from_dict(spec["predict"])
    files = resolve_files(list(task.files))
    bundle = load_bundle(task.bundle)
    outputs = task.outputs_for(files)
    counts = []
    for source_path, out in zip(files, outputs, strict=True):
        check_output(out, source_path)
        source = bundle.open_source(source_path, task.tree)  # DataError: missing inputs
        try:
            counts.append(source.entries)
        finally:
            source.close()
    total = sum(counts)
    emit(
        {
            "type": "start",
            "bundle": task.bundle,
            "model": task.model or bundle.name,
            "version": task.version,
            "files": len(files),
            "events_total": total,
            "branches": score_branches(bundle, task.prefix),
        }
    )
    progress = _Progress(emit, total, len(files))
    partials: list[Path] = []
    renamed: list[Path] = []
    try:
        for source_path, out in zip(files, outputs, strict=True):
            progress.file = source_path
            partial, _ = write_partial_friend_tree(
                bundle, source_path, out, task.tree, task.prefix, task.step_size, progress.chunk
            )
            partials.append(partial)
            progress.files_done += 1
            progress.report()  # the last place a cancellation stops the job
        for partial, out in zip(partials, outputs, strict=True):
            os.replace(partial, out)
            renamed.append(out)
    except BaseException:
        for path in partials + renamed:  # interrupted while renaming: all or nothing
            path.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - progress.started
    metrics = {
        "entries": progress.done,
        "files": len(files),
        "seconds": round(seconds, 3),
        "events_per_s": round(progress.done / seconds, 1) if seconds > 0 else 0.0,
    }
    event = {"type": "done", "outputs": [str(out) for out in outputs], "metrics": metrics}
    emit(event)
    return event
