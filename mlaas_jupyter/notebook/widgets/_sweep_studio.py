"""``SweepStudio``: pick a spec and the parameters to search, Start, watch the sweep.

A physicist writes the parameters one a line, as ``%mlaas sweep --param`` takes them
(``model.hidden = 64,128,256``, ``training.learning_rate = loguniform:1e-4:1e-2``),
chooses trials, parallel trials, sampler and metric, and presses Start: the studio
calls ``client.submit_sweep`` and then polls ``client.sweep(id)``, showing the counts
(done, running, pruned, failed), the trial table and the scatter of each parameter
against the metric (:mod:`._sweep_view`). Cancel calls ``client.cancel_sweep(id)``.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import ipywidgets as w

from ...client import Client
from ...errors import MlaasError, SpecError
from ...specs.sweep import parse_param
from ...specs.training import TrainSpec
from ._sweep_view import summary_html, sweep_png, trials_html

__all__ = ["SweepStudio", "parse_param_lines"]

_ENDED = frozenset({"succeeded", "failed", "cancelled", "lost"})
_STYLE = {"description_width": "8em"}


class _SpecSource(Protocol):
    """What gives a spec: a :class:`TrainingStudio` (its current choice)."""

    def spec(self) -> dict[str, Any]: ...


def parse_param_lines(text: str) -> dict[str, str]:
    """The parameters of ``text``, one ``PATH = FORM`` a line (blank lines and ``#``
    comments skipped), as path -> form; :class:`SpecError` naming the line or the
    parameter when one is wrong (the forms are checked as the sweep request checks them)."""
    params: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        path, equals, form = (part.strip() for part in line.partition("="))
        if not equals:
            raise SpecError(
                f"params line {number}",
                f"expected PATH = FORM (e.g. model.hidden = 64,128,256), got {line!r}",
            )
        if path in params:
            raise SpecError(f"params.{path}", f"given twice (line {number})")
        parse_param(path, form)
        params[path] = form
    if not params:
        raise SpecError(
            "params", "add a parameter, e.g. training.learning_rate = loguniform:1e-4:1e-2"
        )
    return params


class SweepStudio(w.VBox):  # type: ignore[misc]
    """Start a hyperparameter sweep of a training spec and watch its trials.

    Parameters
    ----------
    spec
        The spec to sweep: a YAML/JSON file, a spec mapping, or a
        :class:`TrainingStudio` (its spec when Start is pressed); None: type a file.
    params
        The parameters to start with, path -> form (also editable in the box).
    client
        Where the sweep runs (default: the Jupyter server when found, else embedded).
    interval
        Seconds between polls of the running sweep.

    Examples
    --------
    >>> SweepStudio("train.yaml", {"model.hidden": "64,128,256"})  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: str | Path | Mapping[str, Any] | _SpecSource | None = None,
        params: Mapping[str, str] | None = None,
        *,
        client: Client | None = None,
        interval: float = 1.0,
    ) -> None:
        self.client = client
        self.interval = interval
        self.source: Mapping[str, Any] | _SpecSource | None = None
        if spec is not None and not isinstance(spec, str | Path):
            self.source = spec
        given = "the training studio's spec" if hasattr(spec, "spec") else "the spec given"
        self.spec_box = w.Text(
            value=str(spec) if isinstance(spec, str | Path) else "",
            placeholder=f"train.yaml (empty: {given})" if self.source is not None else "train.yaml",
            description="spec file",
            style=_STYLE,
        )
        lines = "\n".join(f"{path} = {form}" for path, form in (params or {}).items())
        self.params_box = w.Textarea(
            value=lines,
            placeholder="model.hidden = 64,128,256\ntraining.learning_rate = loguniform:1e-4:1e-2",
            description="parameters",
            rows=4,
            style=_STYLE,
            layout=w.Layout(width="36em"),
        )
        self.trials = w.BoundedIntText(
            0, min=0, max=10_000, description="trials (0: auto)", style=_STYLE
        )
        self.parallel = w.BoundedIntText(1, min=1, max=64, description="parallel", style=_STYLE)
        self.sampler = w.Dropdown(
            options=["tpe", "random", "grid"], description="sampler", style=_STYLE
        )
        self.metric = w.Text(
            placeholder="val_auc (val_loss for regression)", description="metric", style=_STYLE
        )
        self.direction = w.Dropdown(
            options=["auto", "maximize", "minimize"], description="direction", style=_STYLE
        )
        self.prune = w.Checkbox(True, description="prune poor trials", indent=False)
        self.executor = w.Dropdown(
            options=["default", "kernel", "dask", "local"], description="executor", style=_STYLE
        )
        self.name = w.Text(
            placeholder="the sweep's (and best model's) name", description="name", style=_STYLE
        )
        self.start_button = w.Button(description="Start", button_style="primary", icon="play")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.start_button.on_click(lambda _: self._press(self.start))
        self.cancel_button.on_click(lambda _: self._press(self.cancel))
        self.status = w.HTML()
        self.summary = w.HTML()
        self.table = w.HTML()
        self.scatter = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.sweep_id: str | None = None
        self.record: dict[str, Any] = {}
        self._drawn: Any = None  # what the scatter shows, to redraw only on a change
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        form = w.VBox(
            [
                self.spec_box,
                self.params_box,
                w.HBox([self.trials, self.parallel]),
                w.HBox([self.sampler, self.executor]),
                w.HBox([self.metric, self.direction]),
                w.HBox([self.name, self.prune]),
                w.HBox([self.start_button, self.cancel_button, self.status]),
            ]
        )
        super().__init__([form, self.summary, self.table, self.scatter])

    # -- the request -------------------------------------------------------------------

    def spec(self) -> dict[str, Any] | str:
        """The spec to sweep: the file typed, else the spec given (a TrainingStudio's
        current one, its paths made absolute: the trials may run in another folder)."""
        typed = str(self.spec_box.value).strip()
        if typed:
            return typed
        if self.source is None:
            raise SpecError("spec", "give a spec file (e.g. train.yaml) to sweep")
        spec = self.source if isinstance(self.source, Mapping) else self.source.spec()
        return TrainSpec.from_dict(dict(spec), Path.cwd()).to_dict()

    def request(self) -> dict[str, Any]:
        """The keyword arguments of ``client.submit_sweep`` that the form says."""
        return {
            "spec": self.spec(),
            "params": parse_param_lines(self.params_box.value),
            "trials": self.trials.value or None,
            "parallel": self.parallel.value,
            "sampler": self.sampler.value,
            "metric": self.metric.value.strip() or None,
            "direction": None if self.direction.value == "auto" else self.direction.value,
            "prune": self.prune.value,
            "executor": None if self.executor.value == "default" else self.executor.value,
            "name": self.name.value.strip() or None,
        }

    def _client(self) -> Client:
        if self.client is None:
            self.client = Client()
        return self.client

    # -- actions -----------------------------------------------------------------------

    def _press(self, action: Any) -> None:
        """A button's action; a wrong choice or a refusal shows next to the buttons."""
        try:
            action()
        except MlaasError as err:
            self.status.value = (
                f"<span style='color: var(--jp-error-color1)'>{html.escape(str(err))}</span>"
            )

    def start(self) -> dict[str, Any]:
        """Submit the sweep (what Start does), show it and follow it; its record."""
        if self.record.get("state") == "running":
            raise MlaasError(f"sweep {self.sweep_id} is still running: cancel it first")
        record = self._client().submit_sweep(**self.request())
        self.stop()
        self.sweep_id = str(record["id"])
        self.status.value = f"started sweep {html.escape(self.sweep_id)}"
        self.show(record)
        if record.get("state") not in _ENDED:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._follow, name="mlaas-sweep", daemon=True)
            self._thread.start()
        return record

    def cancel(self) -> dict[str, Any]:
        """Cancel the sweep and its queued and running trials (what Cancel does)."""
        if self.sweep_id is None:
            raise MlaasError("no sweep to cancel: press Start first")
        record = self._client().cancel_sweep(self.sweep_id)
        self.show(record)
        return record

    def poll(self) -> dict[str, Any]:
        """Ask for the sweep's record now and show it."""
        if self.sweep_id is None:
            raise MlaasError("no sweep yet: press Start first")
        record = self._client().sweep(self.sweep_id)
        self.show(record)
        return record

    def show(self, record: Mapping[str, Any]) -> None:
        """Show ``record``: heading and counts, the trial table, the scatter (redrawn
        only when a trial's state, value or parameters changed)."""
        with self._lock:
            self.record = dict(record)
            self.summary.value = summary_html(record)
            self.table.value = trials_html(record)
            drawn = [
                (
                    t.get("number"),
                    t.get("state"),
                    t.get("value"),
                    sorted((t.get("params") or {}).items()),
                )
                for t in record.get("trials") or ()
            ]
            if drawn and drawn != self._drawn:
                self.scatter.value = sweep_png(record)
            self._drawn = drawn
            self.start_button.disabled = record.get("state") == "running"
            self.cancel_button.disabled = record.get("state") != "running"

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                record = self.poll()
            except MlaasError as err:  # the server went away: say so, keep the view
                self.status.value = f"lost contact with the sweep: {html.escape(str(err))}"
                return
            if record.get("state") in _ENDED:
                return

    def stop(self) -> None:
        """Stop following (the sweep goes on; :meth:`poll` shows it again)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        super().close()
