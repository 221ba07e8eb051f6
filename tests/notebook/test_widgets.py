"""Widgets: their state and actions, on real ROOT files and real jobs in process."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
import yaml

from mlaas_jupyter.client import Client
from mlaas_jupyter.client._job import Job
from mlaas_jupyter.errors import MlaasError, SourceError
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.notebook.widgets import (
    BranchSelector,
    CutEditor,
    ModelPicker,
    TrainingMonitor,
    TrainingStudio,
)
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.stream import DatasetSpec


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Toy signal/background files (2 x 3000 events) and their dataset.yaml."""
    folder = tmp_path_factory.mktemp("toy")
    return write_example_dataset(folder, events_per_file=3000, files_per_class=1).parent


def test_branch_selector_lists_branches_and_estimates_width(hzz_path: str) -> None:
    selector = BranchSelector(hzz_path)
    assert selector.tree == "events"
    assert selector.entries == 2421
    kinds = selector.kinds
    assert kinds["NMuon"] == "flat"
    assert kinds["Muon_Px"] == "jagged"
    assert selector.width == 0
    assert selector.features == 0

    assert selector.select("Muon_P*") == ["Muon_Px", "Muon_Py", "Muon_Pz"]
    selector.select("MET_px")
    # 3 jagged branches padded to 8, one flat, plus one 8-column mask for the collection
    assert selector.width == 3 * 8 + 1 + 8
    assert selector.features == 4
    selector.mask = False
    assert selector.width == 3 * 8 + 1
    selector.jagged_length = 4
    assert selector.width == 3 * 4 + 1
    assert selector.deselect("Muon_*") == ["Muon_Px", "Muon_Py", "Muon_Pz"]
    assert selector.selected == ["MET_px"]
    assert selector.width == 1


def test_branch_selector_refuses_unknown_branches_and_trees(tmp_path: Path) -> None:
    path = tmp_path / "mixed.root"
    with uproot.recreate(path) as handle:
        handle.mktree("t", {"x": np.float32, "n": np.int32}).extend(
            {"x": np.arange(5, dtype=np.float32), "n": np.arange(5, dtype=np.int32)}
        )
        handle.mktree("u", {"y": np.float64}).extend({"y": np.zeros(3)})
    with pytest.raises(SourceError, match="has 2 trees; choose one with tree="):
        BranchSelector(path)
    selector = BranchSelector(path, tree="t")
    with pytest.raises(Exception, match="no branch 'nope' in tree 't'"):
        selector.selected = ["nope"]
    with pytest.raises(SourceError, match="has no tree 'v'"):
        BranchSelector(path, tree="v")


def test_branch_selector_spec_loads_as_dataset_spec(toy: Path) -> None:
    files = sorted(str(p) for p in toy.glob("*.root"))
    selector = BranchSelector(files)
    with pytest.raises(SourceError, match="no branch is selected"):
        selector.to_spec()
    selector.select("Jet_pt")
    selector.select("MET_pt")
    spec = DatasetSpec.from_dict(selector.to_spec())
    assert spec.tree == "Events"
    assert spec.branches == ("Jet_pt", "MET_pt")
    assert [g.name for g in spec.classes] == ["background_0", "signal_0"]
    assert spec.jagged_for("Jet_pt").length == 8


def _efficiency(path: Path, cut: Any) -> float:
    arrays = uproot.open(f"{path}:Events").arrays(["nJet", "MET_pt"], library="np")
    return float(np.mean(cut(arrays)))


def test_cut_editor_efficiency_and_inline_errors(toy: Path) -> None:
    editor = CutEditor(toy / "dataset.yaml", branch="MET_pt", max_events=10_000)
    editor.cuts_box.value = "nJet >= 5\nMET_pt > 40"
    editor.refresh()
    assert editor.errors == {}
    for name in ("background", "signal"):
        expected = _efficiency(
            toy / f"{name}_0.root", lambda a: (a["nJet"] >= 5) & (a["MET_pt"] > 40)
        )
        assert editor.efficiency[name] == pytest.approx(expected)
    classes = editor.result["classes"] if editor.result else {}
    assert sum(classes["signal"]["after"]) < sum(classes["signal"]["before"])
    assert editor.plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "efficiency of the cuts" in editor.efficiency_box.value

    editor.cuts_box.value = "nJet >= 5\nMET_pt >"
    assert list(editor.errors) == ["cuts line 2"]
    assert "invalid syntax" in editor.errors["cuts line 2"]
    assert "cuts line 2" in editor.messages.value
    editor.cuts_box.value = "nJet >= 5\nMET_ptt > 3"
    assert "MET_ptt" in editor.errors["cuts line 2"]
    with pytest.raises(MlaasError, match="cuts line 2"):
        editor.to_spec()
    editor.definitions_box.value = "oops"
    assert editor.errors["new branches line 1"] == "write NAME = EXPRESSION"


def test_cut_editor_new_branches_in_cuts_and_histograms(toy: Path) -> None:
    editor = CutEditor(toy / "dataset.yaml", branch="MET_pt")
    editor.definitions_box.value = "HT = sum(Jet_pt)\nlead = Jet_pt[:, 0]"
    editor.cuts_box.value = "HT > 300"
    editor.branch_box.value = "lead"
    editor.refresh()
    assert editor.errors == {}
    path = toy / "signal_0.root"
    jets = uproot.open(f"{path}:Events")["Jet_pt"].array()
    import awkward as ak

    expected = float(np.mean(ak.to_numpy(ak.sum(jets, axis=1)) > 300))
    assert editor.efficiency["signal"] == pytest.approx(expected)
    spec = editor.to_spec()
    assert spec["new_branches"] == {"HT": "sum(Jet_pt)", "lead": "Jet_pt[:, 0]"}
    assert spec["cuts"] == ["HT > 300"]
    assert DatasetSpec.from_dict(spec, toy).cuts == ("HT > 300",)


def test_model_picker_config_for_each_model() -> None:
    picker = ModelPicker()
    config = picker.model_config()
    assert config["model"] == {
        "name": "mlp",
        "params": {"sizes": [64, 64], "dropout": 0.0, "activation": "relu"},
    }
    assert config["split"] == {"train": 0.7, "validation": 0.15, "test": 0.15}
    picker.model_box.value = "deepsets"
    assert picker.model_config()["model"]["params"]["phi"] == [32, 32]
    picker.model_box.value = "file"
    with pytest.raises(ValueError, match="model file"):
        picker.model_config()
    picker.file_box.value = "net.py"
    assert picker.model_config()["model"] == {"file": "net.py", "params": {}}
    assert picker.train() is None
    assert "nothing to train" in picker.status.value
    seen: list[dict[str, Any]] = []
    picker.on_train = seen.append
    picker.train_button.click()
    assert seen
    assert seen[0]["model"]["file"] == "net.py"
    picker.on_train = lambda config: 1 / 0
    picker.train()
    assert "division by zero" in picker.status.value


def test_model_picker_workers_cluster_and_plot_style() -> None:
    picker = ModelPicker()
    config = picker.model_config()
    assert config["cluster"] is None
    assert "workers" not in config["training"]
    assert "style" not in config["training"]
    picker.workers.value = 2
    picker.plot_style.value = "ATLAS"
    picker.cluster.value = "{gateway: {address: 'http://gw:8000', workers: 4}}"
    config = picker.model_config()
    assert (config["training"]["workers"], config["training"]["style"]) == (2, "ATLAS")
    assert "folds" not in config["training"]
    picker.folds.value = 2
    assert picker.model_config()["training"]["folds"] == 2
    assert config["cluster"] == {"gateway": {"address": "http://gw:8000", "workers": 4}}
    spec = {"dataset": {"classes": {"a": "a.root", "b": "b.root"}}, **config}
    del spec["split"], spec["executor"], spec["kernel_name"]
    checked = TrainSpec.from_dict(spec)
    assert checked.cluster is not None
    assert checked.cluster.gateway is not None
    assert checked.cluster.gateway.workers == 4
    picker.cluster.value = "local"
    assert picker.model_config()["cluster"] == "local"


@pytest.mark.slow
def test_studio_trains_and_monitor_replays(toy: Path, isolated: Path) -> None:
    client = Client(transport="in-process")
    try:
        files = [str(toy / "background_0.root"), str(toy / "signal_0.root")]
        studio = TrainingStudio(files, client=client)
        studio.branches.select("MET_pt")
        studio.branches.select("Jet_pt")
        studio.cuts.cuts_box.value = "nJet >= 2"
        studio.model.model_box.value = "bdt"
        exported = yaml.safe_load(studio.to_yaml(isolated / "train.yaml"))
        assert exported["dataset"]["cuts"] == ["nJet >= 2"]
        assert TrainSpec.from_file(isolated / "train.yaml").model.name == "bdt"

        studio.model.train_button.click()
        assert isinstance(studio.job, Job)
        job = studio.job.wait(timeout=180)
        assert job.status == "succeeded", job.logs()
        assert job.metrics["auc"] > 0.7

        monitor = TrainingMonitor(job.id, client, follow=False)
        assert monitor.state == "succeeded"
        assert monitor.bundle == job.bundle
        assert len(monitor.history) == 1
        assert monitor.history[0]["epoch"] == 1
        assert set(monitor.images) == {"roc", "rejection", "scores"}
        assert "<h3>Overtraining check" in monitor.report  # the report, shown when done
        assert monitor.metrics["auc"] == pytest.approx(job.metrics["auc"])
        assert monitor.poll() == 0  # nothing new: no further front-end update
        assert monitor.updates == 1
    finally:
        client.close()


@pytest.mark.slow
def test_monitor_follows_live_and_cancels(toy: Path, isolated: Path) -> None:
    client = Client(transport="in-process")
    try:
        dataset = DatasetSpec.from_file(toy / "dataset.yaml").to_dict()
        training = {"epochs": 500, "early_stopping": None, "batch_size": 256}
        job = Job.submit({"dataset": dataset, "training": training}, client=client)
        monitor = TrainingMonitor(job, interval=0.2)
        deadline = time.monotonic() + 120
        while len(monitor.history) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert monitor.state == "running"
        assert len(monitor.history) >= 2
        epochs = [h["epoch"] for h in monitor.history]
        assert epochs == sorted(epochs)
        assert epochs[0] == 1
        # the throughput and the time left of the 500 epochs, as text
        assert re.fullmatch(r"epoch \d+/500 · [\d,]+ events/s · .+ left", monitor.pace)
        # throttled: one update per poll at most, however many events arrived
        assert monitor.updates <= (time.monotonic() - deadline + 120) / 0.2 + 2
        monitor.send_state()  # the front-end's view can be rebuilt at any time
        monitor._on_front_end(monitor, {"action": "cancel"}, [])
        assert monitor.state == "cancelled"
        assert job.status == "cancelled"
        time.sleep(0.5)
        assert monitor._thread is None or not monitor._thread.is_alive()
        replay = TrainingMonitor(job.id, client, follow=False)
        assert [h["epoch"] for h in replay.history][: len(epochs)] == epochs
    finally:
        client.close()
