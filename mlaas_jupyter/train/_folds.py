"""k-fold training (``training.folds`` >= 2): k models, each tested on its own fold.

An event's fold is ``value % k`` (``training.fold_by``, an integer branch such as
``event``, or the entry number in its file; :mod:`mlaas_jupyter.stream._folds`). Fold
``i`` trains in ``RUN_DIR/fold{i}/`` (its own checkpoint, plots, metrics and bundle) on
the dataset whose test split is fold ``i``, through :func:`~.runner.train` itself, so
data-parallel ``training.workers`` work per fold. Its events are tagged with
``"fold": i``; its test metrics come as ``{"type": "fold", "fold": i, "metrics": ...}``.
With a dask cluster (and ``workers`` 1) the folds train in parallel, one dask task each.

Then every event has been scored by the one model that did not see it: these
out-of-fold scores give the combined metrics, curves and plots at ``RUN_DIR`` and the
bundle that holds every fold's model (:func:`~.bundle.write_fold_bundle`). With
``training.resume``, folds whose bundle exists are kept and the others continue from
their checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..specs.training import TrainSpec
from ..stream._folds import fold_dataset
from ..stream.batches import BatchStream
from ..stream.layout import FeatureLayout
from ..stream.stats import compute_stats, plan_for
from ._epochs import EventSink
from ._outcome import TrainResult
from ._results import _save_curves, collect_scores, expected_yields
from .backend import ModelContext
from .bundle import write_fold_bundle
from .metrics import evaluate_scores

__all__ = ["fold_spec", "fold_task", "train_folds"]

#: a fold's own events that the combined run says instead (its "fold" event, its end)
_HIDDEN = ("start", "test", "done")


def fold_spec(spec: TrainSpec, index: int) -> TrainSpec:
    """The spec that fold ``index`` trains: its dataset's test split is that fold."""
    config = spec.training
    dataset = fold_dataset(spec.dataset, index, config.folds, config.fold_by)
    training = config.model_copy(update={"folds": 1, "fold_by": None})  # dataset.fold says
    model = spec.model
    if model.instance is not None:  # each fold trains a model of its own
        model = model.model_copy(update={"instance": _copy_model(model.instance)})
    return spec.model_copy(update={"dataset": dataset, "training": training, "model": model})


def _copy_model(instance: Any) -> Any:
    """A fresh copy of a model object (Keras models are cloned, untrained)."""
    if type(instance).__module__.startswith(("keras", "tf_keras")):
        import keras

        return keras.models.clone_model(instance)
    return copy.deepcopy(instance)


def _tagged(emit: EventSink, index: int) -> EventSink:
    def sink(event: dict[str, Any]) -> None:
        if event.get("type") not in _HIDDEN:
            emit({**event, "fold": index})

    return sink


def _finished(folder: Path) -> bool:
    return (folder / "bundle" / "manifest.json").is_file()


def train_folds(
    spec: TrainSpec,
    folder: Path,
    name: str,
    emit: EventSink,
    train: Callable[..., TrainResult],
    *,
    cache: Any = True,
    progress: bool | None = False,
) -> TrainResult:
    """Train the ``training.folds`` models of ``spec`` in ``folder/fold{i}`` with
    ``train`` (:func:`~.runner.train`, given: this module is below it) and combine
    them; what :func:`~.runner.train` returns for a k-fold spec."""
    config = spec.training
    k, by = config.folds, config.fold_by
    plan_for(fold_dataset(spec.dataset, 0, k, by))  # a bad fold_by fails before training
    emit(
        {
            "type": "note",
            "message": f"{k}-fold training: an event's fold is {by or 'its entry number'} "
            f"% {k}; fold i tests on fold i (split.test is not used), trains and validates "
            "on the others",
        }
    )
    results: dict[int, TrainResult] = {}
    for index in range(k):
        where = folder / f"fold{index}"
        if config.resume and _finished(where):
            metrics = json.loads((where / "bundle" / "manifest.json").read_text())["metrics"]
            results[index] = TrainResult(where, where / "bundle", metrics)
            emit({"type": "note", "message": f"fold {index} had finished: kept", "fold": index})
            emit({"type": "fold", "fold": index, "metrics": metrics})
    pending = [index for index in range(k) if index not in results]
    if spec.cluster is not None and config.workers == 1 and len(pending) > 1:
        results.update(_on_cluster(spec, folder, pending, emit, train))
    else:
        for index in pending:
            results[index] = train(
                fold_spec(spec, index),
                on_event=_tagged(emit, index),
                run_dir=folder / f"fold{index}",
                cache=cache,
                progress=progress,
            )
            emit({"type": "fold", "fold": index, "metrics": results[index].metrics})
    return _combine(spec, folder, name, [results[i] for i in range(k)], emit, cache)


# -- the folds on a dask cluster -------------------------------------------------------
def fold_task(
    train: Callable[..., TrainResult], run: str, index: int, spec: TrainSpec, run_dir: str
) -> dict[str, Any]:
    """Train one fold with ``train`` on this dask worker (its events go to the
    ``distributed.Queue`` ``mlaas-folds-<run>``); returns its result or error as a
    plain dict."""
    from distributed import Queue

    queue = Queue(f"mlaas-folds-{run}")
    try:
        result = train(
            spec, on_event=lambda e: queue.put({**e, "fold": index}), run_dir=run_dir, cache=True
        )
    except Exception as err:  # no exception crosses the cluster
        return {"type": "error", "message": f"{type(err).__name__}: {err}"}
    return {
        "type": "result",
        "bundle": str(result.bundle),
        "metrics": result.metrics,
        "history": result.history,
        "scored": result.scored,
    }


def _on_cluster(
    spec: TrainSpec,
    folder: Path,
    pending: list[int],
    emit: EventSink,
    train: Callable[..., TrainResult],
) -> dict[int, TrainResult]:
    """Train the ``pending`` folds in parallel, one dask task each, on ``spec.cluster``."""
    from distributed import Queue

    from ..stream.distributed import cluster_client, describe

    assert spec.cluster is not None
    emit(
        {
            "type": "note",
            "message": f"folds {', '.join(map(str, pending))} in parallel on "
            f"{describe(spec.cluster)}",
        }
    )
    run = uuid.uuid4().hex
    results: dict[int, TrainResult] = {}
    with cluster_client(spec.cluster) as client:
        queue = Queue(f"mlaas-folds-{run}", client=client)
        futures = {}
        for index in pending:
            task_spec = fold_spec(spec, index)  # trained where it runs, reading in a thread
            task_spec = task_spec.model_copy(update={"cluster": None}).with_training(
                loader="thread"
            )
            futures[index] = client.submit(
                fold_task,
                train,
                run,
                index,
                task_spec,
                str(folder / f"fold{index}"),
                pure=False,
                retries=0,
                key=f"mlaas-fold-{index}-{run}",
            )
        try:
            while len(results) < len(futures):
                time.sleep(0.25)
                _relay(queue, emit)
                for index, future in futures.items():
                    if index not in results and future.done():
                        results[index] = _fold_result(index, future, folder)
                        _relay(queue, emit)
                        emit({"type": "fold", "fold": index, "metrics": results[index].metrics})
        finally:
            client.cancel(list(futures.values()))
            with contextlib.suppress(Exception):  # the queue goes with the client anyway
                queue.close()
    return results


def _relay(queue: Any, emit: EventSink) -> None:
    for event in queue.get(batch=True):
        if event.get("type") not in _HIDDEN:
            emit(event)


def _fold_result(index: int, future: Any, folder: Path) -> TrainResult:
    if future.status != "finished":
        raise TrainingError(f"fold {index}: its dask task failed ({future.status})")
    reply = future.result()
    if reply["type"] != "result":
        raise TrainingError(f"fold {index}: {reply['message']}")
    where = folder / f"fold{index}"
    return TrainResult(
        where, Path(reply["bundle"]), reply["metrics"], reply["history"], [], reply["scored"]
    )


# -- combining the folds -----------------------------------------------------------
def _predictor(bundle: Path) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    """The native predict function of a fold's bundle."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    module = importlib.import_module(f"mlaas_jupyter.train.{manifest['backend']}_backend")
    task = str(manifest["task"])
    n_classes = len(manifest.get("classes") or []) if task == "multiclass" else 1
    layout = FeatureLayout.from_dict(manifest["layout"])
    context = ModelContext(layout, task, n_classes, int(manifest["dataset"].get("seed", 0)))
    fields = {k: v for k, v in manifest.items() if k not in ("layout", "history")}
    function: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]
    function = module.load_native(bundle, fields, context)
    return function


def _rescored(bundle: Path, stream: BatchStream) -> tuple[np.ndarray[Any, Any], ...]:
    """(labels, weights, scores) of a fold's test split by the model of its bundle."""
    return collect_scores(_predictor(bundle), stream)


def _combine(
    spec: TrainSpec,
    folder: Path,
    name: str,
    results: list[TrainResult],
    emit: EventSink,
    cache: Any,
) -> TrainResult:
    """The out-of-fold metrics, curves, plots, report and bundle at ``folder``."""
    config, dataset = spec.training, spec.dataset
    k = len(results)
    parts: list[tuple[np.ndarray[Any, Any], ...]] = []
    yields: list[np.ndarray[Any, Any]] = []
    for index, result in enumerate(results):
        fold_data = fold_dataset(dataset, index, k, config.fold_by)
        stats = compute_stats(fold_data, cache=cache, scheduler=spec.cluster)
        stream = BatchStream(
            fold_data,
            "test",
            config.batch_size or 4096,
            stats=stats,
            loader="thread",
            epoch_cache_mb=0,
        )
        scored = result.scored or _rescored(result.bundle, stream)
        y, w = scored[0], scored[1]
        parts.append(scored)
        events = expected_yields(stream, y, w)
        yields.append(np.asarray(w if events is None else events, dtype=np.float64))
    y, w, scores = (np.concatenate([p[j] for p in parts]) for j in range(3))
    metrics = evaluate_scores(dataset.task, y, scores, w, labels=dataset.labels)
    metrics["split"] = "out_of_fold"
    style = config.style if config.style != "none" else None
    # each fold's test events stand for the whole dataset: k folds, k times its yield
    combined_yields = np.concatenate(yields) / k
    plots = _save_curves(
        folder, dataset, [], y, w, scores, metrics, yields=combined_yields, style=style
    )
    emit({"type": "test", **metrics})
    per_fold = [{"fold": i, "metrics": _with_ks(r)} for i, r in enumerate(results)]
    flagged = sorted({c for r in results for c in _overtraining(r).get("flagged", [])})
    report = _report(folder, spec, (y, w, scores), per_fold, emit, style, flagged)
    folds = [r.bundle for r in results]
    bundle = write_fold_bundle(
        folder / "bundle", name, spec, folds, metrics, per_fold, report=report
    )
    emit({"type": "done", "bundle": str(bundle), "metrics": metrics})
    return TrainResult(folder, bundle, metrics, [], plots, (y, w, scores))


def _overtraining(result: TrainResult) -> dict[str, Any]:
    """The overtraining check of one fold's own report (empty when it has none)."""
    try:
        report = json.loads((result.run_dir / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    section = report.get("overtraining") if isinstance(report, dict) else None
    return section if isinstance(section, dict) else {}


def _with_ks(result: TrainResult) -> dict[str, Any]:
    """A fold's test metrics with its overtraining check's KS p-value per class, so the
    combined report's fold table shows both."""
    classes = _overtraining(result).get("classes") or {}
    return {
        **result.metrics,
        **{f"ks_pvalue {name}": check.get("ks_pvalue") for name, check in classes.items()},
    }


def _report(
    folder: Path,
    spec: TrainSpec,
    scored: tuple[np.ndarray[Any, Any], ...],
    per_fold: list[dict[str, Any]],
    emit: EventSink,
    style: str | None,
    flagged: list[str],
) -> Path | None:
    """``folder/report.json`` of the out-of-fold scores, with each fold's metrics. The
    folds normalise their inputs each their own way, so the input correlations, the
    ranking and the overtraining check are in each fold's own report
    (``fold{i}/report.json``); a report that cannot be made is a note."""
    from .report import build_report, write_report

    dataset = spec.dataset
    y, w, scores = scored
    try:
        report = build_report(
            dataset.task,
            dataset.labels,
            y,
            w,
            np.ravel(scores) if dataset.task == "regression" else scores,
            split="out_of_fold",
            settings=spec.training.report,
            seed=dataset.seed,
        )
        report["folds"] = per_fold
        if flagged:
            report["notes"] = [
                *report.get("notes", []),
                f"overtraining flagged in a fold's report (fold{{i}}/report.json) for: "
                f"{', '.join(flagged)}",
            ]
        path = write_report(folder, report, style=style)
    except Exception as err:  # the models are trained: keep them
        emit({"type": "note", "message": f"the training report could not be written: {err}"})
        return None
    emit({"type": "report", "path": str(path), "flagged": flagged})
    return path
