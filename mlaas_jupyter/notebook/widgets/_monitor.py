"""``TrainingMonitor``: a job's curves, progress and results, live and after the fact."""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ...client import Client
from ...client._job import Job
from ...errors import MlaasError
from ...train._curves import curve_series, curves_figure
from ...train._pace import training_pace

__all__ = ["TrainingMonitor", "physics_summary"]

_STATIC = Path(__file__).parent / "static"
_FINISHED = {"succeeded", "failed", "cancelled", "lost"}
_PLOTS = ("plots/roc.png", "plots/rejection.png", "plots/scores.png")


def _handle(job: Job | str | Mapping[str, Any], client: Client | None) -> Job:
    if isinstance(job, Job):
        return job
    return Job(job, client)


class TrainingMonitor(anywidget.AnyWidget):
    """Live view of a training job.

    The full history is replayed from the job's stored events when the monitor is
    created, so displaying it again after a kernel restart or a page reload shows
    everything; then new events are polled every ``interval`` seconds (one front-end
    update per poll at most) until the job finishes or the widget is closed.

    Parameters
    ----------
    job
        A :class:`~mlaas_jupyter.Job`, a job id or a job record.
    client
        The client to ask (default: a new :class:`Client`), when ``job`` is not a Job.
    interval
        Seconds between polls.
    follow
        Poll in a background thread; False shows what is known now (call :meth:`poll`).
    """

    _esm = _STATIC / "monitor.js"
    _css = _STATIC / "widgets.css"

    job_id = traitlets.Unicode().tag(sync=True)
    name = traitlets.Unicode().tag(sync=True)
    state = traitlets.Unicode("queued").tag(sync=True)
    executor = traitlets.Unicode().tag(sync=True)
    history = traitlets.List(traitlets.Dict()).tag(sync=True)
    progress = traitlets.Dict().tag(sync=True)
    #: the curves' names, losses apart from metrics (drawn on separate axes)
    series = traitlets.Dict().tag(sync=True)
    #: throughput and time left: "epoch 2/5 · 12,345 events/s · 37 s left"
    pace = traitlets.Unicode().tag(sync=True)
    metrics = traitlets.Dict().tag(sync=True)
    physics = traitlets.Unicode().tag(sync=True)
    bundle = traitlets.Unicode().tag(sync=True)
    error = traitlets.Unicode().tag(sync=True)
    images = traitlets.Dict().tag(sync=True)
    #: the training report of the succeeded job as HTML (its plots inlined); "" if none
    report = traitlets.Unicode().tag(sync=True)
    updates = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        job: Job | str | Mapping[str, Any],
        client: Client | None = None,
        *,
        interval: float = 0.5,
        follow: bool = True,
    ) -> None:
        handle = _handle(job, client)
        super().__init__(job_id=handle.id)
        self.job = handle
        self.interval = interval
        self.seq = 0
        self._paced: list[dict[str, Any]] = []  # the events the pace is read from
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.on_msg(self._on_front_end)
        self.poll()
        if follow and self.state not in _FINISHED:
            self._thread = threading.Thread(target=self._follow, name="mlaas-monitor", daemon=True)
            self._thread.start()

    # -- following ---------------------------------------------------------------------

    def poll(self) -> int:
        """Read the events after the last one seen and update the view once; returns
        how many events were new."""
        with self._lock:
            events = self.job.events(since=self.seq)
            record = self.job.refresh()
            if not events and record["state"] == self.state and self.updates:
                return 0
            history = list(self.history)
            progress = dict(self.progress)
            for event in events:
                self.seq = max(self.seq, int(event.get("seq", self.seq)))
                kind = event.get("type")
                if kind == "epoch":
                    history.append(_numbers(event, ("type", "job_id", "seq", "time")))
                    progress.update(epoch=event.get("epoch"), epochs=event.get("epochs"))
                elif kind == "progress":
                    progress.update(_numbers(event, ("type", "job_id", "seq", "time")))
                if kind == "progress" and self._paced and self._paced[-1]["type"] == "progress":
                    self._paced[-1] = dict(event)  # only the latest progress counts
                elif kind in ("epoch", "progress", "early_stop"):
                    self._paced.append(dict(event))
            planned = _planned_epochs(record)
            pace = training_pace(self._paced, planned)
            if planned and not progress.get("epochs"):
                progress["epochs"] = planned  # the bar moves before the first epoch ends
            metrics = _metrics(record.get("metrics") or {})
            changes: dict[str, Any] = {
                "name": str(record.get("name") or ""),
                "state": str(record["state"]),
                "executor": str(record.get("executor") or ""),
                "history": history,
                "series": curve_series(history),
                "progress": progress,
                "pace": pace.text(running=record["state"] == "running"),
                "metrics": metrics,
                "physics": physics_summary(metrics),
                "bundle": str(record.get("bundle") or ""),
                "error": str(record.get("error") or ""),
            }
            if changes["state"] == "succeeded" and not self.images:
                changes["images"] = self._plots()
                changes["report"] = self._report()
            with self.hold_sync():
                for key, value in changes.items():
                    setattr(self, key, value)
                self.updates += 1
            return len(events)

    def figure(self) -> Any:
        """The curves so far as a :class:`~matplotlib.figure.Figure`: the losses and
        the metrics on separate axes (see :func:`~mlaas_jupyter.train.plots.curves_figure`)."""
        return curves_figure(self.history)

    def _plots(self) -> dict[str, str]:
        found = {}
        for path in _PLOTS:
            try:
                data = self.job.client.artefact(self.job.id, path)
            except MlaasError:
                continue
            found[Path(path).stem] = base64.b64encode(data).decode("ascii")
        return found

    def _report(self) -> str:
        try:  # a run trained before reports existed has none
            return self.job.report._repr_html_()
        except MlaasError:
            return ""

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except MlaasError as err:  # the server went away: say so, keep the history
                self.error = f"lost contact with the job: {err}"
                return
            if self.state in _FINISHED:
                return

    def stop(self) -> None:
        """Stop following (the view keeps what it has)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        super().close()

    # -- actions -----------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the job (what the Cancel button does)."""
        self.job.cancel()
        self.poll()

    def _on_front_end(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("action") == "cancel":
            try:
                self.cancel()
            except MlaasError as err:
                self.error = str(err)


def _numbers(event: Mapping[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """The JSON-friendly fields of an event (numbers and short strings)."""
    return {
        k: v
        for k, v in event.items()
        if k not in skip and (isinstance(v, int | float | str) or v is None)
    }


def _metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics the view shows: the numbers, and the best cut (a mapping of them)."""
    out = _numbers(metrics, ())
    cut = metrics.get("best_cut")
    if isinstance(cut, Mapping):
        out["best_cut"] = _numbers(cut, ())
    return out


def _count(value: float) -> str:
    """Three significant digits, whole numbers with separators from 100 on."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def physics_summary(metrics: Mapping[str, Any]) -> str:
    """One line of a classifier's physics metrics, as the monitor and the jobs panel
    show them: weighted AUC, background rejection at 50% and 90% signal efficiency,
    the best cut with its Asimov Z and expected yields, the luminosity; "" if none."""
    parts = []
    if isinstance(metrics.get("auc_weighted"), int | float):
        parts.append(f"weighted AUC {metrics['auc_weighted']:.3f}")
    if "rejection_at_50" in metrics or "rejection_at_90" in metrics:
        at = [
            f"{_count(r) if isinstance(r, int | float) else 'n/a'} @ {eff}%"
            for eff, r in (
                (50, metrics.get("rejection_at_50")),
                (90, metrics.get("rejection_at_90")),
            )
        ]
        parts.append("rejection " + ", ".join(at))
    cut = metrics.get("best_cut")
    if isinstance(cut, Mapping) and isinstance(cut.get("significance"), int | float):
        parts.append(
            f"best cut ≥ {cut['score']:.3f}: Z {cut['significance']:.2f}"
            f" (s {_count(cut['signal'])}, b {_count(cut['background'])})"
        )
    if parts and isinstance(metrics.get("luminosity"), int | float):
        parts.append(f"{_count(metrics['luminosity'] / 1000)} fb⁻¹")
    return " · ".join(parts)


def _planned_epochs(record: Mapping[str, Any]) -> int | None:
    """The epochs the job's spec asks for (the time left before the first epoch ends)."""
    training = (record.get("spec") or {}).get("training")
    epochs = training.get("epochs") if isinstance(training, Mapping) else None
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
