"""The training report (``report.json``) shown as a page and as terminal text.

:func:`report_html` writes one self-contained HTML page in the spirit of TMVA's
output: the summary, the overtraining check (Kolmogorov-Smirnov p-value per class,
flagged below the threshold), the variable ranking, the correlation matrices, the
signal efficiencies, the confusion matrix and one-vs-rest AUCs of a multiclass
model, the residuals of a regression and the per-fold metrics of a k-fold run. The
report's plots (``plots/report_*.png`` of the run folder) are inlined as base64 PNG,
so the page needs no other file. :func:`report_text` prints the same tables for a
terminal. Every string of the report is escaped: a class or branch name is text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._report_rows import (
    binned_rows,
    efficiency_rows,
    fold_table,
    matrix_rows,
    number,
    overtraining_rows,
    ranking_rows,
    regression_rows,
    report_dict,
    summary_rows,
)

__all__ = ["report_dict", "report_html", "report_text"]

_STYLE = """
.mlaas-report{font-family:sans-serif;font-size:13px;line-height:1.4;max-width:1100px}
.mlaas-report h2{font-size:18px;margin:.2em 0}
.mlaas-report h3{font-size:15px;margin:1em 0 .3em;border-bottom:1px solid #ccc}
.mlaas-report table{border-collapse:collapse;margin:.3em 0 .6em}
.mlaas-report th,.mlaas-report td{border:1px solid #ddd;padding:2px 8px;text-align:right}
.mlaas-report th{background:#f3f3f3}
.mlaas-report td.name,.mlaas-report th.name{text-align:left}
.mlaas-report .flagged{color:#b00000;font-weight:bold}
.mlaas-report img{max-width:100%;display:block;margin:.4em 0}
.mlaas-report .note{color:#666;font-style:italic}
"""

# -- HTML -----------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """A table of text cells (escaped); the first column is a name (left aligned)."""
    cls = f" class='{html.escape(css, quote=True)}'" if css else ""
    top = "".join(
        f"<th{' class=name' if i == 0 else ''}>{html.escape(h)}</th>" for i, h in enumerate(head)
    )
    top = f"<tr>{top}</tr>" if any(head) else ""
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=name' if i == 0 else ''}>{html.escape(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table{cls}>{top}{body}</table>"


def _heat_table(labels: Sequence[str], matrix: Sequence[Sequence[Any]], css: str) -> str:
    """A matrix as a table with red (positive) and blue (negative) cell backgrounds."""
    top = "<th></th>" + "".join(f"<th>{html.escape(str(label))}</th>" for label in labels)
    rows = []
    for label, row in zip(labels, matrix, strict=False):
        cells = []
        for value in row:
            colour = ""
            if isinstance(value, int | float) and not isinstance(value, bool):
                alpha = min(abs(float(value)), 1.0) * 0.8
                rgb = "214,39,40" if value >= 0 else "31,119,180"
                colour = f" style='background:rgba({rgb},{alpha:.2f})'"
            cells.append(f"<td{colour}>{html.escape(number(value))}</td>")
        rows.append(f"<tr><th class=name>{html.escape(str(label))}</th>{''.join(cells)}</tr>")
    return f"<table class='{css}'><tr>{top}</tr>{''.join(rows)}</table>"


def _plots(data: Mapping[str, Any], run_dir: Path | None) -> dict[str, bytes]:
    """The report's PNG plots by name, read from ``run_dir/plots/report_*.png`` (only
    files inside that folder: a path in report.json cannot reach out of it)."""
    if run_dir is None:
        return {}
    folder = (Path(run_dir) / "plots").resolve()
    if not folder.is_dir():
        return {}
    found: dict[str, bytes] = {}
    for name, relative in (data.get("plots") or {}).items():
        path = (Path(run_dir) / str(relative)).resolve()
        if path.parent == folder and path.suffix == ".png" and path.is_file():
            found[str(name)] = path.read_bytes()
    named = {(Path(run_dir) / str(p)).resolve() for p in (data.get("plots") or {}).values()}
    for path in sorted(folder.glob("report_*.png")):
        if path.resolve() not in named and path.is_file():
            found[path.stem.removeprefix("report_")] = path.read_bytes()
    return found


def _image(plots: dict[str, bytes], name: str) -> str:
    png = plots.pop(name, None)
    if png is None:
        return ""
    encoded = base64.b64encode(png).decode("ascii")
    alt = html.escape(f"{name} plot", quote=True)
    return f"<img alt='{alt}' src='data:image/png;base64,{encoded}'/>"


def _sampled(ranking: Mapping[str, Any]) -> str:
    events, repeats = ranking.get("events"), ranking.get("repeats")
    return f" ({events} events, {repeats} permutations each)" if events and repeats else ""


def _html_sections(data: Mapping[str, Any], plots: dict[str, bytes]) -> list[str]:
    parts = ["<h3>Summary</h3>", _table(["", ""], summary_rows(data), "summary")]
    if over := data.get("overtraining"):
        threshold = number(over.get("threshold"))
        rows = overtraining_rows(over)
        body = "".join(
            f"<tr{' class=flagged' if row[3] != 'ok' else ''}>"
            + "".join(
                f"<td{' class=name' if i == 0 else ''}>{html.escape(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for row in rows
        )
        head = "<tr><th class=name>class</th><th>KS statistic</th><th>KS p-value</th><th>check</th>"
        flagged = ", ".join(map(str, over.get("flagged") or [])) or "none"
        parts += [
            "<h3>Overtraining check (Kolmogorov-Smirnov, train vs test)</h3>",
            f"<p>{html.escape(str(over.get('score') or 'score'))}: "
            f"flagged when the p-value is below {html.escape(threshold)}; "
            f"flagged: <span class='{'flagged' if over.get('flagged') else ''}'>"
            f"{html.escape(flagged)}</span></p>",
            f"<table class='overtraining'>{head}</tr>{body}</table>",
            _image(plots, "overtraining"),
        ]
    if ranking := data.get("ranking"):
        metric = html.escape(str(ranking.get("metric")))
        parts += [
            "<h3>Variable ranking (permutation importance)</h3>",
            f"<p>drop of the {metric} when a variable is shuffled; baseline "
            f"{html.escape(number(ranking.get('baseline')))}"
            f"{html.escape(_sampled(ranking))}</p>",
        ]
        variables = ranking.get("variables") or []
        parts.append(
            _table(
                ["rank", "variable", "kind", "importance", "std"],
                ranking_rows(variables, "name", "kind", "importance", "std"),
                "ranking",
            )
        )
        if columns := ranking.get("columns"):
            parts += [
                "<h4>per column</h4>",
                _table(
                    ["rank", "column", "variable", "importance", "std"],
                    ranking_rows(columns, "name", "variable", "importance", "std"),
                    "ranking-columns",
                ),
            ]
        if native := ranking.get("native"):
            parts += [
                "<h4>native (BDT split gain)</h4>",
                _table(
                    ["rank", "variable", "importance"],
                    ranking_rows(native, "name", "importance"),
                    "ranking-native",
                ),
            ]
        parts.append(_image(plots, "ranking"))
    if correlations := data.get("correlations"):
        labels = [str(v) for v in correlations.get("variables") or []]
        parts.append("<h3>Correlation matrices (linear, weighted)</h3>")
        for name, matrix in (correlations.get("classes") or {}).items():
            parts += [f"<h4>{html.escape(str(name))}</h4>", _heat_table(labels, matrix, "corr")]
        for key, what in (("constant", "constant, left out"), ("masks", "masks, left out")):
            if correlations.get(key):
                names = ", ".join(map(str, correlations[key]))
                parts.append(f"<p class='note'>{what}: {html.escape(names)}</p>")
        parts.append(_image(plots, "correlations"))
    if efficiencies := data.get("efficiencies"):
        signal = html.escape(str(data.get("signal") or "signal"))
        parts += [
            f"<h3>Efficiencies ({signal} vs the rest)</h3>",
            _table(["", "value"], efficiency_rows(efficiencies), "efficiencies"),
            _image(plots, "roc"),
        ]
    if confusion := data.get("confusion"):
        labels = [str(c) for c in confusion.get("classes") or []]
        parts += ["<h3>Confusion matrix (true class by row)</h3>"]
        if confusion.get("normalised") is not None:
            parts.append(_heat_table(labels, confusion["normalised"], "confusion-normalised"))
        if confusion.get("matrix") is not None:
            rows = matrix_rows(labels, confusion["matrix"])
            parts += ["<h4>weighted counts</h4>", _table(["true", *labels], rows, "confusion")]
        parts.append(_image(plots, "confusion"))
    if one_vs_rest := data.get("one_vs_rest"):
        rows = [[str(name), number(entry.get("auc"))] for name, entry in one_vs_rest.items()]
        parts += ["<h3>One vs rest</h3>", _table(["class", "AUC"], rows, "one-vs-rest")]
    if regression := data.get("regression"):
        parts += [
            "<h3>Regression</h3>",
            _table(["", "value"], regression_rows(regression), "regression"),
        ]
        if binned := binned_rows(regression):
            columns = ["low", "high", "events", "bias", "resolution"]
            parts += ["<h4>bias and resolution by target</h4>", _table(columns, binned, "binned")]
        for key in ("bias_definition", "resolution_definition"):
            if regression.get(key):
                parts.append(f"<p class='note'>{html.escape(str(regression[key]))}</p>")
        parts += [_image(plots, "residuals"), _image(plots, "regression")]
    if folds := data.get("folds"):
        fold_head, fold_rows = fold_table(folds)
        parts += ["<h3>Folds</h3>", _table(fold_head, fold_rows, "folds")]
    if notes := data.get("notes"):
        parts.append("<h3>Notes</h3><ul>")
        parts += [f"<li>{html.escape(str(note))}</li>" for note in notes]
        parts.append("</ul>")
    if plots:
        parts.append("<h3>Other plots</h3>")
        parts += [_image(plots, name) for name in sorted(plots)]
    return [part for part in parts if part]


def report_html(report: Any, run_dir: Path | str | None = None, *, page: bool = True) -> str:
    """The report as HTML: a whole page (``page=True``) or one ``<div>`` for a notebook.

    Parameters
    ----------
    report
        The report: the dict of ``report.json`` or a ``Report`` model.
    run_dir
        The run folder whose ``plots/report_*.png`` are inlined (None: no plots).
    page
        A complete ``<!DOCTYPE html>`` document, else a fragment with its style.
    """
    data = report_dict(report)
    plots = _plots(data, Path(run_dir) if run_dir is not None else None)
    title = f"mlaas training report ({data.get('task')})"
    body = (
        f"<div class='mlaas-report'><style>{_STYLE}</style><h2>{html.escape(title)}</h2>"
        + "".join(_html_sections(data, plots))
        + "</div>"
    )
    if not page:
        return body
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>\n"
    )


# -- text -----------------------------------------------------------------------------


def _numeric(cell: str) -> bool:
    try:
        float(cell.rstrip("%"))
    except ValueError:
        return cell == "n/a"
    return True


def _columns(head: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns: numbers to the right, text to the left (no header when None)."""
    table = ([list(head)] if head is not None else []) + [list(row) for row in rows]
    if not table:
        return ""
    count = max(map(len, table))
    widths = [max(len(row[i]) for row in table if i < len(row)) for i in range(count)]
    right = [
        bool(rows) and all(_numeric(row[i]) for row in rows if i < len(row)) for i in range(count)
    ]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if right[i] else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ).rstrip()
        for row in table
    )


def report_text(report: Any) -> str:
    """The report's tables as aligned text for a terminal (``mlaas report`` prints it)."""
    data = report_dict(report)
    parts = ["training report\n" + _columns(None, summary_rows(data))]
    if over := data.get("overtraining"):
        parts.append(
            f"overtraining check (KS p-value < {number(over.get('threshold'))} is flagged)\n"
            + _columns(["class", "KS stat", "p-value", "check"], overtraining_rows(over))
        )
    if ranking := data.get("ranking"):
        parts.append(
            f"variable ranking ({ranking.get('metric')} drop, baseline "
            f"{number(ranking.get('baseline'))})\n"
            + _columns(
                ["rank", "variable", "kind", "importance", "std"],
                ranking_rows(ranking.get("variables") or [], "name", "kind", "importance", "std"),
            )
        )
        if native := ranking.get("native"):
            parts.append(
                "native ranking (BDT split gain)\n"
                + _columns(
                    ["rank", "variable", "importance"], ranking_rows(native, "name", "importance")
                )
            )
    if efficiencies := data.get("efficiencies"):
        parts.append("efficiencies\n" + _columns(None, efficiency_rows(efficiencies)))
    if confusion := data.get("confusion"):
        labels = [str(c) for c in confusion.get("classes") or []]
        matrix = confusion.get("normalised") or confusion.get("matrix") or []
        parts.append(
            "confusion matrix (true class by row, row fractions)\n"
            + _columns(["true", *labels], matrix_rows(labels, matrix))
        )
    if one_vs_rest := data.get("one_vs_rest"):
        rows = [[str(name), number(entry.get("auc"))] for name, entry in one_vs_rest.items()]
        parts.append("one vs rest\n" + _columns(["class", "AUC"], rows))
    if regression := data.get("regression"):
        parts.append("regression\n" + _columns(None, regression_rows(regression)))
        if binned := binned_rows(regression):
            head = ["low", "high", "events", "bias", "resolution"]
            parts.append("bias and resolution by target\n" + _columns(head, binned))
    if folds := data.get("folds"):
        head, rows = fold_table(folds)
        parts.append("folds\n" + _columns(head, rows))
    if notes := data.get("notes"):
        parts.append("notes\n" + "\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)
