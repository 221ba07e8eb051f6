"""`Job`: a handle on one training job, for notebooks and scripts.

The handle holds only the job's id and a :class:`~mlaas_jupyter.client.Client`; every
property asks the client (so the server, or the embedded job manager) for the current
record. The same handle works after a kernel restart: ``Job("3f2a…")`` finds the job
again through a new client.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import MlaasError
from ._client import Client
from ._report import Report

__all__ = ["Job"]


class Job:
    """A submitted training job.

    Parameters
    ----------
    job
        The job's id, or its record as returned by :meth:`Client.submit`.
    client
        The client to ask; a new :class:`Client` (the server when found, else the
        core in this process) when None.

    Examples
    --------
    >>> job = Job.submit("spec.yaml")          # doctest: +SKIP
    >>> job.wait().status, job.metrics["test_auc"]  # doctest: +SKIP
    ('succeeded', 0.95)
    """

    def __init__(self, job: str | Mapping[str, Any], client: Client | None = None) -> None:
        record = dict(job) if isinstance(job, Mapping) else None
        job_id = record["id"] if record is not None else job
        if not isinstance(job_id, str) or not job_id:
            raise MlaasError(f"job: expected a job id or a job record, got {job!r}")
        self.id: str = job_id
        self.client = client if client is not None else Client()
        self._last: dict[str, Any] | None = record

    @classmethod
    def submit(
        cls,
        spec: Mapping[str, Any] | str | Path | Any,
        *,
        executor: str | None = None,
        kernel_name: str | None = None,
        name: str | None = None,
        client: Client | None = None,
    ) -> Job:
        """Submit ``spec`` (a mapping, a ``TrainSpec`` or a YAML/JSON file) and return
        its handle."""
        client = client if client is not None else Client()
        record = client.submit(spec, executor=executor, kernel_name=kernel_name, name=name)
        return cls(record, client)

    # -- the record --------------------------------------------------------------------

    def refresh(self) -> dict[str, Any]:
        """The job's current record (state, progress, metrics, bundle, error...)."""
        self._last = self.client.job(self.id)
        return self._last

    @property
    def info(self) -> dict[str, Any]:
        """The current record (asks the client each time)."""
        return self.refresh()

    @property
    def status(self) -> str:
        """``queued``, ``running``, ``succeeded``, ``failed``, ``cancelled`` or ``lost``."""
        return str(self.refresh()["state"])

    @property
    def name(self) -> str:
        return str((self._last or self.refresh())["name"])

    @property
    def executor(self) -> str:
        """Where the job runs: ``kernel``, ``dask`` or ``local``."""
        return str((self._last or self.refresh())["executor"])

    @property
    def bundle(self) -> str | None:
        """Path of the model bundle once the job succeeded, else None."""
        value = self.refresh().get("bundle")
        return str(value) if value else None

    @property
    def metrics(self) -> dict[str, Any]:
        """Final metrics (test ROC AUC, accuracy, loss...) once known."""
        return dict(self.refresh().get("metrics") or {})

    @property
    def report(self) -> Report:
        """The training report of the succeeded job (409 while it runs): its tables as
        text, its page with the plots in a notebook (see :class:`Report`)."""
        return self.client.report(self.id)

    @property
    def error(self) -> str | None:
        return self.refresh().get("error")

    @property
    def finished(self) -> bool:
        return self.status in {"succeeded", "failed", "cancelled", "lost"}

    # -- actions -----------------------------------------------------------------------

    def wait(self, timeout: float | None = None, *, check: bool = False) -> Job:
        """Block until the job finishes and return this handle; with ``check=True`` a job
        that did not succeed raises :class:`MlaasError` with its error."""
        self._last = self.client.wait(self.id, timeout=timeout)
        if check and self._last["state"] != "succeeded":
            why = self._last.get("error") or "no error recorded"
            raise MlaasError(f"job {self.id} ended {self._last['state']}: {why}")
        return self

    def cancel(self) -> Job:
        """Cancel the job if it is queued or running."""
        self._last = self.client.cancel(self.id)
        return self

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """The job's events after event number ``since`` (all by default), in order."""
        return self.client.events(self.id, since=since)

    def history(self) -> list[dict[str, Any]]:
        """The per-epoch records (``epoch`` events): loss, val_loss, val_auc..."""
        return [e for e in self.events() if e.get("type") == "epoch"]

    def logs(self) -> str:
        """What the job printed."""
        return self.client.logs(self.id)

    def __repr__(self) -> str:
        state = self._last["state"] if self._last else "?"
        return f"<mlaas Job {self.id} {state} via {self.client.transport}>"
