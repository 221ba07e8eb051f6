"""The operation table: every call of the core service that crosses a front door.

One :class:`Route` per operation names its HTTP method and path (under
``{base_url}mlaas/api/``), its request models and the core method it calls. The web
handlers mount these routes, the client's HTTP transport builds its requests from
them, the in-process transport calls its ``run`` directly, and the OpenAPI
document is generated from them: an operation is written down once. This module
imports no web framework.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import SpecError
from ..specs._base import SpecModel
from ..specs.dataset import DatasetSpec
from ..specs.histograms import HistogramRequest
from ..specs.requests import (
    BranchesQuery,
    CompareQuery,
    EventsQuery,
    FileQuery,
    JobRequest,
    ListJobsQuery,
    PathQuery,
    PredictFileRequest,
    UploadQuery,
    VersionQuery,
)
from ._sweep_routes import SWEEP_OPERATIONS

if TYPE_CHECKING:
    from ..core.service import Mlaas

__all__ = ["API_PREFIX", "ROUTES", "Call", "Route", "route"]

#: where the routes live, below the server's base URL
API_PREFIX = "mlaas/api/"
#: what each path parameter may hold
PARAM_PATTERNS = {
    "job_id": r"[0-9A-Za-z_-]+",
    "sweep_id": r"[0-9A-Za-z_-]+",
    "name": r"[^/]+",
    "path": r".+",
}
#: query arguments that belong to the server, not to an operation
SERVER_QUERY_ARGS = frozenset({"token", "_xsrf"})


@dataclass(frozen=True)
class Call:
    """One call of a route: its path parameters, its checked query and body."""

    params: Mapping[str, str] = field(default_factory=dict)
    query: Any = None
    body: Any = None


@dataclass(frozen=True)
class Route:
    """One operation of the API (see the module docstring)."""

    name: str
    method: Literal["GET", "POST", "DELETE"]
    path: str
    summary: str
    run: Callable[[Mlaas, Call], Coroutine[Any, Any, Any]]
    tag: str
    query: type[SpecModel] | None = None
    body: type[SpecModel] | None = None
    #: the body is bytes (an archive upload) or a payload in several forms (predict)
    raw_body: bool = False
    status: int = 200
    #: "json", "file" for a download, or "html" for a page shown inline
    returns: Literal["json", "file", "html"] = "json"
    errors: tuple[int, ...] = (400,)
    #: the reply's status when it depends on the call (a prediction job is 202)
    status_of: Callable[[Call], int] | None = None

    def status_for(self, call: Call) -> int:
        """The status of a successful reply to ``call``."""
        return self.status_of(call) if self.status_of is not None else self.status

    @property
    def params(self) -> list[str]:
        """The path parameters, in order."""
        return re.findall(r"{(\w+)}", self.path)

    @property
    def pattern(self) -> str:
        """The path as a tornado URL pattern with named groups."""
        return re.sub(r"{(\w+)}", lambda m: f"(?P<{m[1]}>{PARAM_PATTERNS[m[1]]})", self.path)

    def check(self, params: Mapping[str, str], query: Mapping[str, Any], body: Any) -> Call:
        """The call of already decoded arguments, checked by the request models
        (``SpecError`` naming the field when wrong)."""
        # an unknown argument without a value asks for nothing: browsers' cache busters
        # (JupyterLab sends GET jobs?1796526164293) are let through, not refused; an
        # empty value of a known argument is the request models' to judge (limit= is
        # not a number), as the document says
        known = self.query.model_fields if self.query is not None else {}
        arguments = {
            k: v
            for k, v in query.items()
            if k not in SERVER_QUERY_ARGS and v is not None and (v != "" or k in known)
        }
        if self.query is not None:
            checked_query: Any = self.query.parse(arguments)
        elif arguments:
            raise SpecError(sorted(arguments)[0], "unknown query argument; this takes none")
        if self.body is not None and not self.raw_body:
            body = self.body.parse(body if body is not None else {})
        return Call(params=dict(params), query=checked_query if self.query else None, body=body)


ROUTES: list[Route] = [
    Route(
        "info",
        "GET",
        "info",
        "Where jobs, runs and models are kept; the executors",
        lambda core, c: _now(core.info()),
        "service",
    ),
    Route(
        "list_files",
        "GET",
        "files",
        "The folders and data files of a folder",
        lambda core, c: core.data.files(c.query),
        "data",
        query=PathQuery,
        errors=(400, 403, 404),
    ),
    Route(
        "list_trees",
        "GET",
        "trees",
        "The trees of a data file",
        lambda core, c: core.data.trees(c.query),
        "data",
        query=FileQuery,
        errors=(400, 403, 404),
    ),
    Route(
        "branches",
        "GET",
        "branches",
        "The branches of one tree of a data file",
        lambda core, c: core.data.branches(c.query),
        "data",
        query=BranchesQuery,
        errors=(400, 403, 404),
    ),
    Route(
        "histograms",
        "POST",
        "histograms",
        "Class histograms before and after cuts",
        lambda core, c: core.data.histograms(c.body),
        "data",
        body=HistogramRequest,
        errors=(400, 403),
    ),
    Route(
        "dataset_stats",
        "POST",
        "stats",
        "Per class events, expected yield and negative-weight fraction of a dataset spec",
        lambda core, c: core.data.stats(c.body),
        "data",
        body=DatasetSpec,
        errors=(400, 403),
    ),
    Route(
        "list_jobs",
        "GET",
        "jobs",
        "The jobs, newest first",
        lambda core, c: core.jobs.list(c.query),
        "jobs",
        query=ListJobsQuery,
    ),
    Route(
        "submit_job",
        "POST",
        "jobs",
        "Submit a training job",
        lambda core, c: core.jobs.submit(c.body),
        "jobs",
        body=JobRequest,
        status=201,
        errors=(400, 403),
    ),
    Route(
        "get_job",
        "GET",
        "jobs/{job_id}",
        "One job",
        lambda core, c: core.jobs.get(c.params["job_id"]),
        "jobs",
        errors=(404,),
    ),
    Route(
        "delete_job",
        "DELETE",
        "jobs/{job_id}",
        "Remove a finished job, its events and its run folder (409 while it runs)",
        lambda core, c: core.jobs.delete(c.params["job_id"]),
        "jobs",
        errors=(404, 409),
    ),
    Route(
        "cancel_job",
        "POST",
        "jobs/{job_id}/cancel",
        "Cancel a queued or running job",
        lambda core, c: core.jobs.cancel(c.params["job_id"]),
        "jobs",
        errors=(404, 409),
    ),
    Route(
        "resubmit_job",
        "POST",
        "jobs/{job_id}/resubmit",
        "Continue a lost, failed or cancelled job from its last checkpoint",
        lambda core, c: core.jobs.resubmit(c.params["job_id"]),
        "jobs",
        status=201,
        errors=(404, 409),
    ),
    Route(
        "resume_job",
        "POST",
        "jobs/{job_id}/resume",
        "Run a lost job again, the same job, from its last checkpoint (409 unless lost)",
        lambda core, c: core.jobs.resume(c.params["job_id"]),
        "jobs",
        errors=(400, 403, 404, 409),
    ),
    Route(
        "job_events",
        "GET",
        "jobs/{job_id}/events",
        "A job's events after number since",
        lambda core, c: core.jobs.events(c.params["job_id"], c.query),
        "jobs",
        query=EventsQuery,
        errors=(400, 404),
    ),
    Route(
        "job_logs",
        "GET",
        "jobs/{job_id}/logs",
        "What a job printed",
        lambda core, c: core.jobs.logs(c.params["job_id"]),
        "jobs",
        errors=(404,),
    ),
    Route(
        "list_artefacts",
        "GET",
        "jobs/{job_id}/artefacts",
        "The files of a job's run folder",
        lambda core, c: core.jobs.artefacts(c.params["job_id"]),
        "jobs",
        errors=(404,),
    ),
    Route(
        "get_artefact",
        "GET",
        "jobs/{job_id}/artefacts/{path}",
        "Download one artefact (bundle.zip: the bundle folder zipped)",
        lambda core, c: core.jobs.artefact(c.params["job_id"], c.params["path"]),
        "jobs",
        returns="file",
        errors=(403, 404),
    ),
    Route(
        "job_report",
        "GET",
        "jobs/{job_id}/report",
        "The training report of a succeeded job: overtraining, ranking, efficiencies...",
        lambda core, c: core.jobs.report(c.params["job_id"]),
        "jobs",
        errors=(404, 409),
    ),
    Route(
        "job_report_html",
        "GET",
        "jobs/{job_id}/report.html",
        "The training report of a succeeded job as one self-contained HTML page",
        lambda core, c: core.jobs.report_page(c.params["job_id"]),
        "jobs",
        returns="html",
        errors=(404, 409),
    ),
    Route(
        "compare_jobs",
        "GET",
        "compare",
        "Succeeded training jobs side by side: test metrics, curves, spec differences",
        lambda core, c: core.jobs.compare(c.query),
        "jobs",
        query=CompareQuery,
        errors=(400, 404, 409),
    ),
    Route(
        "compare_plot",
        "GET",
        "compare/plot",
        "The comparison figure of succeeded training jobs (PNG)",
        lambda core, c: core.jobs.compare_plot(c.query),
        "jobs",
        query=CompareQuery,
        returns="file",
        errors=(400, 404, 409),
    ),
    Route(
        "list_models",
        "GET",
        "models",
        "Every version of every served model",
        lambda core, c: core.models.list(),
        "models",
    ),
    Route(
        "upload_model",
        "POST",
        "models",
        "Register a bundle archive (zip, tar, tar.gz)",
        lambda core, c: core.models.upload(c.body, c.query.filename, c.query.name),
        "models",
        query=UploadQuery,
        raw_body=True,
        status=201,
        errors=(400, 413),
    ),
    Route(
        "get_model",
        "GET",
        "models/{name}",
        "The versions of a model, or one version",
        lambda core, c: core.models.show(c.params["name"], c.query.version),
        "models",
        query=VersionQuery,
        errors=(400, 404),
    ),
    Route(
        "delete_model",
        "DELETE",
        "models/{name}",
        "Remove one version of a model, or all",
        lambda core, c: core.models.delete(c.params["name"], c.query.version),
        "models",
        query=VersionQuery,
        errors=(400, 404),
    ),
    Route(
        "predict",
        "POST",
        "models/{name}/predict",
        "Scores of rows, columns or TFaaS keys/values (JSON or Arrow IPC)",
        lambda core, c: core.models.predict(c.params["name"], c.body, c.query.version),
        "models",
        query=VersionQuery,
        raw_body=True,
        errors=(400, 404, 413),
    ),
    Route(
        "predict_file",
        "POST",
        "models/{name}/predict_file",
        'Score a file into a friend tree; with "async": true, a prediction job (202)',
        lambda core, c: core.models.predict_file(c.params["name"], c.body),
        "models",
        body=PredictFileRequest,
        errors=(400, 403, 404),
        status_of=lambda c: 202 if c.body.asynchronous else 200,
    ),
    *(Route(**operation) for operation in SWEEP_OPERATIONS),  # submit, list, get, cancel...
]

_BY_NAME = {r.name: r for r in ROUTES}


def route(name: str) -> Route:
    """The route of an operation by name."""
    return _BY_NAME[name]


async def _now(value: Any) -> Any:
    return value
