"""The tables of a training report as rows of text cells (the page and the terminal).

Each function turns one section of ``report.json`` into rows of strings, so that
:func:`~mlaas_jupyter.train.report_html.report_html` and
:func:`~mlaas_jupyter.train.report_html.report_text` show the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "binned_rows",
    "efficiency_rows",
    "fold_table",
    "matrix_rows",
    "number",
    "overtraining_rows",
    "ranking_rows",
    "regression_rows",
    "report_dict",
    "summary_rows",
]

#: the background efficiencies of the efficiency table, as report.json keys them
_BACKGROUND_EFFICIENCIES = ("0.001", "0.01", "0.1", "0.3")


def report_dict(report: Any) -> dict[str, Any]:
    """The report as plain JSON data: a ``Report`` model is dumped, a mapping copied."""
    if hasattr(report, "model_dump"):
        return dict(report.model_dump(mode="json"))
    return dict(report)


def number(value: Any) -> str:
    """A value as a table cell: 4 significant digits, ``n/a`` for None."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _percent(key: str) -> str:
    try:
        return f"{float(key) * 100:g}%"
    except ValueError:
        return key


# -- the sections as rows (shared by the page and the text) ---------------------------


def summary_rows(data: Mapping[str, Any]) -> list[list[str]]:
    rows = [["task", str(data.get("task"))]]
    if data.get("classes"):
        rows.append(["classes", ", ".join(map(str, data["classes"]))])
    if data.get("signal") is not None:
        rows.append(["signal", str(data["signal"])])
    if data.get("split") is not None:
        rows.append(["split", str(data["split"])])
    for split, events in (data.get("events") or {}).items():
        rows.append([f"events ({split})", number(events)])
    return rows


def overtraining_rows(section: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for name, entry in (section.get("classes") or {}).items():
        flagged = bool(entry.get("flagged"))
        verdict = "overtrained?" if flagged else "ok"
        rows.append(
            [
                str(name),
                number(entry.get("ks_statistic")),
                number(entry.get("ks_pvalue")),
                verdict,
            ]
        )
    return rows


def ranking_rows(entries: Sequence[Mapping[str, Any]], *keys: str) -> list[list[str]]:
    rows = []
    for rank, entry in enumerate(entries, start=1):
        rows.append([str(rank), *(number(entry.get(key)) for key in keys)])
    return rows


def efficiency_rows(section: Mapping[str, Any]) -> list[list[str]]:
    at = section.get("signal_at_background") or {}
    keys = [k for k in _BACKGROUND_EFFICIENCIES if k in at] + sorted(
        k for k in at if k not in _BACKGROUND_EFFICIENCIES
    )
    rows = [[f"signal eff. at bkg eff. {_percent(k)}", number(at[k])] for k in keys]
    rows.append(["ROC integral", number(section.get("roc_integral"))])
    rows.append(["separation", number(section.get("separation"))])
    return rows


def regression_rows(section: Mapping[str, Any]) -> list[list[str]]:
    return [[key, number(section.get(key))] for key in ("mean", "std", "r2", "mae")]


def binned_rows(section: Mapping[str, Any]) -> list[list[str]]:
    return [
        [number(b.get(k)) for k in ("low", "high", "events", "bias", "resolution")]
        for b in section.get("binned") or []
    ]


def fold_table(folds: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    names: list[str] = []
    for fold in folds:
        for key, value in (fold.get("metrics") or {}).items():
            if key not in names and (value is None or isinstance(value, int | float)):
                names.append(key)
    rows = [
        [number(fold.get("fold")), *(number((fold.get("metrics") or {}).get(n)) for n in names)]
        for fold in folds
    ]
    return ["fold", *names], rows


def matrix_rows(labels: Sequence[str], matrix: Sequence[Sequence[Any]]) -> list[list[str]]:
    return [[str(label), *map(number, row)] for label, row in zip(labels, matrix, strict=False)]
