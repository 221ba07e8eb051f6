"""The sweep view (table, scatter, %mlaas display) and SweepStudio's form and actions.

The studio's logic runs against a small stand-in client that records its calls (the
unit tests); one slow test runs a real two-trial sweep through the in-process Client.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import matplotlib.colors
import pytest

from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import MlaasError, SpecError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.notebook import SweepStudio, TrainingStudio, show_sweep
from mlaas_jupyter.notebook.widgets._sweep_studio import parse_param_lines
from mlaas_jupyter.stream import DatasetSpec
from mlaas_jupyter.train.plots import sweep_figure, sweep_rows

PARAMS = {
    "model.params.dropout": "0,0.1",
    "training.learning_rate": "loguniform:1e-4:1e-2",
    "model.params.activation": "relu,tanh",
}


def _trial(number: int, state: str, value: float | None, lr: float, act: str) -> dict[str, Any]:
    params = {"model.params.dropout": number % 2 / 10, "training.learning_rate": lr}
    params["model.params.activation"] = act
    return {"number": number, "job_id": f"job{number}", "params": params, "state": state,
            "value": value, "epoch": 2 if value is not None else None}  # fmt: skip


RECORD: dict[str, Any] = {
    "id": "sw1",
    "name": "toy-sweep",
    "state": "running",
    "created": 1.0,
    "finished": None,
    "request": {"params": PARAMS, "trials": 5},
    "metric": "val_auc",
    "direction": "maximize",
    "sampler": "tpe",
    "trials_total": 5,
    "parallel": 2,
    "trials": [
        _trial(0, "succeeded", 0.91, 1e-3, "relu"),
        _trial(1, "pruned", 0.62, 2e-4, "tanh"),
        _trial(2, "failed", None, 5e-3, "relu"),
        _trial(3, "succeeded", 0.93, 3e-3, "tanh"),
        _trial(4, "running", None, 8e-4, "relu"),
    ],
    "counts": {"done": 2, "running": 1, "queued": 0, "pruned": 1, "failed": 1, "cancelled": 0},
    "best": {"number": 3, "job_id": "job3", "value": 0.93, "params": {}, "model": None,
             "version": None},
    "error": None,
}  # fmt: skip


def test_rows_list_the_trials_with_their_parameters_and_the_best() -> None:
    rows = sweep_rows(RECORD)
    assert [list(r) for r in rows[:1]] == [
        ["number", "state", *PARAMS, "value", "best"]  # the request's parameter order
    ]
    assert [(r["number"], r["state"], r["value"], r["best"]) for r in rows] == [
        (0, "succeeded", 0.91, False),
        (1, "pruned", 0.62, False),
        (2, "failed", None, False),
        (3, "succeeded", 0.93, True),
        (4, "running", None, False),
    ]
    assert rows[3]["training.learning_rate"] == 3e-3


def test_scatter_draws_each_parameter_against_the_metric() -> None:
    figure = sweep_figure(RECORD)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == list(PARAMS)
    assert all(ax.get_ylabel() == "val_auc" for ax in axes)
    dropout, rate, activation = axes
    assert rate.get_xscale() == "log"  # loguniform
    assert dropout.get_xscale() == "linear"
    assert [t.get_text() for t in activation.get_xticklabels()] == ["relu", "tanh"]
    lines = {line.get_label(): line for line in rate.lines}
    assert set(lines) == {"succeeded", "pruned", "failed (no value)", "running (no value)", "best"}
    assert list(lines["succeeded"].get_xdata()) == [1e-3, 3e-3]
    assert list(lines["succeeded"].get_ydata()) == [0.91, 0.93]
    assert list(lines["pruned"].get_ydata()) == [0.62]
    assert list(lines["failed (no value)"].get_xdata()) == [5e-3]
    assert list(lines["best"].get_ydata()) == [0.93]
    # drawn apart: each state its own marker and colour
    styles = {
        (line.get_marker(), matplotlib.colors.to_hex(line.get_color())) for line in rate.lines
    }
    assert len(styles) == 5
    assert list({line.get_label(): line for line in activation.lines}["best"].get_xdata()) == [1]
    assert figure.get_suptitle() == "toy-sweep: val_auc (maximize)"


def test_show_sweep_displays_progress_table_and_scatter() -> None:
    view = show_sweep(RECORD)
    bundle = view._repr_mimebundle_()
    assert (
        bundle["text/plain"]
        == "<sweep toy-sweep running: 2 done, 1 running, 1 pruned, 1 failed of 5>"
    )
    page = bundle["text/html"]
    assert "2 done, 1 running, 1 pruned, 1 failed of 5" in page
    assert "best val_auc 0.93 (trial 3)" in page
    assert "<th>training.learning_rate</th>" in page
    assert "<tr style='font-weight: bold'><td>★ 3</td>" in page
    assert page.count("<tr") == 6  # the heading and five trials
    assert "data:image/png;base64," in page
    empty = show_sweep({**RECORD, "trials": [], "best": None, "counts": {}})
    assert "data:image/png" not in empty.to_html()


def test_parameters_are_read_one_a_line_and_checked() -> None:
    text = "model.hidden = 64, 128,256\n# the rate\n\ntraining.learning_rate=loguniform:1e-4:1e-2"
    assert parse_param_lines(text) == {
        "model.hidden": "64, 128,256",
        "training.learning_rate": "loguniform:1e-4:1e-2",
    }
    with pytest.raises(SpecError, match=r"params line 1: expected PATH = FORM"):
        parse_param_lines("model.hidden 64")
    with pytest.raises(SpecError, match=r"params.training.learning_rate: expected LOW < HIGH"):
        parse_param_lines("training.learning_rate = loguniform:1e-2:1e-4")
    with pytest.raises(SpecError, match=r"params.model.hidden: given twice \(line 2\)"):
        parse_param_lines("model.hidden = 1,2\nmodel.hidden = 3")
    with pytest.raises(SpecError, match=r"^params: add a parameter"):
        parse_param_lines("# nothing\n")


class FakeClient:
    """Stands in for the Client's sweep methods: records the calls, replays records."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.calls: list[tuple[str, Any]] = []

    def submit_sweep(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("submit_sweep", request))
        return {**self.records[0], "trials": [], "counts": {}, "best": None}

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        self.calls.append(("sweep", sweep_id))
        return self.records.pop(0) if len(self.records) > 1 else self.records[0]

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        self.calls.append(("cancel_sweep", sweep_id))
        return {**self.records[-1], "state": "cancelled"}


def test_studio_submits_the_form_polls_and_cancels() -> None:
    finished = copy.deepcopy(RECORD)
    finished["state"] = "succeeded"
    client = FakeClient([RECORD, finished])
    studio = SweepStudio("train.yaml", {"model.hidden": "64,128"}, client=client, interval=3600)  # type: ignore[arg-type]
    studio.params_box.value += "\ntraining.learning_rate = loguniform:1e-4:1e-2"
    studio.trials.value, studio.parallel.value, studio.sampler.value = 6, 2, "random"
    studio.direction.value = "minimize"
    studio.metric.value = " val_loss "
    studio.start_button.click()
    assert client.calls == [
        (
            "submit_sweep",
            {
                "spec": "train.yaml",
                "params": {
                    "model.hidden": "64,128",
                    "training.learning_rate": "loguniform:1e-4:1e-2",
                },
                "trials": 6,
                "parallel": 2,
                "sampler": "random",
                "metric": "val_loss",
                "direction": "minimize",
                "prune": True,
                "executor": None,
                "name": None,
            },
        )
    ]
    assert studio.sweep_id == "sw1"
    assert studio.status.value == "started sweep sw1"
    assert (studio.start_button.disabled, studio.cancel_button.disabled) == (True, False)
    studio.stop()  # the test polls by hand

    assert studio.poll()["state"] == "running"
    assert "2 done, 1 running, 1 pruned, 1 failed of 5" in studio.summary.value
    assert studio.table.value.count("<tr") == 6
    assert studio.scatter.value[:8] == b"\x89PNG\r\n\x1a\n"
    studio.start_button.click()  # still running: refused, said next to the buttons
    assert "still running: cancel it first" in studio.status.value
    assert [c[0] for c in client.calls] == ["submit_sweep", "sweep"]

    studio.cancel_button.click()
    assert client.calls[-1] == ("cancel_sweep", "sw1")
    assert studio.record["state"] == "cancelled"
    assert (studio.start_button.disabled, studio.cancel_button.disabled) == (False, True)


def test_studio_says_what_is_wrong_before_submitting() -> None:
    client = FakeClient([RECORD])
    studio = SweepStudio(client=client)  # type: ignore[arg-type]
    studio.params_box.value = "model.hidden = 64"
    studio.start_button.click()
    assert "spec: give a spec file" in studio.status.value
    studio.spec_box.value = "train.yaml"
    studio.params_box.value = "model.hidden = uniform:3:1"
    studio.start_button.click()
    assert "params.model.hidden: expected LOW &lt; HIGH" in studio.status.value
    assert client.calls == []
    with pytest.raises(MlaasError, match="no sweep to cancel"):
        studio.cancel()


def test_training_studio_sweeps_its_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_example_dataset(tmp_path, events_per_file=200, files_per_class=1)
    monkeypatch.chdir(tmp_path)
    studio = TrainingStudio(["background_0.root", "signal_0.root"])
    studio.branches.select("MET_pt")
    studio.model.model_box.value = "bdt"
    sweep = studio.sweep  # its sweep tab
    assert "the training studio's spec" in sweep.spec_box.placeholder
    sweep.params_box.value = "model.params.max_iter = 5,10"
    request = sweep.request()
    assert request["spec"]["model"]["name"] == "bdt"
    assert request["spec"]["dataset"]["branches"] == ["MET_pt"]
    # absolute paths: the trials may run in another folder
    assert request["spec"]["dataset"]["classes"]["signal_0"]["files"] == [
        str(tmp_path / "signal_0.root")
    ]
    assert request["params"] == {"model.params.max_iter": "5,10"}
    sweep.spec_box.value = "other.yaml"  # a file typed wins
    assert sweep.request()["spec"] == "other.yaml"


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(Client, "submit_sweep"),
    reason="the Client has no sweep methods yet (issue 18 core)",
)
def test_studio_runs_a_real_sweep(tmp_path: Path, isolated: Path) -> None:
    dataset = DatasetSpec.from_file(
        write_example_dataset(tmp_path, events_per_file=1000, files_per_class=1)
    ).to_dict()
    spec = {"dataset": dataset, "model": {"name": "bdt"}, "training": {"epochs": 1}}
    client = Client(transport="in-process")
    try:
        studio = SweepStudio(spec, {"model.params.max_iter": "5,10"}, client=client, interval=0.2)
        studio.sampler.value = "grid"
        studio.name.value = "widget-sweep"
        record = studio.start()
        assert record["trials_total"] == 2
        final = client.wait_sweep(record["id"], timeout=300)
        assert final["state"] == "succeeded", final
        studio.stop()
        shown = studio.poll()
        assert shown["counts"]["done"] == 2
        assert "2 done, 0 running, 0 pruned, 0 failed of 2" in studio.summary.value
        assert studio.table.value.count("★") == 1
        assert studio.scatter.value[:4] == b"\x89PNG"
        values = sorted(r["model.params.max_iter"] for r in sweep_rows(shown))
        assert values == [5, 10]
    finally:
        client.close()
