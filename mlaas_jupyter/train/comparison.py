"""Several training runs side by side: their test metrics and what differs in their specs.

A run is read from its run folder (what :func:`~mlaas_jupyter.train.runner.train` and
every training job write): ``bundle/manifest.json`` holds the spec (``dataset``,
``model``, ``training``), the test ``metrics`` and the epoch ``history``;
``plots/curves.json`` the ROC curves, the score distributions and the background
rejection. :func:`load_run` turns one folder into a run entry, :func:`compare_runs`
puts several entries together into the comparison (the JSON of ``GET compare``), and
:func:`~mlaas_jupyter.train.comparison_plots.draw_comparison` draws it.

A run without ``curves.json`` (a bundle copied on its own) or without ROC curves (a
regression) is still compared; its entry says in ``missing`` what it lacks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import SourceError, SpecError

__all__ = [
    "IGNORED_FIELDS",
    "METRIC_ORDER",
    "compare_runs",
    "load_run",
    "missing_notes",
    "run_entry",
    "spec_differences",
]

#: the test metrics first in the table, in this order (others follow by name)
METRIC_ORDER = (
    "auc",
    "auc_weighted",
    "accuracy",
    "loss",
    "rejection_at_50",
    "rejection_at_90",
    "best_cut.significance",
    "best_cut.score",
    "mae",
    "r2",
)
#: last rows of the table: how long each run trained and on how many test events
_LAST = ("epochs", "events")
#: spec fields that do not change the trained model (where it was written, how fast
#: the data were read): listing them as differences would hide the ones that matter
IGNORED_FIELDS = frozenset(
    {
        "training.output",
        "training.name",
        "training.resume",
        "training.style",
        "training.loader",
        "training.threads",
        "training.epoch_cache_mb",
        "training.ddp_timeout",
        # the training report's settings (report.json), not the model's
        "training.report.ks_threshold",
        "training.report.max_events",
        "training.report.ranking_events",
        "training.report.repeats",
        "dataset.step_size",
    }
)
_SPEC_PARTS = ("dataset", "model", "training")
_MANIFEST = "manifest.json"
_CURVES = Path("plots") / "curves.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SourceError(str(path), f"cannot be read as JSON: {err}") from None
    if not isinstance(data, dict):
        raise SourceError(str(path), f"expected a JSON object, got {type(data).__name__}")
    return data


def load_run(
    folder: str | Path, *, run_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """The run entry of a run folder (or of its ``bundle`` folder).

    Parameters
    ----------
    folder
        A run folder (with ``bundle/manifest.json``, and ``plots/curves.json`` when
        the run drew its curves), or the bundle folder inside it.
    run_id, name
        The job's id and name; by default the folder's name and the bundle's name.

    Raises
    ------
    SourceError
        When ``folder`` is not a folder, or has no ``bundle/manifest.json``.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise SourceError(str(path), "no such run folder")
    if (path / _MANIFEST).is_file() and not (path / "bundle" / _MANIFEST).is_file():
        run_dir, manifest_path = path.parent, path / _MANIFEST  # the bundle folder given
    else:
        run_dir, manifest_path = path, path / "bundle" / _MANIFEST
    if not manifest_path.is_file():
        raise SourceError(
            str(path), "not a run folder: it has no bundle/manifest.json (is the run finished?)"
        )
    manifest = _read_json(manifest_path)
    curves_path = run_dir / _CURVES
    curves = _read_json(curves_path) if curves_path.is_file() else None
    return run_entry(
        manifest,
        curves,
        run_id=run_id or run_dir.resolve().name,
        name=name,
        run_dir=str(run_dir.resolve()),
    )


def run_entry(
    manifest: Mapping[str, Any],
    curves: Mapping[str, Any] | None,
    *,
    run_id: str,
    run_dir: str,
    name: str | None = None,
) -> dict[str, Any]:
    """The run entry of a bundle manifest and the run's ``curves.json`` (None: it has
    none): id, name, run folder, model summary, task, spec, metrics, history, curves,
    and what is ``missing``."""
    if not isinstance(manifest.get("dataset"), Mapping):
        raise SourceError(run_dir, "not a training bundle: its manifest has no dataset")
    missing: list[str] = []
    history = list(manifest.get("history") or [])
    roc = scores = rejection = None
    if curves is None:
        missing.append("plots/curves.json (no ROC curves or score distributions)")
    else:
        history = list(curves.get("history") or history)
        roc, scores = curves.get("roc"), curves.get("scores")
        rejection = curves.get("rejection") or None
        if not any((c or {}).get("fpr") for c in ((roc or {}).get("curves") or {}).values()):
            task = manifest.get("task")
            missing.append("ROC curves" + (f" ({task})" if task == "regression" else ""))
    if not history:
        missing.append("epoch history")
    spec = {part: manifest.get(part) or {} for part in _SPEC_PARTS}
    return {
        "id": run_id,
        "name": name or str(manifest.get("name") or run_id),
        "label": name or str(manifest.get("name") or run_id),
        "run_dir": run_dir,
        "model": model_summary(spec["model"], manifest.get("backend")),
        "task": manifest.get("task"),
        "classes": list(manifest.get("classes") or []),
        "spec": spec,
        "metrics": _flat_metrics(manifest.get("metrics") or {}, len(history)),
        "history": history,
        "roc": roc,
        "scores": scores,
        "rejection": rejection,
        "missing": missing,
    }


def missing_notes(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each run lacks, in words: ``reg: lacks ROC curves (regression)``."""
    return [
        f"{run.get('label') or run['id']}: lacks {'; '.join(run['missing'])}"
        for run in runs
        if run.get("missing")
    ]


def model_summary(model: Mapping[str, Any], backend: Any = None) -> str:
    """``mlp (torch) sizes=[64, 64]``: the model in a few words."""
    kind = model.get("name") or Path(str(model.get("file") or "model")).name
    words = [str(kind)]
    if backend or model.get("backend"):
        words.append(f"({backend or model.get('backend')})")
    words += [f"{k}={v}" for k, v in sorted((model.get("params") or {}).items())]
    return " ".join(words)


def _flat_metrics(metrics: Mapping[str, Any], epochs: int) -> dict[str, float | None]:
    """The numeric test metrics, nested ones (``best_cut``) as dotted names."""
    flat: dict[str, float | None] = {}
    for key, value in _leaves(metrics, ""):
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            number = None if value is None else float(value)
            flat[key] = number if number is None or math.isfinite(number) else None
    if epochs:
        flat["epochs"] = float(epochs)
    return flat


def _leaves(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    """Dotted names and values of the leaves of nested mappings (an empty mapping has
    none: ``params: {}`` and ``params: {sizes: [8]}`` differ in ``params.sizes`` only)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}{key}.")
    else:
        yield prefix[:-1], value


def compare_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The comparison of two or more run entries (in the order given).

    Returns ``{"runs": [...], "metrics": [names in table order], "differences":
    [{"field", "values", "text"}, ...]}``: each run gets a ``label`` that tells it
    apart from the others; ``differences`` lists the dotted spec fields whose values
    are not the same in every run, with each run's value and a short text of it
    (lists as what the run adds and removes relative to the first run).
    """
    if len(runs) < 2:
        given = f"got {len(runs)}" if runs else "got none"
        raise SpecError(
            "jobs", f"give at least 2 runs (job ids or run folders) to compare, {given}"
        )
    folders = [str(run.get("run_dir")) for run in runs]
    for k, folder in enumerate(folders):
        if folder in folders[:k]:
            raise SpecError("jobs", f"the run {runs[k]['id']} ({folder}) is given twice")
    entries = [dict(run) for run in runs]
    names = [str(run.get("name") or run["id"]) for run in entries]
    for run, name in zip(entries, names, strict=True):
        run_id = str(run["id"])
        if names.count(name) == 1:
            run["label"] = name
        else:  # the id tells them apart; a run folder's name often starts with the name
            run["label"] = run_id if run_id.startswith(name) else f"{name} ({run_id})"
    labels = [run["label"] for run in entries]
    for run in entries:  # folders of the same name in different places: their paths
        if labels.count(run["label"]) > 1:
            run["label"] = str(run["run_dir"])
    return {
        "runs": entries,
        "metrics": _metric_order(entries),
        "differences": spec_differences([run.get("spec") or {} for run in entries]),
    }


def _metric_order(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    present = {name for run in runs for name in run.get("metrics") or {}}
    first = [name for name in METRIC_ORDER if name in present]
    last = [name for name in _LAST if name in present]
    rest = sorted(present - set(first) - set(last))
    return first + rest + last


def spec_differences(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The dotted fields of ``specs`` (dataset, model, training mappings) whose values
    differ between them, in spec order; a field a spec lacks counts as None."""
    flat = [dict(_leaves({p: spec.get(p) or {} for p in _SPEC_PARTS}, "")) for spec in specs]
    fields: list[str] = []
    for leaves in flat:  # a field only some specs have goes after the one before it
        at = 0
        for key in leaves:
            if key not in fields:
                fields.insert(at, key)
            at = fields.index(key) + 1
    differences = []
    for field in fields:
        if field in IGNORED_FIELDS:
            continue
        values = [leaves.get(field) for leaves in flat]
        if any(value != values[0] for value in values[1:]):
            differences.append({"field": field, "values": values, "text": _texts(values)})
    return differences


def _texts(values: Sequence[Any]) -> list[str]:
    """Each run's value in words; a list of names after the first run's as what it adds
    and removes (``added: HT; removed: MET_phi``)."""
    first = values[0]
    texts = [_text(first)]
    for value in values[1:]:
        if value == first:
            texts.append(_text(value))
        elif isinstance(first, list) and isinstance(value, list) and _names(first + value):
            added = [v for v in value if v not in first]
            removed = [v for v in first if v not in value]
            change = [f"added: {', '.join(added)}"] if added else []
            change += [f"removed: {', '.join(removed)}"] if removed else []
            texts.append("; ".join(change) or f"{_text(value)} (reordered)")
        else:
            texts.append(_text(value))
    return texts


def _names(values: list[Any]) -> bool:
    """Whether a list holds names (branches, cuts, files), read best as a change; a
    list of numbers (layer sizes) reads best whole."""
    return bool(values) and all(isinstance(v, str) for v in values)


def _text(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.4g}"  # a sampled learning rate reads as 0.0154, not 17 digits
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, dict) else str(value)
