"""The monitor read at a glance: losses and metrics on separate axes, throughput and the
time left, for classifiers, regressions, runs without validation and finished jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlaas_jupyter.client import Client
from mlaas_jupyter.client._job import Job
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.notebook.widgets import TrainingMonitor
from mlaas_jupyter.stream import DatasetSpec
from mlaas_jupyter.train._curves import curve_series, curves_figure
from mlaas_jupyter.train._pace import Pace, duration_text, training_pace

CLASSIFIER = [
    {"epoch": 1, "epochs": 3, "loss": 0.61, "val_loss": 0.58, "val_auc": 0.88,
     "val_accuracy": 0.80, "events": 4000, "events_per_s": 2000.0, "seconds": 2.0},
    {"epoch": 2, "epochs": 3, "loss": 0.52, "val_loss": 0.55, "val_auc": 0.91,
     "val_accuracy": 0.83, "events": 4000, "events_per_s": 1000.0, "seconds": 4.0},
]  # fmt: skip
REGRESSION = [
    {"epoch": 1, "epochs": 2, "loss": 3.1, "val_loss": 2.9, "val_mae": 1.2, "val_r2": 0.41},
    {"epoch": 2, "epochs": 2, "loss": 2.2, "val_loss": 2.4, "val_mae": 1.0, "val_r2": 0.52},
]
NO_VALIDATION = [{"epoch": 1, "epochs": 2, "loss": 0.7}, {"epoch": 2, "epochs": 2, "loss": 0.6}]


def _lines(ax: Any) -> dict[str, tuple[list[float], list[float]]]:
    return {
        line.get_label(): (
            [float(x) for x in line.get_xdata()],
            [float(y) for y in line.get_ydata()],
        )
        for line in ax.lines
    }


def test_losses_and_metrics_are_separate_series() -> None:
    assert curve_series(CLASSIFIER) == {
        "loss": ["loss", "val_loss"],
        "metrics": ["val_accuracy", "val_auc"],  # not events, events/s or seconds
    }
    assert curve_series(REGRESSION) == {
        "loss": ["loss", "val_loss"],
        "metrics": ["val_mae", "val_r2"],
    }
    assert curve_series(NO_VALIDATION) == {"loss": ["loss"], "metrics": []}
    assert curve_series([]) == {"loss": [], "metrics": []}


def test_figure_draws_losses_and_metrics_on_separate_axes() -> None:
    figure = curves_figure(CLASSIFIER)
    loss_ax, metric_ax = figure.axes
    assert (loss_ax.get_ylabel(), metric_ax.get_ylabel()) == ("loss", "metric")
    assert _lines(loss_ax) == {"loss": ([1, 2], [0.61, 0.52]), "val_loss": ([1, 2], [0.58, 0.55])}
    assert _lines(metric_ax) == {
        "val_accuracy": ([1, 2], [0.80, 0.83]),
        "val_auc": ([1, 2], [0.88, 0.91]),
    }
    assert [t.get_text() for t in metric_ax.get_legend().get_texts()] == ["val_accuracy", "val_auc"]

    regression = curves_figure(REGRESSION)  # no AUC: R² and MAE are the metrics
    assert set(_lines(regression.axes[1])) == {"val_mae", "val_r2"}
    alone = curves_figure(NO_VALIDATION)  # no validation split: the loss alone
    assert len(alone.axes) == 1
    assert _lines(alone.axes[0]) == {"loss": ([1, 2], [0.7, 0.6])}


def _events(*records: dict[str, Any], kind: str = "epoch") -> list[dict[str, Any]]:
    return [{"type": kind, **r} for r in records]


def test_pace_during_the_first_epoch_extrapolates_its_progress() -> None:
    # 1,000 of the epoch's 4,000 events at 500 events/s: 2 s for a quarter, 8 s an epoch
    progress = {"epoch": 1, "batch": 25, "batches": 100, "events": 1000, "events_per_s": 500.0}
    pace = training_pace(_events(progress, kind="progress"), epochs=3)
    assert pace == Pace(epoch=1, epochs=3, fraction=0.25, events_per_s=500.0,
                        epoch_seconds=8.0, seconds_left=22.0)  # fmt: skip
    assert pace.text() == "epoch 1/3 · 500 events/s · 22 s left"
    # the planned epochs unknown: the throughput, no time left
    assert training_pace(_events(progress, kind="progress")).text() == "epoch 1 · 500 events/s"
    assert training_pace([]).text() == ""


def test_pace_after_epochs_uses_their_mean_duration_and_the_batches_done() -> None:
    events = _events(*CLASSIFIER)  # 2 s and 4 s: 3 s an epoch
    events += _events(
        {"epoch": 3, "batch": 10, "batches": 40, "events": 1000, "events_per_s": 1234.5},
        kind="progress",
    )
    pace = training_pace([{"type": "start"}, *events, {"type": "note", "message": "x"}])
    assert (pace.epoch, pace.epochs, pace.fraction) == (3, 3, 0.25)
    assert pace.epoch_seconds == 3.0
    assert pace.seconds_left == 2.25  # three quarters of the last epoch
    assert pace.text() == "epoch 3/3 · 1,234 events/s · 2 s left"
    # between two epochs: the next one is under way, nothing of it done yet
    between = training_pace(_events(CLASSIFIER[0]))
    assert (between.epoch, between.seconds_left) == (2, 4.0)
    assert between.text() == "epoch 2/3 · 2,000 events/s · 4 s left"


def test_pace_of_a_finished_or_stopped_run_has_no_time_left() -> None:
    done = training_pace(_events(*CLASSIFIER, {**CLASSIFIER[1], "epoch": 3}))
    assert (done.epoch, done.seconds_left) == (3, 0.0)
    assert done.text(running=False) == "epoch 3/3 · 1,000 events/s"
    stopped = training_pace([*_events(CLASSIFIER[0]), {"type": "early_stop", "epoch": 1}])
    assert (stopped.epoch, stopped.epochs, stopped.seconds_left) == (1, 1, 0.0)
    bdt = training_pace(_events({"epoch": 1, "epochs": 1, "loss": 0.3, "seconds": 0.5}))
    assert bdt.text() == "epoch 1/1"  # the test and the bundle still to come: no "0 s"


def test_durations_read_as_minutes_and_hours() -> None:
    assert [duration_text(s) for s in (0.2, 42, 125, 3600 + 125)] == [
        "0 s",
        "42 s",
        "2 min 05 s",
        "1 h 02 min",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("validation", "series"),
    [
        (0.2, {"loss": ["loss", "val_loss"], "metrics": ["val_accuracy", "val_auc"]}),
        (0.0, {"loss": ["loss"], "metrics": []}),  # no validation split: the loss alone
    ],
)
def test_monitor_of_a_finished_mlp_splits_curves_and_tells_its_pace(
    tmp_path: Path, isolated: Path, validation: float, series: dict[str, list[str]]
) -> None:
    spec = write_example_dataset(tmp_path, events_per_file=1500, files_per_class=1)
    dataset = DatasetSpec.from_file(spec).to_dict()
    dataset["split"] = {"train": 0.6, "validation": validation, "test": 0.4 - validation}
    client = Client(transport="in-process")
    try:
        training = {"epochs": 2, "early_stopping": None, "batch_size": 256}
        job = Job.submit({"dataset": dataset, "training": training}, client=client)
        job = job.wait(timeout=180)
        assert job.status == "succeeded", job.logs()
        monitor = TrainingMonitor(job.id, client, follow=False)
        assert [h["epoch"] for h in monitor.history] == [1, 2]
        assert monitor.series == series
        axes = monitor.figure().axes
        assert len(axes) == (2 if validation else 1)
        assert _lines(axes[0])["loss"][1] == [h["loss"] for h in monitor.history]
        if validation:
            assert _lines(axes[1])["val_auc"][1] == [h["val_auc"] for h in monitor.history]
        rate = monitor.history[-1]["events_per_s"]
        assert monitor.pace == f"epoch 2/2 · {rate:,.0f} events/s"  # finished: no time left
    finally:
        client.close()
