"""The JSON Schemas of the replies, for the generated OpenAPI document.

A job is its :class:`~mlaas_jupyter.jobs.models.Job` dataclass (its schema is
pydantic's of the dataclass, so a new field shows up here by itself), a training
report the :class:`~mlaas_jupyter.specs.report.Report` model; the other
replies are written down from the core's return values. Each names the fields
clients read and lets new ones through (``additionalProperties`` is not closed), so
that adding a field to a reply is not a breaking change of the document.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from ..jobs.models import Job
from ..specs.report import Report

__all__ = ["REPLIES", "STATUS_REPLIES", "reply_schemas"]

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _object(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """An object with ``required`` fields (name -> schema) and ``optional`` ones."""
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **optional},
    }


_STR, _INT, _NUM, _BOOL = (
    {"type": "string"},
    {"type": "integer"},
    {"type": "number"},
    {"type": "boolean"},
)
_OBJ: dict[str, Any] = {"type": "object"}
_NULL_STR: dict[str, Any] = {"type": ["string", "null"]}


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_MODEL_VERSION = _object(
    {"name": _STR, "version": _INT, "task": _STR},
    created=_NULL_STR,
    registered=_NULL_STR,
    classes=_list(_STR),
    inputs=_OBJ,
    metrics=_OBJ,
    engine=_STR,
    backend=_NULL_STR,
    size=_INT,
)
_MODEL_VERSIONS = _object({"name": _STR, "latest": _INT, "versions": _list(_ref("ModelVersion"))})
_SWEEP = _object({"id": _STR, "name": _STR, "state": _STR})
#: what ``balance`` does to each class of the training split (null for a regression)
_BALANCING: dict[str, Any] = {
    "anyOf": [
        _object(
            {
                "method": {"enum": ["none", "sample", "weights"]},
                "split": _STR,
                "classes": {
                    "type": "object",
                    "description": "class name -> events and sum of weights before and "
                    "after balancing (expected values when sampling), the weight factor "
                    "and the fraction of events kept",
                    "additionalProperties": _object(
                        {
                            "events_before": _INT,
                            "events_after": _INT,
                            "sum_weights_before": _NUM,
                            "sum_weights_after": _NUM,
                            "factor": _NUM,
                            "keep": _NUM,
                        }
                    ),
                },
                "problem": {
                    "type": ["string", "null"],
                    "description": "why the weights cannot be balanced (training refuses)",
                },
            }
        ),
        {"type": "null"},
    ]
}

_SCHEMAS: dict[str, dict[str, Any]] = {
    "Info": _object(
        {
            "version": _STR,
            "job_store": _STR,
            "runs_dir": _STR,
            "models_dir": _STR,
            "data_roots": _list(_STR),
            "executors": _list(_STR),
            "default_executor": _STR,
        }
    ),
    "FileList": _object(
        {
            "path": _STR,
            "roots": _list(_STR),
            "entries": _list(
                _object(
                    {"name": _STR, "path": _STR, "is_dir": _BOOL},
                    size={"type": ["integer", "null"]},
                    mtime={"type": ["number", "null"]},
                )
            ),
        }
    ),
    "TreeList": _object({"path": _STR, "trees": _list(_STR)}, formats=_OBJ),
    "BranchList": _object(
        {
            "file": _STR,
            "name": _STR,
            "branches": _list(_object({"name": _STR}, type=_STR, kind=_STR, dtype=_NULL_STR)),
        },
        format=_STR,
        entries=_INT,
    ),
    "Histograms": _object(
        {"expression": _STR, "bins": _INT, "edges": _list(_NUM), "classes": _OBJ},
        cuts=_list(_STR),
        truncated=_BOOL,
    ),
    "DatasetStats": _object(
        {"classes": _OBJ},
        events_read=_INT,
        files=_list(_OBJ),
        notes=_list(_STR),
        balance=_STR,
        balancing=_BALANCING,
    ),
    "JobList": _object({"jobs": _list(_ref("Job"))}),
    "JobEvents": _object(
        {
            "job_id": _STR,
            "state": _ref("JobState"),
            "next": _INT,
            "events": _list(_object({"job_id": _STR, "seq": _INT, "time": _NUM, "type": _STR})),
        }
    ),
    "JobLogs": _object({"job_id": _STR, "state": _ref("JobState"), "text": _STR}),
    "Artefacts": _object(
        {
            "job_id": _STR,
            "artefacts": _list(
                _object(
                    {"path": _STR, "media_type": _STR},
                    size={"type": ["integer", "null"]},
                    mtime={"type": ["number", "null"]},
                )
            ),
        }
    ),
    "Deleted": _object({"id": _STR, "deleted": {"const": True}}, run_dir_removed=_BOOL),
    "Comparison": _object({"runs": _list(_OBJ)}),
    "ModelVersion": _MODEL_VERSION,
    "ModelVersions": _MODEL_VERSIONS,
    # GET models/{name}: its versions, or the one asked for (?version=)
    "ModelReply": {"anyOf": [_ref("ModelVersions"), _ref("ModelVersion")]},
    "ModelList": _object({"models": _list(_ref("ModelVersion"))}),
    "ModelDeleted": _object({"name": _STR, "deleted": _list(_INT)}),
    "Prediction": _object(
        {"model": _STR, "version": _INT, "task": _STR, "scores": {"type": "array"}},
        classes=_list(_STR),
    ),
    "FriendTree": _object(
        {"model": _STR, "version": _INT, "file": _STR, "out": _STR},
        entries=_INT,
        branches=_list(_STR),
    ),
    "Sweep": _SWEEP,
    "SweepList": _object({"sweeps": _list(_ref("Sweep"))}),
}

#: the schema of each route's successful JSON reply, by route name
REPLIES: dict[str, dict[str, Any]] = {
    "info": _ref("Info"),
    "list_files": _ref("FileList"),
    "list_trees": _ref("TreeList"),
    "branches": _ref("BranchList"),
    "histograms": _ref("Histograms"),
    "dataset_stats": _ref("DatasetStats"),
    "list_jobs": _ref("JobList"),
    "submit_job": _ref("Job"),
    "get_job": _ref("Job"),
    "delete_job": _ref("Deleted"),
    "cancel_job": _ref("Job"),
    "resubmit_job": _ref("Job"),
    "resume_job": _ref("Job"),
    "job_events": _ref("JobEvents"),
    "job_logs": _ref("JobLogs"),
    "list_artefacts": _ref("Artefacts"),
    "job_report": _ref("Report"),
    "compare_jobs": _ref("Comparison"),
    "list_models": _ref("ModelList"),
    "upload_model": _ref("ModelVersion"),
    "get_model": _ref("ModelReply"),
    "delete_model": _ref("ModelDeleted"),
    "predict": _ref("Prediction"),
    "predict_file": _ref("FriendTree"),
    "submit_sweep": _ref("Sweep"),
    "list_sweeps": _ref("SweepList"),
    "get_sweep": _ref("Sweep"),
    "cancel_sweep": _ref("Sweep"),
    "resume_sweep": _ref("Sweep"),
    "delete_sweep": _ref("Deleted"),
}


#: replies whose schema depends on their status: (route name, status) -> schema
STATUS_REPLIES: dict[tuple[str, int], dict[str, Any]] = {("predict_file", 202): _ref("Job")}


def reply_schemas() -> dict[str, dict[str, Any]]:
    """The components of the replies: the job (from its dataclass) and the others."""
    job = TypeAdapter(Job).json_schema(ref_template=_REF)
    found = dict(job.pop("$defs", {}))
    found["Job"] = job
    report = Report.model_json_schema(ref_template=_REF)  # report.json as training wrote it
    found.update(report.pop("$defs", {}))
    found["Report"] = report
    return {**found, **_SCHEMAS}
