"""``YieldTable``: per class events, expected yield and negative-weight fraction.

What ``%mlaas stats`` returns and the TrainingStudio's "yields" button shows, from the
answer of :meth:`~mlaas_jupyter.client.Client.dataset_stats`: an HTML table in
notebooks, aligned text elsewhere.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["YieldTable"]

COLUMNS = ("class", "events", "yield", "negative w")


class YieldTable:
    """The per-class table of a statistics summary (``Client.dataset_stats``).

    Parameters
    ----------
    summary
        The summary: ``classes`` (name -> ``events``, ``yield``, ``negative_fraction``),
        ``luminosity`` (pb^-1 or None), and optionally ``weights`` and ``samples``.
    """

    def __init__(self, summary: Mapping[str, Any]) -> None:
        self.summary = dict(summary)
        self.classes: dict[str, dict[str, Any]] = dict(summary["classes"])
        self.luminosity: float | None = summary.get("luminosity")

    @property
    def rows(self) -> list[tuple[str, str, str, str]]:
        """One row of formatted cells per class (what both views show)."""
        return [
            (
                name,
                f"{int(row['events']):,}",
                f"{float(row['yield']):.6g}",
                f"{float(row['negative_fraction']):.1%}",
            )
            for name, row in self.classes.items()
        ]

    @property
    def caption(self) -> str:
        """What the yields mean: expected events at the luminosity, or weighted counts."""
        weights = self.summary.get("weights") or {}
        weighted = f"weights {weights['branch']}" if weights.get("branch") else "no weights"
        if weights.get("negative") and weights.get("negative") != "keep":
            weighted += f" (negative: {weights['negative']})"
        if self.luminosity is None:
            return f"not normalised: yield = weighted event count after cuts ({weighted})"
        return f"expected events after cuts at {self.luminosity:g} pb^-1 ({weighted})"

    def __repr__(self) -> str:
        table = [COLUMNS, *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
        lines = [
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            for row in table
        ]
        return "\n".join([self.caption, *lines])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='text-align: {'left' if i == 0 else 'right'}'>{html.escape(cell)}</td>"
                for i, cell in enumerate(row)
            )
            + "</tr>"
            for row in self.rows
        )
        return (
            f"<table class='mlaas-yields'><caption>{html.escape(self.caption)}</caption>"
            f"<tr>{head}</tr>{body}</table>"
        )
