"""``mlaas train``'s view of the training events: tqdm bars per epoch, one line per
epoch, or JSON lines; the events themselves are unchanged."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from mlaas_jupyter.cli.train import ProgressPrinter

EVENTS: list[dict[str, Any]] = [
    {"type": "start", "run_dir": "/r", "name": "mlp", "task": "binary"},
    {"type": "stats", "events": {"train": 600}, "width": 3, "features": ["a"], "cached": False},
    {"type": "progress", "epoch": 1, "batch": 5, "batches": 10, "events": 1280,
     "events_per_s": 640.0},
    {"type": "progress", "epoch": 1, "batch": 9, "batches": 10, "events": 2304,
     "events_per_s": 1000.0},
    {"type": "epoch", "epoch": 1, "epochs": 2, "loss": 0.5, "val_loss": 0.25, "val_auc": None},
    {"type": "progress", "epoch": 2, "batch": 4, "batches": 10, "events": 1024,
     "events_per_s": 512.0},
    {"type": "epoch", "epoch": 2, "epochs": 2, "loss": 0.4, "val_loss": 0.2},
    {"type": "done", "bundle": "/r/bundle", "metrics": {}},
]  # fmt: skip


def _show(bars: bool | None) -> str:
    stream = io.StringIO()
    printer = ProgressPrinter(stream=stream, bars=bars)
    for event in EVENTS:
        printer(event)
    printer.close()
    return stream.getvalue()


def test_lines_without_bars_where_nobody_watches() -> None:
    assert _show(None).splitlines() == [  # a StringIO is no terminal: no bar
        "stats: {'events': {'train': 600}, 'width': 3, 'cached': False}",
        "epoch 1/2  loss 0.5000  val_loss 0.2500",
        "epoch 2/2  loss 0.4000  val_loss 0.2000",
    ]


def test_a_bar_per_epoch_from_the_progress_events() -> None:
    text = _show(True)
    assert "epoch 1:  90%" in text  # batch 9 of 10
    assert "| 9/10 [" in text
    assert "1,000 events/s" in text
    assert "epoch 2:  40%" in text
    lines = [line.split("\r")[-1] for line in text.split("\n")]
    assert "epoch 1/2  loss 0.5000  val_loss 0.2500" in lines  # the bar made way for it


def test_json_lines_are_the_events(capsys: pytest.CaptureFixture[str]) -> None:
    printer = ProgressPrinter(stream=io.StringIO(), as_json=True)
    for event in EVENTS:
        printer(event)
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == EVENTS
    assert err == ""
