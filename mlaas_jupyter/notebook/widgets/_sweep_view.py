"""``SweepView``: a sweep record as a notebook shows it: progress, trials, scatter.

The record (``client.sweep(id)``) becomes a line of progress (done, running, pruned,
failed), the best trial, a table of the trials (the best one starred) and the scatter
of each parameter against the metric (:func:`~mlaas_jupyter.train.plots.sweep_figure`).
:func:`show_sweep` is what ``%mlaas`` displays for a sweep; :class:`SweepStudio`
refreshes the same pieces while the sweep runs.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from typing import Any

from ...train._sweep_plots import best_text, sweep_figure, sweep_progress, sweep_rows

__all__ = ["SweepView", "show_sweep", "summary_html", "sweep_png", "trials_html"]

_STATE_COLOURS = {
    "succeeded": "var(--jp-success-color1, green)",
    "running": "var(--jp-brand-color1, steelblue)",
    "pruned": "var(--jp-ui-font-color2, grey)",
    "failed": "var(--jp-error-color1, red)",
    "lost": "var(--jp-error-color1, red)",
}
_FIXED = ("number", "state", "value", "best")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return html.escape(value)
    return html.escape(json.dumps(value))


def trials_html(record: Mapping[str, Any]) -> str:
    """The trials of ``record`` as an HTML table: number, state, each parameter, the
    metric, the best trial starred and in bold."""
    rows = sweep_rows(record)
    params = [k for k in (rows[0] if rows else {}) if k not in _FIXED]
    metric = html.escape(str(record.get("metric") or "value"))
    head = "".join(f"<th>{h}</th>" for h in ["#", "state", *map(html.escape, params), metric])
    body = []
    for row in rows:
        colour = _STATE_COLOURS.get(str(row["state"]), "inherit")
        cells = [
            f"{'★ ' if row['best'] else ''}{row['number']}",
            f"<span style='color: {colour}'>{_cell(row['state'])}</span>",
            *(_cell(row[p]) for p in params),
            _cell(row["value"]),
        ]
        style = " style='font-weight: bold'" if row["best"] else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        "<table class='mlaas-sweep-trials'><thead><tr>"
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def sweep_png(record: Mapping[str, Any]) -> bytes:
    """The scatter of each parameter against the metric, as PNG bytes."""
    buffer = io.BytesIO()
    sweep_figure(record).savefig(buffer, format="png")
    return buffer.getvalue()


def summary_html(record: Mapping[str, Any]) -> str:
    """The sweep's heading: name, state, progress, the best trial, the error."""
    title = html.escape(str(record.get("name") or record.get("id") or "sweep"))
    state = html.escape(str(record.get("state") or ""))
    lines = [
        f"<b>{title}</b> · {html.escape(str(record.get('id') or ''))} · "
        f"<span class='mlaas-state mlaas-state-{state}'>{state}</span>",
        html.escape(sweep_progress(record)),
    ]
    if best_text(record):
        lines.append(html.escape(best_text(record)))
    if record.get("error"):
        lines.append(
            f"<span style='color: var(--jp-error-color1, red)'>"
            f"{html.escape(str(record['error']))}</span>"
        )
    return "<br>".join(lines)


class SweepView:
    """A sweep record shown in a notebook: its heading, trial table and scatter.

    Parameters
    ----------
    record
        The sweep record (``client.sweep(id)``, ``client.submit_sweep(...)``).

    Examples
    --------
    >>> show_sweep(client.sweep("3f2a…"))  # doctest: +SKIP
    """

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = dict(record)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The trials as rows (see :func:`~mlaas_jupyter.train.plots.sweep_rows`)."""
        return sweep_rows(self.record)

    def figure(self) -> Any:
        """The scatter of each parameter against the metric (a matplotlib Figure)."""
        return sweep_figure(self.record)

    def to_html(self) -> str:
        """The heading, the table and the scatter (an inline PNG) as one HTML block."""
        parts = [f"<div class='mlaas-sweep'><p>{summary_html(self.record)}</p>"]
        parts.append(trials_html(self.record))
        if self.record.get("trials"):
            png = base64.b64encode(sweep_png(self.record)).decode("ascii")
            parts.append(f"<img alt='sweep scatter' src='data:image/png;base64,{png}'>")
        return "".join(parts) + "</div>"

    def __repr__(self) -> str:
        name = self.record.get("name") or self.record.get("id")
        return f"<sweep {name} {self.record.get('state')}: {sweep_progress(self.record)}>"

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        return {"text/html": self.to_html(), "text/plain": repr(self)}


def show_sweep(record: Mapping[str, Any]) -> SweepView:
    """The view of a sweep ``record``; a notebook displays it when it ends a cell (or
    pass it to ``IPython.display.display``)."""
    return SweepView(record)
