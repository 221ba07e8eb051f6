"""The requests of the core service: what a REST call, a client call or a magic asks.

One model per request, as jupyter-scheduler has one per verb: the web layer parses
query strings and bodies into them, the in-process client builds them from its
arguments, and the OpenAPI document is generated from them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ._base import SpecModel, field_error
from .cluster import ClusterSpec

__all__ = [
    "BranchesQuery",
    "CompareQuery",
    "EventsQuery",
    "FileQuery",
    "JobRequest",
    "ListJobsQuery",
    "PathQuery",
    "PredictFileRequest",
    "UploadQuery",
    "VersionQuery",
]

#: the largest count a query may ask for (SQLite integers are 64-bit)
MAX_COUNT = 1_000_000_000
#: what a job id may hold (the path pattern of jobs/{job_id})
JOB_ID = re.compile(r"[0-9A-Za-z_-]+")
JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled", "lost"]
_STATE = "|".join(get_args(JobStateName))
#: comma-separated states, or empty (no filter)
STATES_PATTERN = f"^(({_STATE})(,({_STATE}))*)?$"
Name = Field(default=None, min_length=1, max_length=200)


def _one_of_spec_or_path(schema: dict[str, Any]) -> None:
    # what _one_spec checks, for the document: a mapping spec, or a file spec_path
    schema["oneOf"] = [
        {"required": ["spec"], "properties": {"spec": {"type": "object"}}},
        {"required": ["spec_path"], "properties": {"spec_path": {"type": "string"}}},
    ]


class JobRequest(SpecModel):
    """``POST jobs``: a training job from a spec mapping or a spec file.

    ``spec`` is a training spec (``dataset``, ``model``, ``training``) whose relative
    file paths are taken from the first data root; ``spec_path`` is a YAML/JSON spec
    file under a data root whose relative paths are taken from its folder.
    """

    model_config = ConfigDict(json_schema_extra=_one_of_spec_or_path)

    spec: dict[str, Any] | None = Field(default=None, description="a training spec mapping")
    spec_path: StrictStr | None = Field(default=None, description="a YAML/JSON spec file")
    executor: StrictStr | None = Field(
        default=None, description="where the job runs (local, dask, kernel, ...)"
    )
    kernel_name: StrictStr | None = Field(default=None, description="kernel spec of kernel jobs")
    name: StrictStr | None = Field(default=None, description="the job's name")
    kind: Literal["train"] = Field(
        default="train", description="POST jobs submits training jobs; predictions: predict_file"
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _training_only(cls, value: Any) -> Any:
        if value != "train":
            raise ValueError(
                f"got {value!r}: POST jobs submits training jobs; for predictions use "
                'POST models/{name}/predict_file with "async": true'
            )
        return value

    @model_validator(mode="after")
    def _one_spec(self) -> JobRequest:
        if (self.spec is None) == (self.spec_path is None):
            raise field_error("spec", "give exactly one of spec (a mapping) or spec_path (a file)")
        return self


class ListJobsQuery(SpecModel):
    """``GET jobs``: filters of the job list (newest first)."""

    state: StrictStr | None = Field(
        default=None,
        description="comma-separated states: queued,running,succeeded,...",
        json_schema_extra={"pattern": STATES_PATTERN},
    )
    limit: int | None = Field(default=None, ge=0, le=MAX_COUNT, description="at most this many")
    name: StrictStr | None = Field(default=None, description="only jobs of this name")
    kind: Literal["train", "predict"] | None = Field(default=None, description="train or predict")

    @field_validator("state")
    @classmethod
    def _states(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        allowed = get_args(JobStateName)
        for state in value.split(","):
            if state not in allowed:
                raise ValueError(f"got {state!r}; allowed values are {', '.join(allowed)}")
        return value

    @property
    def states(self) -> list[str] | None:
        return self.state.split(",") if self.state else None


class EventsQuery(SpecModel):
    """``GET jobs/{id}/events``: the events after number ``since``."""

    since: int = Field(default=0, ge=0, le=MAX_COUNT, description="events after this number")
    limit: int | None = Field(default=None, ge=1, le=MAX_COUNT, description="at most this many")


class CompareQuery(SpecModel):
    """``GET compare`` and ``GET compare/plot``: the jobs to compare, in order.

    ``jobs`` is comma-separated (``jobs=a,b,c``), repeated (``jobs=a&jobs=b``), or a
    list (from Python); at least 2 distinct job ids.
    """

    repeatable: ClassVar[frozenset[str]] = frozenset({"jobs"})

    # on the wire, one comma-separated argument (style form, explode false)
    jobs: Annotated[
        StrictStr | list[StrictStr],
        WithJsonSchema(
            {
                "type": "array",
                "items": {"type": "string", "pattern": f"^{JOB_ID.pattern}$"},
                "minItems": 2,
                "uniqueItems": True,
            }
        ),
    ] = Field(description="the job ids, comma-separated (at least 2)", examples=[["a1b2", "c3d4"]])

    @field_validator("jobs")
    @classmethod
    def _job_ids(cls, value: str | list[str]) -> list[str]:
        given = value.split(",") if isinstance(value, str) else value
        ids = [part.strip() for item in given for part in item.split(",") if part.strip()]
        for job_id in ids:
            if not JOB_ID.fullmatch(job_id):
                raise ValueError(f"{job_id!r} is not a job id (letters, digits, - and _)")
            if ids.count(job_id) > 1:
                raise ValueError(f"job {job_id} is given twice")
        if len(ids) < 2:
            raise ValueError(f"give at least 2 job ids to compare, got {len(ids)}")
        return ids

    @property
    def ids(self) -> list[str]:
        """The job ids, in the order given."""
        return self.jobs if isinstance(self.jobs, list) else [self.jobs]


class PathQuery(SpecModel):
    """``GET files``: a folder under the data roots (default: the first root)."""

    path: StrictStr = Field(default="", description="relative to the first data root")


class FileQuery(SpecModel):
    """``GET trees``: a data file under the data roots."""

    path: StrictStr = Field(
        min_length=1,
        description="the data file, relative to the first data root, or its URL where "
        "the server allows remote URLs",
    )


class BranchesQuery(SpecModel):
    """``GET branches``: one tree of a data file."""

    path: StrictStr = Field(
        min_length=1,
        description="the data file, relative to the first data root, or its URL where "
        "the server allows remote URLs",
    )
    tree: StrictStr | None = Field(
        default=None, description="the tree (default, or empty: the only one)"
    )

    @field_validator("tree")
    @classmethod
    def _default_tree(cls, value: str | None) -> str | None:
        return value or None


class VersionQuery(SpecModel):
    """A model version (default: the latest)."""

    version: int | None = Field(default=None, ge=1, le=MAX_COUNT, description="model version")


class UploadQuery(SpecModel):
    """``POST models``: the name and file name of an uploaded bundle archive."""

    name: StrictStr | None = Field(default=None, description="register under this name")
    filename: StrictStr | None = Field(
        default=None, description="the archive's file name (.zip, .tar, .tar.gz)"
    )


def _sync_or_job(schema: dict[str, Any]) -> None:
    # what _sync_fields checks, for the document: a prediction job ("async": true), or
    # one file scored now, without the fields only a job takes
    only_jobs = {key: {"type": "null"} for key in ("step_size", "executor", "cluster")}
    schema["anyOf"] = [
        {"required": ["async"], "properties": {"async": {"const": True}}},
        {"properties": {"async": {"const": False}, "path": {"type": "string"}, **only_jobs}},
    ]
    path = schema["properties"]["path"]
    for option in path.get("anyOf", []):
        if option.get("type") == "array":
            option["minItems"] = 1


class PredictFileRequest(SpecModel):
    """``POST models/{name}/predict_file``: score files into friend trees.

    Without ``async`` one file is scored now into the friend-tree file ``out``; with
    ``"async": true`` a prediction job scores ``path`` (files, folders, globs, or a
    list of them) into friend trees in the folder ``out`` (or the file ``out`` ending
    in ``.root`` for one input), on ``cluster`` when given (one task per file).
    Without ``out`` each friend tree goes to the folder ``scores/`` beside its input.
    """

    model_config = ConfigDict(json_schema_extra=_sync_or_job)

    path: StrictStr | list[StrictStr] = Field(description="file(s), folder(s) or glob(s)")
    out: StrictStr | None = Field(
        default=None,
        min_length=1,
        description="friend-tree file, or folder for a job; default: scores/ beside each input",
    )
    tree: StrictStr | None = Field(default=None, description="the tree (default: training's)")
    version: StrictInt | None = Field(default=None, ge=1, le=MAX_COUNT, description="version")
    asynchronous: StrictBool = Field(
        default=False, alias="async", description="run as a prediction job (202 + the job)"
    )
    prefix: StrictStr = Field(default="score", min_length=1, description="score branch prefix")
    step_size: StrictStr | StrictInt | None = Field(
        default=None, description="entries or bytes ('64 MB') per chunk (jobs only)"
    )
    executor: StrictStr | None = Field(default=None, description="executor (jobs only)")
    cluster: ClusterSpec | None = Field(
        default=None, description="the dask cluster scoring the files, one task each (jobs only)"
    )

    @model_validator(mode="after")
    def _sync_fields(self) -> PredictFileRequest:
        if not self.asynchronous:
            for key in ("step_size", "executor", "cluster"):
                if getattr(self, key) is not None:
                    raise field_error(key, 'only a prediction job takes it: add "async": true')
            if isinstance(self.path, list):
                raise field_error("path", 'one file without "async": true; a list needs a job')
        elif isinstance(self.path, list) and not self.path:
            raise field_error("path", "give at least one file, folder or glob")
        return self

    @property
    def paths(self) -> list[str]:
        return self.path if isinstance(self.path, list) else [self.path]
