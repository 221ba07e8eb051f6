"""`Client`: submit and follow training jobs from a notebook or a script.

The client talks to the Jupyter server it runs under (the ``mlaas`` server extension's
REST API under ``{base_url}mlaas/api/``), found in this order:

1. ``Client(url, token)``;
2. ``$MLAAS_SERVER_URL`` and ``$MLAAS_TOKEN``;
3. JupyterHub: ``$JUPYTERHUB_SERVICE_URL`` (or ``http://127.0.0.1:8888`` +
   ``$JUPYTERHUB_SERVICE_PREFIX``) with ``$JUPYTERHUB_API_TOKEN``;
4. the running Jupyter servers of this user (their runtime files): the one whose
   root folder holds the current folder, or the only one.

When there is no such server, or it has no ``mlaas`` extension, the client runs the
jobs itself ("embedded" mode): a :class:`JobManager` with the local executor on an
asyncio loop in a background thread, using the same job store as the server (so the
jobs show up there later). The methods are the same in both modes.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import MlaasError
from ..jobs.models import FINISHED
from ..jobs.store import default_runs_dir, default_store_path
from ._discovery import discover
from ._embedded import Embedded, read_artefact
from ._http import plain, probe, quote, send

__all__ = ["Client"]

_FINISHED = {s.value for s in FINISHED}


class Client:
    """Submits and follows training jobs, through the Jupyter server or embedded.

    Parameters
    ----------
    url
        Base URL of the Jupyter server (``http://127.0.0.1:8888/``); found
        automatically when None.
    token
        The server's API token.
    mode
        ``"server"`` or ``"embedded"`` to force one; by default the server when one
        with the ``mlaas`` extension answers, else embedded.
    store
        Job store file of the embedded mode (default :func:`default_store_path`,
        i.e. ``$MLAAS_JOB_STORE`` or the Jupyter data folder).
    runs_dir
        Run folders of the embedded mode (default :func:`default_runs_dir`).
    timeout
        Seconds an HTTP request may take.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        mode: str | None = None,
        store: str | Path | None = None,
        runs_dir: str | Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        if mode not in (None, "server", "embedded"):
            raise MlaasError(f"mode: got {mode!r}; allowed values: server, embedded")
        self.timeout = timeout
        self.url: str | None = None
        self.token = ""
        self.reason = ""  # why the client is embedded
        self._embedded: Embedded | None = None
        if mode != "embedded":
            explicit = url is not None or "MLAAS_SERVER_URL" in os.environ or mode == "server"
            found = (url, token or "", "argument") if url is not None else discover()
            if found is not None:
                self.url = found[0].rstrip("/") + "/"
                self.token = token if token is not None else found[1]
                problem = probe(self.url, self.token, timeout=self.timeout)
                if problem is None:
                    self.mode = "server"
                    return
                if explicit:
                    raise MlaasError(f"the Jupyter server at {self.url} ({found[2]}) {problem}")
                self.reason = f"the Jupyter server at {self.url} {problem}"
                self.url = None
            elif mode == "server":
                raise MlaasError("no Jupyter server found (set MLAAS_SERVER_URL and MLAAS_TOKEN)")
            else:
                self.reason = "no Jupyter server found"
        self.mode = "embedded"
        self.reason = self.reason or "embedded mode requested"
        store_path = Path(store) if store is not None else default_store_path()
        runs = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self._embedded = Embedded.get(store_path, runs)

    def close(self) -> None:
        """Embedded mode: stop the job manager of this store (its running jobs become
        lost; a new Client starts another). Nothing to do in server mode."""
        if self._embedded is not None:
            self._embedded.close()
            self._embedded = None

    def __repr__(self) -> str:
        where = self.url if self.mode == "server" else self.reason
        return f"<mlaas Client mode={self.mode!r} ({where})>"

    # -- server or embedded ------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        assert self.url is not None
        return send(self.url, self.token, method, path, body, raw, timeout=self.timeout)

    def _embed(self) -> Embedded:
        if self._embedded is None:
            raise MlaasError("this client is closed")
        return self._embedded

    # -- jobs --------------------------------------------------------------------------

    def submit(
        self,
        spec: Mapping[str, Any] | str | Path | Any,
        executor: str | None = None,
        kernel_name: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Submit a training job; ``spec`` is a spec mapping, a ``TrainSpec`` or the
        path of a YAML/JSON spec file. Returns the job."""
        from ..train.spec import TrainSpec

        if isinstance(spec, str | Path):
            spec = TrainSpec.from_file(spec)
        if isinstance(spec, TrainSpec):
            spec = spec.to_dict()
        if self.mode == "server":
            body = {"spec": spec, "executor": executor, "kernel_name": kernel_name, "name": name}
            return dict(self._request("POST", "jobs", body))
        manager = self._embed().manager
        coro = manager.submit(spec, executor=executor, kernel_name=kernel_name, name=name)
        return self._embed().call(coro).to_dict()

    def jobs(self, state: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The jobs, newest first (only those in ``state`` when given)."""
        if self.mode == "server":
            query = {k: v for k, v in (("state", state), ("limit", limit)) if v is not None}
            result = self._request(
                "GET", "jobs" + ("?" + urllib.parse.urlencode(query) if query else "")
            )
            return list(result["jobs"] if isinstance(result, dict) else result)
        return [j.to_dict() for j in self._embed().manager.list(state=state, limit=limit)]

    def job(self, job_id: str) -> dict[str, Any]:
        """One job (its state, progress, metrics, bundle, error)."""
        if self.mode == "server":
            return dict(self._request("GET", f"jobs/{quote(job_id)}"))
        return self._embed().manager.get(job_id).to_dict()

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; returns it."""
        if self.mode == "server":
            return dict(self._request("DELETE", f"jobs/{quote(job_id)}"))
        return self._embed().call(self._embed().manager.cancel(job_id)).to_dict()

    def resubmit(self, job_id: str) -> dict[str, Any]:
        """Continue a lost, failed or cancelled job from its last checkpoint (a new job)."""
        if self.mode == "server":
            return dict(self._request("POST", f"jobs/{quote(job_id)}/resubmit", {}))
        return self._embed().call(self._embed().manager.resubmit(job_id)).to_dict()

    def events(self, job_id: str, since: int = 0) -> list[dict[str, Any]]:
        """The events of a job after event number ``since``, in order."""
        if self.mode != "server":
            return [e.to_dict() for e in self._embed().manager.events(job_id, since=since)]
        events: list[dict[str, Any]] = []
        while True:
            page = self._request("GET", f"jobs/{quote(job_id)}/events?since={int(since)}")
            if not page.get("events"):
                return events
            events.extend(page["events"])
            since = int(page.get("next", events[-1]["seq"]))

    def logs(self, job_id: str) -> str:
        """What the job printed (stdout and stderr)."""
        if self.mode != "server":
            return self._embed().manager.logs(job_id)
        result = self._request("GET", f"jobs/{quote(job_id)}/logs")
        if isinstance(result, dict):
            return str(result.get("logs", result.get("text", "")))
        return str(result or "")

    def artefact(self, job_id: str, path: str) -> bytes:
        """A file of the job's run folder, e.g. ``plots/roc.png`` (the REST artefacts
        endpoint; the run folder itself in embedded mode)."""
        if self.mode == "server":
            quoted = "/".join(quote(part) for part in path.split("/"))
            return bytes(self._request("GET", f"jobs/{quote(job_id)}/artefacts/{quoted}", raw=True))
        return read_artefact(self.job(job_id).get("run_dir"), job_id, path)

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.5) -> dict[str, Any]:
        """Block until the job finishes; returns it. ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in _FINISHED:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout} s")
            time.sleep(
                poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            )

    def predict_file(
        self, model: str, path: str, out: str, tree: str | None = None
    ) -> dict[str, Any]:
        """Start a prediction job scoring ``path`` (a ROOT file or glob) into friend trees
        in the folder ``out``; returns the job (follow it like a training job).
        ``model`` is a served model's name (server) or a bundle folder (embedded)."""
        if self.mode == "server":
            body = {"path": path, "out": out, "tree": tree, "async": True}
            return dict(self._request("POST", f"models/{quote(model)}/predict_file", body))
        local = lambda p: p if "://" in p else os.path.abspath(p)  # noqa: E731
        spec = {"bundle": local(model), "files": [local(path)], "output": local(out), "tree": tree}
        name = "predict-" + Path(model).name
        coro = self._embed().manager.submit({"predict": spec}, name=name)
        return self._embed().call(coro).to_dict()

    def models(self) -> dict[str, Any]:
        """The served models (latest version each, with inputs, classes and metrics)."""
        if self.mode != "server":
            raise MlaasError("models are served by the Jupyter server's mlaas extension")
        return dict(self._request("GET", "models"))

    def predict(self, name: str, rows_or_columns: Any) -> Any:
        """Scores of a served model: ``rows_or_columns`` is a list of row mappings or a
        mapping of column lists (REST only)."""
        if self.mode != "server":
            raise MlaasError(
                "predict needs the Jupyter server with the mlaas extension; in this "
                "process use mlaas_jupyter.inference.bundle.load_bundle(<job bundle>)"
            )
        key = "columns" if isinstance(rows_or_columns, Mapping) else "rows"
        if key == "columns":
            payload: Any = {k: plain(v) for k, v in rows_or_columns.items()}
        else:
            payload = [plain(r) for r in rows_or_columns]
        return self._request("POST", f"models/{quote(name)}/predict", {key: payload})
