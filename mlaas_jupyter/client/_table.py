"""`JobTable`: a list of jobs as a table (HTML in notebooks, text in terminals).

What ``%mlaas jobs`` and ``mlaas jobs list`` show: id, name, state, executor,
progress, best validation AUC and age of each job record the client returns.
"""

from __future__ import annotations

import html
import time
from typing import Any

__all__ = ["JobTable", "job_progress"]


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def job_progress(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    if job["state"] == "succeeded":
        return "done"
    if "epoch" in progress and progress.get("epochs"):
        return f"epoch {progress['epoch']}/{progress['epochs']}"
    return ""


class JobTable:
    """The result of ``%mlaas jobs``: an HTML table in notebooks, text elsewhere."""

    columns = ("id", "name", "state", "executor", "progress", "best val AUC", "age")

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        now = time.time()
        self.jobs = jobs
        self.rows = [
            (
                job["id"],
                job.get("name") or "",
                job["state"],
                job.get("executor") or "",
                job_progress(job),
                _best_auc(job),
                _age(now - float(job.get("created") or now)),
            )
            for job in jobs
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return "no jobs"
        table = [self.columns, *self.rows]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(self.columns))]
        return "\n".join(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in table
        ).rstrip()

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<em>no jobs</em>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
            for row in self.rows
        )
        return f"<table class='mlaas-jobs'><tr>{head}</tr>{body}</table>"


def _best_auc(job: dict[str, Any]) -> str:
    metrics = job.get("metrics") or {}
    value = metrics.get("best_val_auc", metrics.get("val_auc", metrics.get("auc")))
    if value is None:
        value = (job.get("progress") or {}).get("val_auc")
    return f"{value:.3f}" if isinstance(value, int | float) else ""
