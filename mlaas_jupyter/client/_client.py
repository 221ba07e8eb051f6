"""`Client`: one interface to the core service, in this process or over HTTP.

The transport is chosen once, when the client is made:

1. ``Client(url, token)``, or ``$MLAAS_SERVER_URL`` and ``$MLAAS_TOKEN``: that
   server (it must answer);
2. JupyterHub's ``$JUPYTERHUB_SERVICE_URL`` (or ``http://127.0.0.1:8888`` +
   ``$JUPYTERHUB_SERVICE_PREFIX``) with ``$JUPYTERHUB_API_TOKEN``, or the running
   Jupyter server of this user whose root holds the current folder: used when it has
   the mlaas extension;
3. otherwise the core runs in this process (``transport="in-process"`` asks for it),
   with every executor (local, dask, kernel) and the model registry, and the same
   job store as the server.

Every method is the same on both transports and returns what the REST API replies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from traitlets.config import Config

from ..errors import MlaasError
from ..specs.cluster import ClusterSpec
from ..specs.training import TrainSpec
from ._compare import Comparison, compare
from ._discovery import discover
from ._http import HttpTransport
from ._in_process import InProcessTransport
from ._report import Report, report
from ._sweeps import SweepsMixin

__all__ = ["Client"]

_FINISHED = frozenset({"succeeded", "failed", "cancelled", "lost"})
Transport = HttpTransport | InProcessTransport


class Client(SweepsMixin):
    """Jobs, models and data of the core service (see the module docstring).

    Parameters
    ----------
    url, token
        A Jupyter server (or ``mlaas serve``) to use; found automatically when None.
    transport
        ``"auto"`` (default), ``"http"`` (a server must answer) or ``"in-process"``.
    store, runs_dir, models_dir
        Where the in-process core keeps jobs, run folders and models (default: the
        Jupyter data folder, as the server).
    config
        A traitlets config for the in-process core (``c.DaskExecutor.scheduler``...).
    timeout
        Seconds an HTTP request may take.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        transport: Literal["auto", "http", "in-process"] = "auto",
        store: str | Path | None = None,
        runs_dir: str | Path | None = None,
        models_dir: str | Path | None = None,
        config: Config | None = None,
        timeout: float = 60.0,
    ) -> None:
        if transport not in ("auto", "http", "in-process"):
            allowed = "auto, http, in-process"
            raise MlaasError(f"transport: got {transport!r}; allowed values: {allowed}")
        self.reason = ""  # why the core runs in this process
        self._transport: Transport = self._connect(url, token, transport, timeout) or (
            InProcessTransport(
                {
                    "job_store": _text(store),
                    "runs_dir": _text(runs_dir),
                    "models_dir": _text(models_dir),
                },
                config,
            )
        )
        self.reason = self.reason or "in-process transport requested"

    def _connect(
        self, url: str | None, token: str | None, transport: str, timeout: float
    ) -> HttpTransport | None:
        if transport == "in-process":
            return None
        explicit = url is not None or "MLAAS_SERVER_URL" in os.environ or transport == "http"
        found = (url, token or "", "argument") if url is not None else discover()
        if found is None:
            if transport == "http":
                raise MlaasError("no Jupyter server found (set MLAAS_SERVER_URL and MLAAS_TOKEN)")
            self.reason = "no Jupyter server found"
            return None
        http = HttpTransport(found[0], token if token is not None else found[1], timeout=timeout)
        problem = http.probe()
        if problem is None:
            return http
        if explicit:
            raise MlaasError(f"the Jupyter server at {http.url} ({found[2]}) {problem}")
        self.reason = f"the Jupyter server at {http.url} {problem}"
        return None

    # -- where -------------------------------------------------------------------------

    @property
    def transport(self) -> str:
        """``"http"`` or ``"in-process"``."""
        return "http" if isinstance(self._transport, HttpTransport) else "in-process"

    @property
    def url(self) -> str | None:
        """The server's base URL (None in process)."""
        return self._transport.url if isinstance(self._transport, HttpTransport) else None

    @property
    def token(self) -> str:
        return self._transport.token if isinstance(self._transport, HttpTransport) else ""

    @property
    def where(self) -> str:
        """Where the core runs, in words (the server, or this process and its store)."""
        return self._transport.where

    def info(self) -> dict[str, Any]:
        """Version, job store, runs and models folders, data roots and executors."""
        return dict(self._transport.call("info"))

    def close(self) -> None:
        """In process: stop the core of this store (its running jobs become lost)."""
        self._transport.close()

    def __repr__(self) -> str:
        why = f"; {self.reason}" if self.transport == "in-process" else ""
        return f"<mlaas Client: {self.where}{why}>"

    # -- jobs --------------------------------------------------------------------------

    def submit(
        self,
        spec: Mapping[str, Any] | str | Path | TrainSpec,
        executor: str | None = None,
        kernel_name: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Submit a training job: ``spec`` is a spec mapping (relative paths from the
        first data root), a ``TrainSpec``, or a YAML/JSON spec file (read here, its
        relative paths taken from its folder). Returns the job."""
        if isinstance(spec, str | Path):
            spec = TrainSpec.from_file(spec)
        body = {
            "spec": spec.to_dict() if isinstance(spec, TrainSpec) else dict(spec),
            "executor": executor,
            "kernel_name": kernel_name,
            "name": name,
        }
        return dict(self._transport.call("submit_job", body=body))

    def jobs(
        self,
        state: str | None = None,
        limit: int | None = None,
        name: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """The jobs, newest first (filtered by state(s), name and kind)."""
        query = {"state": state, "limit": limit, "name": name, "kind": kind}
        return list(self._transport.call("list_jobs", query=query)["jobs"])

    def job(self, job_id: str) -> dict[str, Any]:
        """One job (its state, progress, metrics, bundle, error)."""
        return dict(self._transport.call("get_job", {"job_id": job_id}))

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; returns it."""
        return dict(self._transport.call("cancel_job", {"job_id": job_id}))

    def delete(self, job_id: str) -> dict[str, Any]:
        """Remove a finished job, its events and its run folder."""
        return dict(self._transport.call("delete_job", {"job_id": job_id}))

    def resume(self, job_id: str) -> dict[str, Any]:
        """Run a lost job again, the same job (its id, events and history kept), from
        its last checkpoint; ``Conflict`` naming the state for a job that is not lost."""
        return dict(self._transport.call("resume_job", {"job_id": job_id}))

    def resubmit(self, job_id: str) -> dict[str, Any]:
        """Continue a lost, failed or cancelled job from its last checkpoint (a new job)."""
        return dict(self._transport.call("resubmit_job", {"job_id": job_id}))

    def events(self, job_id: str, since: int = 0) -> list[dict[str, Any]]:
        """The events of a job after event number ``since``, in order."""
        events: list[dict[str, Any]] = []
        while True:
            page = self._transport.call("job_events", {"job_id": job_id}, {"since": since})
            if not page["events"]:
                return events
            events.extend(page["events"])
            since = int(page["next"])

    def logs(self, job_id: str) -> str:
        """What the job printed (stdout and stderr)."""
        return str(self._transport.call("job_logs", {"job_id": job_id})["text"])

    def artefacts(self, job_id: str) -> list[dict[str, Any]]:
        """The files of the job's run folder (path, size, media type)."""
        return list(self._transport.call("list_artefacts", {"job_id": job_id})["artefacts"])

    def artefact(self, job_id: str, path: str) -> bytes:
        """A file of the job's run folder, e.g. ``plots/roc.png`` (``bundle.zip``: the
        bundle folder zipped)."""
        return bytes(self._transport.call("get_artefact", {"job_id": job_id, "path": path}))

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.5) -> dict[str, Any]:
        """Block until the job finishes; returns it. ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in _FINISHED:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout} s")
            left = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            time.sleep(left)

    def compare(self, *jobs_or_run_dirs: str | os.PathLike[str]) -> Comparison:
        """Two or more finished runs side by side, in the order given: job ids (of
        succeeded training jobs) and run folders (read here), mixed as you like.
        The :class:`Comparison` shows the overlaid ROC, rejection, score, loss and
        validation curves with the metrics table and the spec differences."""
        return compare(self._transport.call, jobs_or_run_dirs)

    def report(self, job_or_run_dir: str | os.PathLike[str]) -> Report:
        """The training report of a succeeded job (by id) or of a run folder (read
        here, no server needed): overtraining check, variable ranking, correlations,
        efficiencies... The :class:`Report` prints its tables, shows its page (plots
        inlined) in notebooks and ``save("report.html")`` writes it."""
        return report(self._transport.call, job_or_run_dir)

    # -- models ------------------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        """The served models: every version of each, with inputs, classes, metrics."""
        return dict(self._transport.call("list_models"))

    def model(self, name: str, version: int | None = None) -> dict[str, Any]:
        """The versions of a model, or one version's metadata."""
        return dict(self._transport.call("get_model", {"name": name}, {"version": version}))

    def upload_model(self, archive: str | Path | bytes, name: str | None = None) -> dict[str, Any]:
        """Register a bundle archive (zip, tar, tar.gz; a path or its bytes)."""
        filename = None if isinstance(archive, bytes) else Path(archive).name
        data = archive if isinstance(archive, bytes) else Path(archive).read_bytes()
        query = {"name": name, "filename": filename}
        return dict(self._transport.call("upload_model", query=query, body=data))

    def delete_model(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Remove one version of a model, or every version."""
        return dict(self._transport.call("delete_model", {"name": name}, {"version": version}))

    def predict(
        self, name: str, rows_or_columns: Any, version: int | None = None
    ) -> dict[str, Any]:
        """Scores of a served model: ``rows_or_columns`` is a list of row mappings or a
        mapping of column lists (NumPy arrays welcome)."""
        key = "columns" if isinstance(rows_or_columns, Mapping) else "rows"
        body = {key: rows_or_columns}
        return dict(self._transport.call("predict", {"name": name}, {"version": version}, body))

    def predict_file(
        self,
        model: str,
        path: str | list[str],
        out: str | None = None,
        tree: str | None = None,
        *,
        version: int | None = None,
        executor: str | None = None,
        wait: bool = False,
        cluster: ClusterSpec | Mapping[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """A prediction job scoring ``path`` (files, folders or globs) with a served
        model into friend trees in the folder ``out`` (or the ``.root`` file ``out``
        for one input; by default the folder ``scores/`` beside each input, where no
        glob naming the inputs reaches); returns the job (finished when ``wait``). With ``cluster``
        (``"local"``, a scheduler address, or a cluster mapping as in a job spec) the
        files are scored there, one task per file; the job's ``progress`` then lists
        each file's ``input``, ``output`` and ``entries`` or ``error`` (``results``)."""
        if isinstance(cluster, ClusterSpec):
            cluster = cluster.to_dict()
        body = {
            "path": path,
            "out": out,
            "tree": tree,
            "version": version,
            "async": True,
            "executor": executor,
            "cluster": None if cluster is None else _plain(cluster),
        }
        job = dict(self._transport.call("predict_file", {"name": model}, body=_drop_none(body)))
        return self.wait(job["id"]) if wait else job

    # -- data --------------------------------------------------------------------------

    def files(self, path: str = "") -> dict[str, Any]:
        """The folders and data files of a folder under the data roots."""
        return dict(self._transport.call("list_files", query={"path": path}))

    def trees(self, path: str) -> dict[str, Any]:
        """The trees of a data file."""
        return dict(self._transport.call("list_trees", query={"path": path}))

    def branches(self, path: str, tree: str | None = None) -> dict[str, Any]:
        """Entries and branches of one tree of a data file."""
        return dict(self._transport.call("branches", query={"path": path, "tree": tree}))

    def histograms(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Class histograms of a branch or expression before and after cuts (the body
        of ``POST histograms``: classes, branch or expression, cuts, bins, range)."""
        return dict(self._transport.call("histograms", body=dict(request)))

    def dataset_stats(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The statistics pass of a dataset spec (its YAML/JSON form): per class
        ``events``, ``yield`` and ``negative_fraction``, the samples' normalisation,
        the features' moments (the body of ``POST stats``, cached)."""
        return dict(self._transport.call("dataset_stats", body=dict(spec)))


def _text(value: str | Path | None) -> str | None:
    return None if value is None else str(value)


def _plain(cluster: Mapping[str, Any] | str) -> dict[str, Any] | str:
    return cluster if isinstance(cluster, str) else dict(cluster)


def _drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}
