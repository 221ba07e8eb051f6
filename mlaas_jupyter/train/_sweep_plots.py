"""A sweep read at a glance: its trials as table rows, each parameter against the metric.

Both read a sweep record (``GET sweeps/{id}``: ``trials`` with ``number``, ``state``,
``params``, ``value``; ``best``; ``metric``; ``direction``; ``request`` with the
parameters' forms) and nothing else, so the SweepStudio widget, the ``%mlaas`` display
and a script draw the same view. The figure is one scatter per parameter, the metric on
the y axis: a ``loguniform``/``logint`` parameter on a log axis, a choice of words
(``relu,tanh``) as categories; pruned trials (their last reported value) and failed
trials (no value: drawn along the bottom) are drawn apart, the best trial starred.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from ..specs.sweep import parse_param

__all__ = ["best_text", "param_scales", "sweep_figure", "sweep_progress", "sweep_rows"]

_LOG = frozenset({"loguniform", "logint"})
#: How each trial state is drawn: (legend label, marker, colour, filled).
_STYLES = {
    "succeeded": ("succeeded", "o", "tab:blue", True),
    "pruned": ("pruned", "x", "tab:grey", False),
    "failed": ("failed", "X", "tab:red", False),
    "running": ("running", "o", "tab:orange", False),
}


def _forms(request: Any) -> dict[str, Any]:
    """The parameters' forms of a sweep request (its ``params``), path -> form."""
    params = request.get("params") if isinstance(request, Mapping) else None
    return dict(params) if isinstance(params, Mapping) else {}


def _kind(path: str, form: Any) -> str:
    """``uniform``, ``loguniform``, ``int``, ``logint`` or ``choice`` (also for a form
    unknown or not understood: the view draws what the trials hold)."""
    if form is None:
        return "choice"
    try:
        return parse_param(path, form).kind
    except SpecError:
        return "choice"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _param_names(record: Mapping[str, Any]) -> list[str]:
    """The swept paths: the request's order, then any other a trial has."""
    names = list(_forms(record.get("request") or {}))
    for trial in record.get("trials") or ():
        names += [p for p in trial.get("params") or {} if p not in names]
    return names


def param_scales(record: Mapping[str, Any]) -> dict[str, str]:
    """Path -> ``log``, ``linear`` or ``category`` for each swept parameter: log for
    ``loguniform``/``logint``, category for a choice that is not all numbers."""
    forms = _forms(record.get("request") or {})
    scales = {}
    for name in _param_names(record):
        kind = _kind(name, forms.get(name))
        values = [t.get("params", {}).get(name) for t in record.get("trials") or ()]
        values = [v for v in values if v is not None]
        if kind in _LOG:
            scales[name] = "log"
        elif kind == "choice" and not all(_is_number(v) for v in values):
            scales[name] = "category"
        else:
            scales[name] = "linear"
    return scales


def _best_number(record: Mapping[str, Any]) -> int | None:
    best = record.get("best")
    return int(best["number"]) if isinstance(best, Mapping) and "number" in best else None


def sweep_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per trial in trial order: ``number``, ``state``, each parameter by its
    path, ``value`` (the metric, None until known) and ``best`` (True for the best)."""
    names, best = _param_names(record), _best_number(record)
    rows = []
    for trial in sorted(record.get("trials") or (), key=lambda t: int(t["number"])):
        params = trial.get("params") or {}
        row: dict[str, Any] = {"number": int(trial["number"]), "state": trial.get("state")}
        row.update({name: params.get(name) for name in names})
        row.update(value=trial.get("value"), best=row["number"] == best)
        rows.append(row)
    return rows


def _measured(trial: Mapping[str, Any], name: str) -> bool:
    return _is_number((trial.get("params") or {}).get(name))


def sweep_progress(record: Mapping[str, Any]) -> str:
    """``5 done, 2 running, 1 pruned, 0 failed of 12`` (as the jobs panel writes it)."""
    counts = record.get("counts") or {}
    parts = [f"{counts.get(k) or 0} {k}" for k in ("done", "running", "pruned", "failed")]
    if counts.get("cancelled"):
        parts.append(f"{counts['cancelled']} cancelled")
    return f"{', '.join(parts)} of {record.get('trials_total') or len(record.get('trials') or ())}"


def best_text(record: Mapping[str, Any]) -> str:
    """``best val_auc 0.9123 (trial 3) → toy-sweep v2``; "" while no trial has a value."""
    best = record.get("best")
    if not isinstance(best, Mapping) or not _is_number(best.get("value")):
        return ""
    text = f"best {record.get('metric') or 'value'} {best['value']:.4g} (trial {best['number']})"
    if best.get("model"):
        version = best.get("version")
        text += f" → {best['model']}" + (f" v{version}" if version is not None else "")
    return text


def _position(value: Any, scale: str, categories: list[str]) -> float | None:
    if value is None:
        return None
    if scale == "category":
        label = value if isinstance(value, str) else json.dumps(value)
        return float(categories.index(label))
    number = float(value)
    return number if scale == "linear" or number > 0 else None


def _categories(record: Mapping[str, Any], name: str) -> list[str]:
    seen: list[str] = []
    for trial in sorted(record.get("trials") or (), key=lambda t: int(t["number"])):
        value = (trial.get("params") or {}).get(name)
        label = value if isinstance(value, str) else json.dumps(value)
        if value is not None and label not in seen:
            seen.append(label)
    return seen


def _draw_parameter(ax: Any, record: Mapping[str, Any], name: str, scale: str) -> None:
    metric = str(record.get("metric") or "value")
    categories = _categories(record, name) if scale == "category" else []
    trials = record.get("trials") or ()
    best = _best_number(record)
    for state, (label, marker, colour, filled) in _STYLES.items():
        chosen = [t for t in trials if t.get("state") == state]
        placed = [
            (_position((t.get("params") or {}).get(name), scale, categories), t.get("value"))
            for t in chosen
        ]
        measured = [(x, v) for x, v in placed if x is not None and _is_number(v)]
        if measured:
            ax.plot(
                [x for x, _ in measured],
                [v for _, v in measured],
                ls="none",
                marker=marker,
                color=colour,
                markerfacecolor=colour if filled else "none",
                label=label,
            )
        unmeasured = [x for x, v in placed if x is not None and not _is_number(v)]
        if unmeasured:  # no value (failed early): along the bottom of the axes
            ax.plot(
                unmeasured,
                [0.03] * len(unmeasured),
                ls="none",
                marker=marker,
                color=colour,
                markerfacecolor=colour if filled else "none",
                transform=ax.get_xaxis_transform(),
                label=f"{label} (no value)",
            )
    for trial in trials:
        if best is not None and int(trial["number"]) == best and _is_number(trial.get("value")):
            x = _position((trial.get("params") or {}).get(name), scale, categories)
            if x is not None:
                ax.plot(
                    [x],
                    [trial["value"]],
                    ls="none",
                    marker="*",
                    markersize=14,
                    color="gold",
                    markeredgecolor="black",
                    label="best",
                )
    if scale == "log":
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^-4, 3x10^-4... overlap
    elif scale == "category":
        ax.set_xticks(range(len(categories)), categories)
        ax.set_xlim(-0.5, len(categories) - 0.5)
    elif _kind(name, _forms(record.get("request") or {}).get(name)) == "choice":
        # numbers chosen from a list (64,128,256): a tick at each
        chosen = sorted({float(t["params"][name]) for t in trials if _measured(t, name)})
        if 0 < len(chosen) <= 10:
            ax.set_xticks(chosen, [f"{c:g}" for c in chosen])
    ax.set_xlabel(name)
    ax.set_ylabel(metric)


def sweep_figure(record: Mapping[str, Any], *, columns: int = 3) -> Any:
    """A :class:`~matplotlib.figure.Figure` (Agg canvas) with one scatter per swept
    parameter of ``record``: its value against the sweep's metric, one point per trial,
    drawn by state (``succeeded``, ``pruned``, ``failed``, ``running``), the best trial
    starred; the title names the metric and its direction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scales = param_scales(record)
    names = list(scales) or ["(no parameters)"]
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4.0 * columns, 3.3 * rows + 0.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        if name in scales:
            _draw_parameter(ax, record, name, scales[name])
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if any(ax.get_legend_handles_labels()[0] for ax in axes):
        axes[0].legend(fontsize="small")
    title = (
        f"{record.get('name') or record.get('id') or 'sweep'}: {record.get('metric') or 'value'}"
    )
    figure.suptitle(title + (f" ({record['direction']})" if record.get("direction") else ""))
    figure.tight_layout()
    return figure
