"""`PredictSpec`: what a prediction job scores and where the friend trees go.

A prediction job's spec is ``{"predict": {...}}``; :func:`is_prediction` tells it from
a training spec. The job itself is :func:`mlaas_jupyter.inference.batch.run_prediction`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator

from ..errors import SpecError
from ._base import SpecModel, field_error
from ._types import Count, Location, Paths, StepSize, Text
from .cluster import ClusterSpec

__all__ = ["SCORES_FOLDER", "PredictSpec", "default_output", "is_prediction"]

#: the folder, beside each scored file, where its friend tree goes when no output is
#: given: a class glob such as ``data/signal_*.root`` never reaches into it
SCORES_FOLDER = "scores"


def default_output(source: str, prefix: str = "score") -> Path:
    """Where the friend tree of ``source`` goes by default:
    ``<folder of source>/scores/<stem>_<prefix>.root``.

    Raises
    ------
    SpecError
        For a remote input (``root://``, ``https://``...): there is no folder beside it
        to write to.
    """
    if "://" in source and not source.startswith("file://"):
        raise SpecError(
            "predict.output", f"{source} is remote: give a local output folder for its scores"
        )
    local = Path(source.removeprefix("file://"))
    return local.parent / SCORES_FOLDER / f"{_stem(source)}_{prefix}.root"


def is_prediction(spec: Mapping[str, Any]) -> bool:
    """Whether a job spec is a prediction (``{"predict": ...}``) rather than a training."""
    return "predict" in spec


class PredictSpec(SpecModel):
    """What a prediction job scores and where the friend trees go.

    ``bundle`` is the bundle folder that scores (a registered model is resolved to the
    folder of one version when the job is submitted, and ``model``/``version`` record
    which). ``files`` are paths, folders or globs. ``output`` is a folder, where the
    friend tree of ``x.root`` is ``<output>/x_<prefix>.root``, or, for a single input
    file, a path ending in ``.root``; without it each friend tree goes to the folder
    ``scores/`` beside its input (:func:`default_output`), out of reach of the globs
    that name the inputs. ``step_size`` is entries (int) or bytes
    (``"64 MB"``) read per chunk. Relative paths are taken from ``base_dir``.
    ``cluster`` (a :class:`~mlaas_jupyter.specs.cluster.ClusterSpec`) scores the files
    there, one task per file; without it they are scored in the job's process.
    """

    spec_root = "predict"

    bundle: Location = Field(description="the bundle folder that scores")
    files: Paths = Field(description="files, folders or globs to score")
    output: Location | None = Field(
        default=None,
        description="a folder, or the .root file of one input; "
        "default: the folder scores/ beside each input",
    )
    tree: Text | None = Field(default=None, description="the tree (default: training's)")
    prefix: Text = Field(default="score", description="prefix of the score branches")
    step_size: StepSize = "64 MB"
    model: Text | None = Field(default=None, description="the registered model's name")
    version: Count | None = Field(default=None, description="the registered model's version")
    cluster: ClusterSpec | None = Field(
        default=None,
        description="the dask cluster that scores the files, one task per file; "
        "default: the job's own process",
    )

    @model_validator(mode="after")
    def _some_files(self) -> Self:
        if not self.files:
            raise field_error("files", "give at least one file, folder or glob")
        return self

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path | None = None) -> PredictSpec:
        """The spec of a mapping; relative paths are taken from ``base_dir`` if given."""
        return cls.parse(data, context={"base_dir": base_dir})

    def to_dict(self) -> dict[str, Any]:
        """The job spec: ``{"predict": {...}}`` (``cluster`` only when there is one)."""
        data = self.model_dump(mode="json", exclude={"cluster"})
        if self.cluster is not None:  # its YAML form: the kind given only
            data["cluster"] = self.cluster.to_dict()
        return {"predict": data}

    def job_name(self) -> str:
        """Default name of the job: ``predict-<model>``."""
        return "predict-" + (self.model or Path(self.bundle.rstrip("/")).name or "model")

    @property
    def single_file(self) -> bool:
        """Whether ``output`` names the friend-tree file itself (not a folder)."""
        return self.output is not None and self.output.lower().endswith(".root")

    def outputs_for(self, sources: list[str]) -> list[Path]:
        """The friend-tree path of each input file, in order.

        Raises
        ------
        SpecError
            When ``output`` is a ``.root`` file but several files match, or two inputs
            (same name in different folders) would write the same friend tree.
        """
        output = self.output
        if output is not None and self.single_file:
            if len(sources) != 1:
                raise SpecError(
                    "predict.output",
                    f"{self.output!r} is one file but {len(sources)} files match; "
                    "give a folder for several inputs",
                )
            return [Path(output)]
        if output is None:
            outputs = [default_output(s, self.prefix) for s in sources]
        else:
            outputs = [Path(output) / f"{_stem(s)}_{self.prefix}.root" for s in sources]
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
