"""The training report end to end: a real training run writes ``report.json`` and its
plots, the bundle holds a copy, :func:`load_report` reads it back; broken reports are
refused naming the file; every section's plots are drawn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mlaas_jupyter.errors import SourceError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.specs.report import Report
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.train.report import build_report, load_report, write_report
from mlaas_jupyter.train.runner import TrainResult, train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _spec(folder: Path, tmp: Path, model: str, **dataset: Any) -> TrainSpec:
    data = yaml.safe_load((folder / "dataset.yaml").read_text())
    data.update(dataset)
    data = {k: v for k, v in data.items() if v is not None}  # None: the key removed
    training = {"epochs": 1, "batch_size": 256, "device": "cpu", "output": str(tmp / "runs")}
    return TrainSpec.from_dict(
        {"dataset": data, "model": {"name": model}, "training": training}, base_dir=folder
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("example")
    write_example_dataset(folder, events_per_file=1500, files_per_class=1)
    return folder


@pytest.fixture(scope="module")
def bdt_run(
    example: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainResult, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("bdt")
    events: list[dict[str, Any]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLAAS_CACHE_DIR", str(tmp / "cache"))
        result = train(_spec(example, tmp, "bdt"), on_event=events.append)
    return result, events


def test_binary_bdt_run_writes_the_report(
    bdt_run: tuple[TrainResult, list[dict[str, Any]]],
) -> None:
    result, events = bdt_run
    path = result.run_dir / "report.json"
    report = load_report(path)
    assert (report.report_format, report.task, report.split) == (1, "binary", "test")
    assert (report.classes, report.signal) == (["background", "signal"], "signal")
    assert report.events["test"] == result.metrics["events"]
    assert report.events["train"] > report.events["test"]
    # the report's ROC integral is the run's test AUC: the same events and weights
    assert report.efficiencies is not None
    assert report.efficiencies.roc_integral == pytest.approx(result.metrics["auc"], abs=1e-9)
    assert set(report.efficiencies.signal_at_background) == {"0.001", "0.01", "0.1", "0.3"}
    over = report.overtraining
    assert over is not None
    assert set(over.classes) == {"background", "signal"}
    assert over.threshold == 0.05
    assert over.flagged == [k for k, v in over.classes.items() if v.flagged]
    assert all(len(c.train) == len(over.edges) - 1 for c in over.classes.values())
    ranking = report.ranking
    assert ranking is not None
    assert ranking.metric == "auc"
    names = {v.name: v.kind for v in ranking.variables}
    assert names["Jet_pt"] == "jagged"
    assert names["HT"] == "flat"
    assert names["Jet.mask"] == "mask"
    assert {c.name for c in ranking.columns} >= {"Jet_pt[0]", "Jet_pt[5]", "MET_pt"}
    assert ranking.native is not None  # the BDT's split gains
    assert sum(n.importance for n in ranking.native) == pytest.approx(1.0)
    assert ranking.variables[0].importance == max(
        v.importance for v in ranking.variables if v.importance is not None
    )
    correlations = report.correlations
    assert correlations is not None
    assert set(correlations.classes) == {"background", "signal"}
    assert "Jet.mask[0]" in correlations.masks
    assert "Jet.mask[0]" not in correlations.variables
    size = len(correlations.variables)
    assert all(np.asarray(m).shape == (size, size) for m in correlations.classes.values())
    assert (report.confusion, report.one_vs_rest, report.regression) == (None, None, None)
    for name, relative in report.plots.items():
        assert (result.run_dir / relative).read_bytes()[:8] == PNG_MAGIC, name
    assert {"overtraining", "ranking", "roc", "correlations_signal"} <= set(report.plots)
    # the bundle carries the same report; the run said where it is
    assert json.loads((result.bundle / "report.json").read_text()) == json.loads(path.read_text())
    said = [e for e in events if e["type"] == "report"]
    assert said == [{"type": "report", "path": str(path), "flagged": over.flagged}]
    notes = [e["message"] for e in events if e["type"] == "note"]
    assert len([n for n in notes if n.startswith("overtraining:")]) == len(over.flagged)


def test_load_report_refuses_what_is_not_a_report(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no training report") as missing:
        load_report(tmp_path)
    assert missing.value.path == str(tmp_path / "report.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"report_format": 1,')
    with pytest.raises(SourceError, match="not valid JSON") as err:
        load_report(broken)
    assert err.value.path == str(broken)
    broken.write_text(json.dumps({"report_format": 2}))
    with pytest.raises(SourceError, match=r"report_format 2 is not supported"):
        load_report(broken)
    broken.write_text(json.dumps({"report_format": 1, "task": "binary", "classes": [],
                                  "signal": None, "split": "test", "events": {},
                                  "overtraining": {"threshold": "high"}}))  # fmt: skip
    with pytest.raises(SourceError, match=r"overtraining") as err:
        load_report(broken)
    assert str(err.value).startswith(f"{broken}: not a valid training report")


def test_plots_of_a_multiclass_and_a_regression_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 2000
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 3)) + y[:, None]
    scores = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    ones = np.ones(n)
    report = build_report(
        "multiclass", ["a", "b", "c"], y, ones, scores, x=x, train=(y, ones, scores),
        predict=lambda m: np.exp(m) / np.exp(m).sum(axis=1, keepdims=True),
    )  # fmt: skip
    path = write_report(tmp_path / "multi", report)
    loaded = load_report(path)
    assert loaded.overtraining is not None
    assert loaded.overtraining.flagged == []
    assert set(loaded.plots) == {"overtraining", "ranking", "correlations_a", "correlations_b",
                                 "correlations_c", "roc", "confusion", "one_vs_rest"}  # fmt: skip
    truth = rng.uniform(0, 10, n)
    predicted = truth + rng.normal(size=n)
    report = build_report("regression", [], truth, np.ones(n), predicted,
                          train=(truth, np.ones(n), predicted), x=x)  # fmt: skip
    loaded = load_report(write_report(tmp_path / "reg", report, style="CMS"))
    assert loaded.regression is not None
    assert loaded.efficiencies is None
    assert set(loaded.overtraining.classes if loaded.overtraining else ()) == {"all"}
    assert set(loaded.plots) == {"overtraining", "correlations_all", "residuals", "regression"}
    for relative in loaded.plots.values():
        assert (tmp_path / "reg" / relative).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_multiclass_and_regression_runs(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    if task == "multiclass":
        third = tmp_path / "third_0.root"  # a third class: the signal's events again
        third.write_bytes((example / "signal_0.root").read_bytes())
        classes = {"background": ["background_*.root"], "signal": ["signal_*.root"],
                   "third": [str(third)]}  # fmt: skip
        spec = _spec(example, tmp_path, "mlp", classes=classes)
        # a random sample of 400 events of each split, and the ranking on 100 of them
        spec = spec.with_training(report={"max_events": 400, "ranking_events": 100})
    else:
        files = ["background_*.root", "signal_*.root"]
        spec = _spec(example, tmp_path, "mlp", classes=None, files=files, weights=None,
                     new_branches=None, target="sum(Jet_pt) / 100")  # fmt: skip
    result = train(spec)
    report = load_report(result.run_dir)
    assert report.task == task
    if task == "multiclass":
        assert report.confusion is not None
        assert report.confusion.classes == list(report.classes)
        assert report.one_vs_rest is not None
        assert set(report.one_vs_rest) == set(report.classes)
        assert report.efficiencies is not None
        assert report.signal == "third"
        assert report.events == {"train": 400, "test": 400}
        assert report.ranking is not None
        assert report.ranking.events == 100
        assert [n.split(":")[0] for n in report.notes] == ["test", "train"]
        assert report.notes[0].startswith("test: 400 of ")
    else:
        assert report.regression is not None
        assert report.ranking is not None
        assert report.ranking.metric == "r2"
        assert report.ranking.native is None
        assert report.regression.r2 == pytest.approx(result.metrics["r2"], abs=1e-6)
    assert isinstance(report, Report)


def test_report_settings_of_the_training_spec() -> None:
    from mlaas_jupyter.errors import SpecError
    from mlaas_jupyter.specs.training import TrainConfig

    config = TrainConfig.parse({"report": {"ks_threshold": "1e-3", "max_events": 5000}})
    assert (config.report.ks_threshold, config.report.max_events) == (0.001, 5000)
    assert TrainConfig().report.ks_threshold == 0.05
    with pytest.raises(SpecError, match=r"training\.report\.ks_threshold: must be > 0"):
        TrainConfig.parse({"report": {"ks_threshold": 0}})
    with pytest.raises(SpecError, match=r"training\.report\.ks_treshold: unknown field"):
        TrainConfig.parse({"report": {"ks_treshold": 0.1}})
