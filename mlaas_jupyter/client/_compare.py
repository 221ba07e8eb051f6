"""`Comparison`: several finished runs side by side, from jobs and from run folders.

:func:`compare` gathers the runs (job ids through the client's transport, run folders
read here with the same functions as the core) and keeps their order; a
:class:`Comparison` shows them: a text table in terminals, the figure and HTML tables
in notebooks, a PNG/PDF/SVG file with :meth:`Comparison.save`.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core._compare import check_comparable
from ..errors import NotFound, SourceError, SpecError
from ..specs.requests import JOB_ID
from ..train.comparison import compare_runs, load_run, missing_notes, run_entry
from ..train.comparison_plots import FORMATS, comparison_image, draw_comparison

__all__ = ["Comparison", "compare", "run_kinds"]

Call = Callable[..., Any]


def compare(call: Call | None, items: Sequence[str | os.PathLike[str]]) -> Comparison:
    """The comparison of ``items`` in order: existing folders are run folders read
    here, other strings job ids asked through ``call`` (a transport's ``call``; None:
    only folders may be given)."""
    kinds = run_kinds(items)
    ids = [text for kind, text in kinds if kind == "job"]
    if ids and call is None:
        raise SpecError("jobs", f"{ids[0]!r} is no run folder here (job ids need a client)")
    remote = _job_runs(call, ids) if ids and call is not None else {}
    runs = [remote[text] if kind == "job" else load_run(text) for kind, text in kinds]
    return Comparison(compare_runs(runs))


def run_kinds(items: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    """``("folder", path)`` for a path or an existing folder, ``("job", id)`` for
    another string that can be a job id; at least two of them (SpecError), and
    SourceError for a string that is neither."""
    if len(items) < 2:
        raise SpecError(
            "jobs", f"give at least 2 job ids or run folders to compare, got {len(items)}"
        )
    kinds: list[tuple[str, str]] = []
    for item in items:
        text = os.fspath(item)
        if isinstance(item, os.PathLike) or os.path.isdir(text):
            kinds.append(("folder", text))
        elif JOB_ID.fullmatch(text):
            kinds.append(("job", text))
        else:
            raise SourceError(text, "no such run folder, nor a job id")
    return kinds


def _job_runs(call: Call, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The run entries of jobs by id: ``GET compare`` for two or more, one job's
    manifest and curves through its artefacts (the route compares two at least)."""
    if len(ids) >= 2:
        return {run["id"]: run for run in call("compare_jobs", query={"jobs": ids})["runs"]}
    job = call("get_job", {"job_id": ids[0]})
    check_comparable(job)
    manifest = json.loads(
        call("get_artefact", {"job_id": job["id"], "path": "bundle/manifest.json"})
    )
    try:
        curves = json.loads(
            call("get_artefact", {"job_id": job["id"], "path": "plots/curves.json"})
        )
    except NotFound:
        curves = None
    entry = run_entry(manifest, curves, run_id=job["id"], name=job["name"], run_dir=job["run_dir"])
    return {job["id"]: entry}


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


class Comparison:
    """Finished runs side by side (what ``Client.compare`` returns).

    ``to_dict()`` is the comparison JSON (``runs``, ``metrics``, ``differences``),
    ``table`` the metrics as rows, ``differences`` what differs between the specs,
    ``figure()`` the overlaid curves and ``save(path)`` writes them to a file.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self._png: bytes | None = None

    @property
    def runs(self) -> list[dict[str, Any]]:
        """The run entries, in the order given."""
        return list(self._data["runs"])

    @property
    def labels(self) -> list[str]:
        """Each run's label (its name, with its id where names repeat)."""
        return [str(run["label"]) for run in self._data["runs"]]

    @property
    def table(self) -> list[dict[str, Any]]:
        """One row per test metric: ``{"metric": name, label: value, ...}``."""
        return [
            {"metric": name, **{run["label"]: run["metrics"].get(name) for run in self.runs}}
            for name in self._data["metrics"]
        ]

    @property
    def differences(self) -> list[dict[str, Any]]:
        """The spec fields that differ: ``{"field", "values", "text"}`` each."""
        return list(self._data["differences"])

    def to_dict(self) -> dict[str, Any]:
        """The comparison JSON (a copy)."""
        return copy.deepcopy(self._data)

    def figure(self) -> Any:
        """The comparison figure: a :class:`matplotlib.figure.Figure`."""
        return draw_comparison(self._data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the figure to ``path`` (``.png``, ``.pdf`` or ``.svg``); returns it."""
        target = Path(path)
        fmt = target.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            allowed = ", ".join(f".{f}" for f in FORMATS)
            raise SpecError("path", f"{str(target)!r}: save as {allowed}")
        target.write_bytes(self.png() if fmt == "png" else comparison_image(self._data, fmt))
        return target

    def png(self) -> bytes:
        """The figure as PNG bytes (drawn once)."""
        if self._png is None:
            self._png = comparison_image(self._data, "png")
        return self._png

    def notes(self) -> list[str]:
        """What each run lacks (no curves.json, no ROC curves for a regression...)."""
        return missing_notes(self.runs)

    def text(self) -> str:
        """The metrics table and the differences as text (``mlaas compare`` prints it)."""
        labels = self.labels
        rows = [["metric", *labels]]
        rows += [[row["metric"], *(_number(row[label]) for label in labels)] for row in self.table]
        parts = [_columns(rows) if len(rows) > 1 else "no test metrics recorded"]
        runs = [["run", "model", "folder"]] + [
            [str(run["label"]), str(run["model"]), str(run["run_dir"])] for run in self.runs
        ]
        parts.append(_columns(runs))
        if self.differences:
            diff = [["differs", *labels]] + [[d["field"], *d["text"]] for d in self.differences]
            parts.append(_columns(diff))
        else:
            parts.append("the specs do not differ")
        parts += self.notes()
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        return self.text()

    def _html_table(self, head: list[str], rows: list[list[str]], css: str) -> str:
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        return f"<table class='{css}'><tr>{cells}</tr>{body}</table>"

    def _repr_html_(self) -> str:
        labels = self.labels
        image = base64.b64encode(self.png()).decode("ascii")
        metrics = [
            [row["metric"], *(_number(row[label]) for label in labels)] for row in self.table
        ]
        models = [[str(run["label"]), str(run["model"]), str(run["run_dir"])] for run in self.runs]
        diff = [[d["field"], *d["text"]] for d in self.differences]
        parts = [
            f"<img alt='comparison' style='max-width:100%' src='data:image/png;base64,{image}'/>",
            "<h4>metrics (test split)</h4>",
            self._html_table(["metric", *labels], metrics, "mlaas-compare-metrics"),
            self._html_table(["run", "model", "folder"], models, "mlaas-compare-runs"),
            "<h4>spec differences</h4>",
            self._html_table(["field", *labels], diff, "mlaas-compare-differences")
            if diff
            else "<p>the specs do not differ</p>",
            *(f"<p><em>{html.escape(note)}</em></p>" for note in self.notes()),
        ]
        return "<div class='mlaas-compare'>" + "".join(parts) + "</div>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": self.text(),
            "text/html": self._repr_html_(),
            "image/png": base64.b64encode(self.png()).decode("ascii"),
        }
