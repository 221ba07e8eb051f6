"""The exports of a bundle for the experiments' frameworks, checked before they are kept.

Beside ``model.onnx`` a bundle gets ``preprocess.json`` (weaver/CMSSW form, see
:mod:`._preprocess_json`), ``model_preprocessed.onnx`` (its named input groups in) and
``model_raw.onnx`` (raw physics values in, see :mod:`._raw_graph`). Before they are
kept, ONNX Runtime runs all three on up to ``max_events`` test events, read again from
the files with the dataset plan: ``model.onnx`` on the training pipeline's matrix,
``model_preprocessed.onnx`` on groups filled from the raw values by the rules of
``preprocess.json`` alone (as CMSSW fills them), ``model_raw.onnx`` on the raw values;
each must give the native model's scores within :data:`TOLERANCE`. Otherwise the three
files are removed and the manifest says why, naming the worst event by file and entry;
the training job does not fail.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..specs.dataset import DatasetSpec
from ..stream._folds import fold_dataset
from ..stream.jagged import JaggedParts
from ..stream.layout import FeatureLayout
from ..stream.plan import DatasetPlan
from ..stream.sources import open_tree
from ..stream.stats import plan_for
from . import _raw_graph
from ._preprocess_json import fill_groups, input_groups, output_names, preprocess_json
from .backend import Backend

__all__ = ["TOLERANCE", "CheckEvents", "export_experiment", "export_folds", "read_check_events"]

TOLERANCE = 1e-4
FILES = {
    "preprocess": "preprocess.json",
    "model_preprocessed": "model_preprocessed.onnx",
    "model_raw": "model_raw.onnx",
}


@dataclass
class CheckEvents:
    """Test events: the model matrix, the raw inputs of ``model_raw.onnx`` and where
    each event comes from."""

    x: np.ndarray[Any, np.dtype[np.float32]]
    values: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    #: the matrices of further layouts (k-fold: each fold's), and each event's fold key
    more: list[np.ndarray[Any, Any]] = field(default_factory=list)
    keys: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0, np.int64))
    files: list[str] = field(default_factory=list)
    file_index: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0, np.int64))
    entries: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.x)

    def where(self, i: int) -> dict[str, Any]:
        return {"file": self.files[int(self.file_index[i])], "entry": int(self.entries[i])}


def _dense(parts: JaggedParts, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``(len(rows), max count)`` float32: the lists of ``rows``, 0 past their ends."""
    counts = parts.counts[rows]
    width = max(1, int(counts.max(initial=0)))
    out = np.zeros((len(rows), width), dtype=np.float32)
    slots = np.arange(width) < counts.reshape(-1, 1)
    out[slots] = parts.take_content(rows)
    return out


def _concat(blocks: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    if blocks[0].ndim == 2 and blocks[0].dtype == np.float32:
        width = max(b.shape[1] for b in blocks)
        blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]))) for b in blocks]
    return np.concatenate(blocks)


def read_check_events(
    plan: DatasetPlan,
    layout: FeatureLayout,
    max_events: int = 10_000,
    split: int | None = 2,
    *,
    more: Sequence[FeatureLayout] = (),
    fold_by: str | None = None,
) -> CheckEvents:
    """Up to ``max_events`` events of ``split`` (2: test; None: all), shared among the
    classes (each class's files read in order until its share is there); with the
    matrices of the ``more`` layouts and the ``fold_by`` values (None: the entry
    numbers) as fold keys."""
    inputs = _raw_graph.raw_inputs(layout)
    layouts = [layout, *more]
    files = plan.files
    classes = sorted({f.class_index for f in files})
    share = max(1, math.ceil(max_events / len(classes)))
    left = dict.fromkeys(classes, share)
    xs: list[list[np.ndarray[Any, Any]]] = [[] for _ in layouts]
    keys: list[np.ndarray[Any, Any]] = []
    raw: dict[str, list[np.ndarray[Any, Any]]] = {i.name: [] for i in inputs}
    where: list[np.ndarray[Any, Any]] = []
    entries: list[np.ndarray[Any, Any]] = []
    for index, file in enumerate(files):
        if left[file.class_index] <= 0:
            continue
        source = open_tree(file.path, plan.tree)
        try:
            for chunk in source.iterate(plan.read_columns, plan.spec.step_size):
                block = plan.select(chunk, file)
                rows = block.rows if split is None else block.rows[block.split == split]
                rows = rows[: left[file.class_index]]
                if not len(rows):
                    continue
                left[file.class_index] -= len(rows)
                for x, one in zip(xs, layouts, strict=True):
                    x.append(one.fill(block.flat, block.jagged, rows))
                by = chunk.entry_start + rows if fold_by is None else chunk.columns[fold_by]
                keys.append(np.asarray(by if fold_by is None else np.asarray(by)[rows], np.int64))
                for i in inputs:
                    if i.kind == "count":
                        member = next(j.name for j in inputs if j.collection == i.collection)
                        raw[i.name].append(block.jagged[member].counts[rows].astype(np.int64))
                    elif i.kind == "jagged":
                        raw[i.name].append(_dense(block.jagged[i.name], rows))
                    else:
                        raw[i.name].append(np.asarray(block.flat[i.name])[rows].astype(np.float32))
                where.append(np.full(len(rows), index, dtype=np.int64))
                entries.append(chunk.entry_start + rows)
                if left[file.class_index] <= 0:
                    break
        finally:
            source.close()
    if not where:
        return CheckEvents(np.zeros((0, layout.width), dtype=np.float32))
    values = {name: _concat(blocks) for name, blocks in raw.items()}
    matrices = [np.concatenate(x) for x in xs]
    return CheckEvents(
        matrices[0],
        values,
        more=matrices[1:],
        keys=np.concatenate(keys),
        files=[f.path for f in files],
        file_index=np.concatenate(where),
        entries=np.concatenate(entries),
    )


def _sorted_values(layout: FeatureLayout, events: CheckEvents) -> dict[str, np.ndarray[Any, Any]]:
    """The raw values with each collection's objects ordered by its sort key, as a
    CMSSW caller must pass them (NaN keys last, ties in their order)."""
    values = dict(events.values)
    counts = {i.name: i for i in _raw_graph.raw_inputs(layout)}
    for f in layout.features:
        if f.kind != "jagged" or f.sort_by is None:
            continue
        key = events.values[f.sort_by]
        collection = counts[f.sort_by].collection
        count = events.values[f"{collection}.count"]
        real = np.arange(key.shape[1]) < count.reshape(-1, 1)
        ranked = np.where(real, -key if f.descending else key, np.nan)
        order = np.argsort(ranked, axis=1, kind="stable")
        values[f.name] = np.take_along_axis(events.values[f.name], order, axis=1)
    return values


def _group_counts(layout: FeatureLayout, events: CheckEvents) -> dict[str, np.ndarray[Any, Any]]:
    inputs = {i.name: i for i in _raw_graph.raw_inputs(layout)}
    out = {}
    for g in input_groups(layout):
        member = g.features[0].mask_of[0] if g.kind == "mask" else g.features[0].name
        if g.kind in ("jagged", "mask"):
            out[g.name] = events.values[f"{inputs[member].collection}.count"]
    return out


def _metadata(
    layout: FeatureLayout, plan: DatasetPlan, classes: list[str], fold: dict[str, Any] | None
) -> dict[str, str]:
    inputs = _raw_graph.raw_inputs(layout, fold["input"] if fold else None)
    needed = set(layout.inputs)
    chosen = []
    for name, expr in reversed(plan.new_branches):
        if name in needed:
            needed |= set(expr.names)
            chosen.append([name, expr.text])
    spec = plan.spec
    meta = {
        "inputs": [i.to_dict() for i in inputs],
        "variables": [i.name for i in inputs],
        "kinds": [i.kind for i in inputs],
        "task": spec.task,
        "classes": classes,
        "outputs": output_names(spec.task, classes, spec.target),
        "new_branches": chosen[::-1],
        "fold": fold,
        "producer": "mlaas-jupyter",
        "version": __version__,
    }
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


def _run(path: Path, feeds: dict[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return np.asarray(session.run(["score"], {k: v for k, v in feeds.items() if k in names})[0])


def _worst(got: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> tuple[float, float, int]:
    """The largest absolute difference, the largest difference relative to
    ``max(1, |expected|)`` (what :data:`TOLERANCE` bounds: absolute for scores,
    relative for large regression values) and the event where that one is."""
    if got.shape != expected.shape:
        return math.inf, math.inf, 0
    if not len(expected):
        return 0.0, 0.0, 0
    diff = np.abs(got.astype(np.float64) - expected).reshape(len(expected), -1)
    diff = np.where(np.isnan(diff), np.inf, diff)
    scaled = (diff / np.maximum(1.0, np.abs(expected).reshape(len(expected), -1))).max(axis=1)
    i = int(np.argmax(scaled))
    return float(diff.max()), float(scaled[i]), i


def export_experiment(
    folder: Path,
    backend: Backend,
    layout: FeatureLayout,
    plan: DatasetPlan,
    classes: list[str],
    *,
    max_events: int = 10_000,
    events: CheckEvents | None = None,
) -> dict[str, Any]:
    """Write and check the exports in ``folder`` (which holds ``model.onnx``); return
    the manifest's ``exports`` (with ``error`` and no files when a check failed)."""
    import onnx

    written = [folder / name for name in FILES.values()]
    result: dict[str, Any] = {}
    try:
        inner = onnx.load(str(folder / "model.onnx"))
        meta = _metadata(layout, plan, classes, None)
        groups = input_groups(layout)
        preprocess = preprocess_json(layout, plan.spec.task, classes, plan.spec.target)
        written[0].write_text(json.dumps(preprocess, indent=1))
        pre_meta = {**meta, "inputs": json.dumps([g.name for g in groups])}
        onnx.save(
            _raw_graph.preprocessed_model([inner], layout, groups, None, pre_meta), written[1]
        )
        onnx.save(_raw_graph.raw_model([inner], layout, None, meta), written[2])
        if events is None:
            events = read_check_events(plan, layout, max_events)
        result = {**FILES, "raw_inputs": json.loads(meta["inputs"]), "tolerance": TOLERANCE}
        result["checked_events"] = len(events)
        if not len(events):
            result["max_abs_diff"] = {}
            result["note"] = "no test events: the exports are not checked"
            return result
        expected = np.asarray(backend.predict(events.x), dtype=np.float64)
        filled = fill_groups(
            preprocess, groups, _sorted_values(layout, events), _group_counts(layout, events)
        )
        runs = {
            "model": _run(folder / "model.onnx", {"x": events.x}),
            "model_preprocessed": _run(written[1], filled),
            "model_raw": _run(written[2], events.values),
        }
        worst = {name: _worst(got, expected) for name, got in runs.items()}
        result["max_abs_diff"] = {name: d for name, (d, _, _) in worst.items()}
        bad = [(r, name, i) for name, (_, r, i) in worst.items() if not r <= TOLERANCE]
        if bad:
            d, name, i = max(bad)
            event = events.where(i)
            result["event"] = {**event, "model": name}
            raise _CheckFailed(
                f"exports: {name}.onnx differs from the trained model by {d:.3g} "
                f"(> {TOLERANCE:g}) at {event['file']} entry {event['entry']}; "
                "preprocess.json, model_preprocessed.onnx and model_raw.onnx are not kept"
            )
        return result
    except Exception as err:  # never fails the training job: the manifest says why
        return _failed(written, result, err)


def _failed(written: list[Path], result: dict[str, Any], err: Exception) -> dict[str, Any]:
    """The manifest's ``exports`` of a failed export: no files, ``error`` says why."""
    for path in written:
        path.unlink(missing_ok=True)
    names = ", ".join(p.name for p in written)
    message = (
        str(err)
        if isinstance(err, _CheckFailed)
        else (
            f"exports: cannot build or check the experiment exports ({type(err).__name__}: "
            f"{str(err)[:300]}); {names} not kept"
        )
    )
    kept = {k: v for k, v in result.items() if k not in FILES}
    return {**kept, "error": message}


def export_folds(
    folder: Path,
    dataset: DatasetSpec,
    fold_by: str | None,
    manifests: list[dict[str, Any]],
    *,
    max_events: int = 10_000,
) -> dict[str, Any]:
    """``model_raw.onnx`` of a k-fold bundle in ``folder`` (folds in ``fold{i}/``): each
    fold's model with its own normalisation, picked per event by the fold key input
    (``fold_by``, or ``entry``: the entry number; ``<name>.fold`` when a model input has
    that name) ``% k``; checked against each fold's
    ``model.onnx`` on up to ``max_events`` events of any split. Each fold keeps its own
    ``preprocess.json`` and ``model_preprocessed.onnx`` (normalisations differ)."""
    import onnx

    target = folder / FILES["model_raw"]
    k, key = len(manifests), fold_by or "entry"
    result: dict[str, Any] = {}
    try:
        lacking = [i for i, m in enumerate(manifests) if not m.get("onnx")]
        if lacking:
            raise _CheckFailed(f"exports: fold {lacking[0]} has no ONNX model; no model_raw.onnx")
        layouts = [FeatureLayout.from_dict(m["layout"]) for m in manifests]
        if key in {i.name for i in _raw_graph.raw_inputs(layouts[0])}:
            key = f"{key}.fold"  # the branch is a model input too (float32): int64 apart
        onnxes = [folder / f"fold{i}" / str(m["onnx"]) for i, m in enumerate(manifests)]
        plan = plan_for(fold_dataset(dataset, 0, k, fold_by))
        fold = {"k": k, "by": fold_by, "input": key}
        meta = _metadata(layouts[0], plan, list(manifests[0].get("classes") or []), fold)
        inners = [onnx.load(str(path)) for path in onnxes]
        onnx.save(_raw_graph.raw_model(inners, layouts, key, meta), target)
        result = {"model_raw": target.name, "raw_inputs": json.loads(meta["inputs"]), "fold": fold}
        result["per_fold"] = [f"fold{i}/{FILES['preprocess']}" for i in range(k)]
        result["tolerance"] = TOLERANCE
        events = read_check_events(
            plan, layouts[0], max_events, None, more=layouts[1:], fold_by=fold_by
        )
        result["checked_events"] = len(events)
        if not len(events):
            result["max_abs_diff"] = {}
            return result
        folds = events.keys % k
        matrices = [events.x, *events.more]
        scores = [_run(path, {"x": x}) for path, x in zip(onnxes, matrices, strict=True)]
        chosen = folds.reshape((-1,) + (1,) * (scores[0].ndim - 1))
        expected = np.choose(chosen, scores).astype(np.float64)
        got = _run(target, {**events.values, key: events.keys})
        d, r, i = _worst(got, expected)
        result["max_abs_diff"] = {"model_raw": d}
        if not r <= TOLERANCE:
            event = events.where(i)
            result["event"] = {**event, "model": "model_raw"}
            raise _CheckFailed(
                f"exports: model_raw.onnx differs from fold {int(folds[i])}'s model by {d:.3g} "
                f"(> {TOLERANCE:g}) at {event['file']} entry {event['entry']}; not kept"
            )
        return result
    except Exception as err:  # never fails the training job: the manifest says why
        return _failed([target], result, err)


class _CheckFailed(Exception):
    """An export gave other scores than the trained model."""
