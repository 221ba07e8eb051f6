"""k-fold training (``training.folds``, ``training.fold_by``): the fold of each event,
each fold's splits, the spec's checks, and 2-fold runs through the one core (one
process, a dask LocalCluster, data-parallel folds, resumed)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
from fold_data import FoldRun, fold_run, fold_spec, write_fold_dataset

from mlaas_jupyter.cli.train import ProgressPrinter
from mlaas_jupyter.core._jobs import admit
from mlaas_jupyter.core.paths import DataRoots
from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs.cluster import ClusterSpec
from mlaas_jupyter.specs.dataset import DatasetSpec, FoldSpec, Split
from mlaas_jupyter.specs.training import TrainConfig
from mlaas_jupyter.stream._folds import fold_dataset, fold_of
from mlaas_jupyter.stream.plan import DatasetPlan, split_codes
from mlaas_jupyter.stream.sources import open_tree
from mlaas_jupyter.stream.stats import stats_key
from mlaas_jupyter.train.runner import train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

SPLIT = Split(train=0.6, validation=0.2, test=0.2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_fold_dataset(tmp_path_factory.mktemp("folds") / "data")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FoldRun:
    return fold_run(tmp_path_factory)


def _blocks(spec: DatasetSpec) -> list[tuple[str, np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """(file, kept entries, split codes) of every chunk of ``spec`` (small chunks)."""
    plan = DatasetPlan(spec)
    out = []
    for file in plan.files:
        source = open_tree(file.path, plan.tree)
        try:
            for chunk in source.iterate(plan.read_columns, 400, 0, None):
                block = plan.select(chunk, file)
                out.append((file.path, chunk.entry_start + block.rows, block.split))
        finally:
            source.close()
    return out


# -- the fold of an event ------------------------------------------------------------
def test_fold_is_value_modulo_k() -> None:
    values = np.array([0, 1, 2, 3, 4, 5, 10, 11], dtype=np.int64)
    assert fold_of(values, 2).tolist() == [0, 1, 0, 1, 0, 1, 0, 1]  # even / odd
    assert fold_of(values, 3).tolist() == [0, 1, 2, 0, 1, 2, 1, 2]
    assert fold_of(np.array([-1, -2, -3]), 3).tolist() == [2, 1, 0]
    big = np.array([2**64 - 1, 2**63 + 2, 7], dtype=np.uint64)  # NanoAOD's event is uint64
    assert fold_of(big, 2).tolist() == [1, 0, 1]
    assert fold_of(big, 5).tolist() == [(2**64 - 1) % 5, (2**63 + 2) % 5, 2]
    with pytest.raises(TypeError, match="integers"):
        fold_of(np.array([0.5]), 2)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_split_codes_of_a_fold(k: int) -> None:
    entries = np.arange(20_000, dtype=np.int64)
    values = entries * 13 + 5
    for index in range(k):
        codes = split_codes(entries, 99, 1, SPLIT, FoldSpec(index=index, k=k, by="x"), values)
        in_fold = values % k == index
        assert np.array_equal(codes == 2, in_fold)  # test: exactly the fold
        assert not np.isin(codes[~in_fold], [2]).any()  # train/validation: never the fold
        train = (codes == 0).sum() / (~in_fold).sum()
        assert train == pytest.approx(0.6 / 0.8, abs=0.02)  # train : validation = 0.6 : 0.2
    # without values: the entry numbers
    codes = split_codes(entries, 99, 1, SPLIT, FoldSpec(index=1, k=2))
    assert np.array_equal(codes == 2, entries % 2 == 1)
    # an event outside both folds' test splits is train (or validation) in both
    a = split_codes(entries, 99, 1, SPLIT, FoldSpec(index=0, k=3))
    b = split_codes(entries, 99, 1, SPLIT, FoldSpec(index=1, k=3))
    both = (a != 2) & (b != 2)
    assert both.sum() == (entries % 3 == 2).sum()
    assert np.array_equal(a[both], b[both])


def test_fold_by_a_written_event_branch(dataset: dict[str, Any]) -> None:
    base = DatasetSpec.from_dict(dataset)
    events = {}
    for path in (dataset["classes"]["background"][0], dataset["classes"]["signal"][0]):
        with uproot.open(path) as handle:
            events[path] = handle["Events"]["event"].array(library="np")
    tested: dict[str, set[int]] = {path: set() for path in events}
    for index in (0, 1):
        for path, entries, split in _blocks(fold_dataset(base, index, 2, "event")):
            values = events[path][entries]
            assert np.array_equal(split == 2, values % 2 == index)
            assert set(np.unique(split[values % 2 != index]).tolist()) <= {0, 1}
            tested[path] |= set(entries[split == 2].tolist())
    for path, values in events.items():  # each event in the test split of one fold
        assert tested[path] == set(range(len(values)))
    # even events are those of fold 0
    path = next(iter(events))
    fold0 = [b for b in _blocks(fold_dataset(base, 0, 2, "event")) if b[0] == path]
    entries = np.concatenate([e[s == 2] for _, e, s in fold0])
    assert (events[path][entries] % 2 == 0).all()


def test_fold_by_entry_number(dataset: dict[str, Any]) -> None:
    base = DatasetSpec.from_dict(dataset)
    for index in range(3):
        for _, entries, split in _blocks(fold_dataset(base, index, 3, None)):
            assert np.array_equal(split == 2, entries % 3 == index)


def test_the_fold_is_part_of_the_statistics_key(dataset: dict[str, Any]) -> None:
    base = DatasetSpec.from_dict(dataset)
    plan = DatasetPlan(base)
    keys = {
        stats_key(spec, plan.files)
        for spec in (
            base,
            fold_dataset(base, 0, 2, "event"),
            fold_dataset(base, 1, 2, "event"),
            fold_dataset(base, 0, 2, None),
            fold_dataset(base, 0, 3, "event"),
        )
    }
    assert len(keys) == 5
    # the fold_by branch is read even though it is no feature
    assert "event" in DatasetPlan(fold_dataset(base, 0, 2, "event")).read_columns
    assert "event" not in DatasetPlan(base).read_columns
    # and travels with the spec (data-parallel ranks, dask tasks parse it again)
    again = DatasetSpec.from_dict(fold_dataset(base, 1, 2, "event").to_dict())
    assert again.fold == FoldSpec(index=1, k=2, by="event")


# -- the spec ------------------------------------------------------------------------
def test_folds_setting() -> None:
    assert (TrainConfig().folds, TrainConfig().fold_by) == (1, None)
    assert TrainConfig.from_dict({"folds": 10, "fold_by": "event"}).folds == 10
    for bad in (11, 0, 2.5, "3", True):
        with pytest.raises(SpecError, match=r"training\.folds"):
            TrainConfig.from_dict({"folds": bad})
    with pytest.raises(SpecError, match=r"index"):
        FoldSpec(index=2, k=2)
    with pytest.raises(SpecError, match=r"training\.fold_by: k-fold training only"):
        TrainConfig.from_dict({"fold_by": "event"})


def test_fold_by_must_name_an_integer_branch(dataset: dict[str, Any], tmp_path: Path) -> None:
    base = DatasetSpec.from_dict(dataset)
    with pytest.raises(
        SpecError, match=r"training\.fold_by.*'Events' has no branch 'evnt'; did you mean event"
    ):
        DatasetPlan(fold_dataset(base, 0, 2, "evnt"))
    with pytest.raises(SpecError, match=r"training\.fold_by.*branch 'MET_pt' of tree 'Events'"):
        DatasetPlan(fold_dataset(base, 0, 2, "MET_pt"))
    # before anything is trained, and at submit (the core's admit)
    spec = fold_spec(dataset, tmp_path, folds=2, fold_by="evnt")
    with pytest.raises(SpecError, match=r"did you mean event"):
        train(spec, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "fold0").exists()
    folder = Path(dataset["classes"]["signal"][0]).parent
    with pytest.raises(SpecError, match=r"training\.fold_by.*did you mean event"):
        admit(DataRoots([str(folder)]), spec)


# -- runs ----------------------------------------------------------------------------
def _types(events: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(e["type"], e.get("fold")) for e in events if e["type"] not in ("progress", "note")]


@pytest.mark.slow
def test_two_fold_run(run: FoldRun) -> None:
    result, events = run.result, run.events
    folder = result.run_dir
    assert _types(events) == [
        ("start", None),
        *[(t, i) for i in (0, 1) for t in ("stats", "model", "epoch", "epoch", "report", "fold")],
        ("test", None),
        ("report", None),
        ("done", None),
    ]
    for index in (0, 1):
        fold = folder / f"fold{index}"
        assert (fold / "checkpoint").is_dir()
        assert (fold / "plots" / "roc.png").is_file()
        assert (fold / "bundle" / "manifest.json").is_file()
        fold_metrics = next(e for e in events if e["type"] == "fold" and e["fold"] == index)
        manifest = json.loads((fold / "bundle" / "manifest.json").read_text())
        assert fold_metrics["metrics"] == manifest["metrics"]
        assert manifest["metrics"]["split"] == "test"
        assert manifest["dataset"]["fold"] == {"index": index, "k": 2, "by": "event"}
    # the combined metrics: every event once, scored out of fold
    metrics = result.metrics
    assert metrics["split"] == "out_of_fold"
    assert (
        metrics["events"]
        == 3000
        == sum(e["metrics"]["events"] for e in events if e["type"] == "fold")
    )
    assert next(e for e in events if e["type"] == "test")["split"] == "out_of_fold"
    assert (folder / "plots" / "roc.png").is_file()
    curves = json.loads((folder / "plots" / "curves.json").read_text())
    assert curves["roc"]["curves"]["signal"]["auc"] == pytest.approx(metrics["auc"])
    report = json.loads((folder / "report.json").read_text())
    assert report["split"] == "out_of_fold"
    assert [f["fold"] for f in report["folds"]] == [0, 1]
    assert report["events"]["test"] == 3000
    for fold in report["folds"]:  # each fold's overtraining check beside its metrics
        own = json.loads((folder / f"fold{fold['fold']}" / "report.json").read_text())
        for name, check in own["overtraining"]["classes"].items():
            assert fold["metrics"][f"ks_pvalue {name}"] == check["ks_pvalue"]
    # the bundle: fold 0 at the top, every fold under fold{i}/
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert (manifest["native"], manifest["onnx"]) == ("fold0/model.pt", "fold0/model.onnx")
    assert manifest["folds"]["k"] == 2
    assert manifest["folds"]["by"] == "event"
    assert [m["fold"] for m in manifest["folds"]["models"]] == [0, 1]
    for model in manifest["folds"]["models"]:
        i = model["fold"]
        assert (model["native"], model["onnx"]) == (f"fold{i}/model.pt", f"fold{i}/model.onnx")
        assert model["format"] == "torch-state-dict"
        assert (result.bundle / model["native"]).is_file()
        assert model["metrics"]["split"] == "test"
    assert manifest["metrics"] == metrics
    assert "fold" not in manifest["dataset"]
    assert manifest["training"]["folds"] == 2
    assert (result.bundle / "report.json").is_file()


@pytest.mark.slow
def test_resume_keeps_finished_folds(dataset: dict[str, Any], tmp_path: Path) -> None:
    spec = fold_spec(dataset, tmp_path / "runs", folds=2, epochs=1)

    class Stop(Exception):
        pass

    def stop_in_fold_1(event: dict[str, Any]) -> None:
        if event["type"] == "epoch" and event.get("fold") == 1:
            raise Stop

    with pytest.raises(Stop):
        train(spec, on_event=stop_in_fold_1)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "fold0" / "bundle" / "manifest.json").is_file()
    assert (run_dir / "fold1" / "checkpoint").is_dir()
    assert not (run_dir / "bundle").exists()
    kept = (run_dir / "fold0" / "bundle" / "model.pt").stat().st_mtime_ns
    events: list[dict[str, Any]] = []
    result = train(spec.with_training(resume=True), on_event=events.append)
    assert result.run_dir == run_dir
    assert any(e.get("message") == "fold 0 had finished: kept" for e in events)
    assert not any(e["type"] == "epoch" and e.get("fold") == 0 for e in events)
    assert (run_dir / "fold0" / "bundle" / "model.pt").stat().st_mtime_ns == kept
    assert result.metrics["split"] == "out_of_fold"
    assert [e["fold"] for e in events if e["type"] == "fold"] == [0, 1]


@pytest.mark.slow
def test_folds_in_parallel_on_a_dask_cluster(dataset: dict[str, Any], tmp_path: Path) -> None:
    spec = fold_spec(dataset, tmp_path, folds=2, fold_by="event", epochs=1)
    cluster = ClusterSpec.parse({"local": {"workers": 2, "threads": 1}})
    spec = spec.model_copy(update={"cluster": cluster})
    events: list[dict[str, Any]] = []
    result = train(spec, on_event=events.append, run_dir=tmp_path / "run")
    assert any("in parallel" in e.get("message", "") for e in events)
    assert sorted(e["fold"] for e in events if e["type"] == "fold") == [0, 1]
    assert {e["fold"] for e in events if e["type"] == "epoch"} == {0, 1}
    assert result.metrics["split"] == "out_of_fold"
    assert result.metrics["events"] == 3000
    for index in (0, 1):
        assert (tmp_path / "run" / f"fold{index}" / "bundle" / "model.pt").is_file()
    assert (result.bundle / "fold1" / "model.onnx").is_file()


@pytest.mark.slow
def test_data_parallel_folds(dataset: dict[str, Any], tmp_path: Path) -> None:
    spec = fold_spec(dataset, tmp_path, folds=2, fold_by="event", epochs=1, workers=2)
    events: list[dict[str, Any]] = []
    result = train(spec, on_event=events.append, run_dir=tmp_path / "run")
    notes = [
        e["message"] for e in events if e["type"] == "note" and "data-parallel" in e["message"]
    ]
    assert len(notes) == 2  # each fold trains on 2 ranks
    assert [e["fold"] for e in events if e["type"] == "fold"] == [0, 1]
    assert result.metrics["events"] == 3000
    manifest = json.loads((result.bundle / "manifest.json").read_text())
    assert [m["fold"] for m in manifest["folds"]["models"]] == [0, 1]


def test_mlaas_train_prints_the_folds() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream=stream, bars=None)
    printer({"type": "epoch", "epoch": 1, "epochs": 2, "loss": 0.5, "val_loss": 0.25, "fold": 1})
    printer({"type": "fold", "fold": 1, "metrics": {"auc": 0.75, "events": 10, "split": "test"}})
    printer.close()
    assert stream.getvalue().splitlines() == [
        "fold 1  epoch 1/2  loss 0.5000  val_loss 0.2500",
        "fold 1 test  auc 0.7500",
    ]
