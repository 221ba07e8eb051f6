"""Comparing runs from their folders: the metrics table, the spec differences, the
figure, and the errors, on hand-written run folders whose values are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_folders import write_run_folder

from mlaas_jupyter.errors import SourceError, SpecError
from mlaas_jupyter.train.comparison import compare_runs, load_run, spec_differences
from mlaas_jupyter.train.comparison_plots import comparison_image, draw_comparison

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    """A baseline; one with HT added, MET_phi removed and a tighter cut; one with a
    larger network and a larger learning rate."""
    base = write_run_folder(tmp_path / "base", name="base")
    more = write_run_folder(
        tmp_path / "ht",
        name="ht",
        dataset={
            "branches": ["MET_pt", "nJet", "HT"],
            "new_branches": {"HT": "sum(Jet_pt)"},
            "cuts": ["nJet >= 3"],
        },
        metrics={"auc": 0.85, "rejection_at_50": 20.0},
    )
    wide = write_run_folder(
        tmp_path / "wide",
        name="wide",
        model={"name": "mlp", "params": {"sizes": [64, 64]}},
        training={"learning_rate": 0.01, "output": "/elsewhere", "loader": "thread"},
        metrics={"auc": 0.9},
    )
    return [base, more, wide]


def test_metrics_table_in_physics_order(three: list[Path]) -> None:
    comparison = compare_runs([load_run(folder) for folder in three])
    assert comparison["metrics"] == [
        "auc",
        "auc_weighted",
        "accuracy",
        "loss",
        "rejection_at_50",
        "rejection_at_90",
        "best_cut.significance",
        "best_cut.score",
        "best_cut.background",
        "best_cut.signal",
        "epochs",
        "events",
    ]
    runs = comparison["runs"]
    assert [run["label"] for run in runs] == ["base", "ht", "wide"]
    assert [run["metrics"]["auc"] for run in runs] == [0.8, 0.85, 0.9]
    assert [run["metrics"]["rejection_at_50"] for run in runs] == [10.0, 20.0, 10.0]
    assert runs[0]["metrics"]["rejection_at_90"] is None  # not measurable: no value
    assert runs[0]["metrics"]["best_cut.significance"] == 2.1
    assert runs[0]["metrics"]["epochs"] == 2.0
    assert "split" not in runs[0]["metrics"]  # text, not a metric
    assert runs[0]["id"] == "base"
    assert runs[0]["run_dir"] == str(three[0].resolve())
    assert runs[2]["model"] == "mlp (torch) sizes=[64, 64]"
    assert runs[0]["roc"]["curves"]["signal"]["auc"] == 0.8
    assert runs[0]["rejection"]["background_rejection"] == [10.0, 2.0, 1.0]
    assert runs[0]["scores"]["title"] == "P(signal)"
    assert [h["val_auc"] for h in runs[0]["history"]] == [0.7, 0.78]
    assert runs[0]["missing"] == []
    json.dumps(comparison)  # the REST reply


def test_differences_name_the_fields_that_differ(three: list[Path]) -> None:
    differences = compare_runs([load_run(folder) for folder in three])["differences"]
    by_field = {d["field"]: d for d in differences}
    # equal fields (tree, seed, ...) and ones that do not change the model (where the
    # run was written, the loader) are not listed
    assert list(by_field) == [
        "dataset.branches",
        "dataset.new_branches.HT",
        "dataset.cuts",
        "model.params.sizes",
        "training.learning_rate",
    ]
    branches = by_field["dataset.branches"]
    assert branches["values"] == [
        ["MET_pt", "MET_phi", "nJet"],
        ["MET_pt", "nJet", "HT"],
        ["MET_pt", "MET_phi", "nJet"],
    ]
    assert branches["text"] == [
        "[MET_pt, MET_phi, nJet]",
        "added: HT; removed: MET_phi",
        "[MET_pt, MET_phi, nJet]",
    ]
    assert by_field["dataset.new_branches.HT"]["values"] == [None, "sum(Jet_pt)", None]
    assert by_field["dataset.new_branches.HT"]["text"] == ["(unset)", "sum(Jet_pt)", "(unset)"]
    assert by_field["dataset.cuts"]["text"] == [
        "[nJet >= 2]",
        "added: nJet >= 3; removed: nJet >= 2",
        "[nJet >= 2]",
    ]
    assert by_field["model.params.sizes"]["text"] == ["[16]", "[16]", "[64, 64]"]
    assert by_field["training.learning_rate"]["values"] == [0.001, 0.001, 0.01]
    sampled = spec_differences(
        [{"training": {"learning_rate": 0.015389340664772096}}, {"training": {}}]
    )
    assert sampled[0]["text"] == ["0.01539", "(unset)"]  # four significant digits


def test_equal_specs_have_no_differences() -> None:
    spec = {"dataset": {"branches": ["a"]}, "model": {"name": "mlp"}, "training": {}}
    assert spec_differences([spec, json.loads(json.dumps(spec))]) == []
    other = {**spec, "model": {"name": "bdt", "params": {"max_depth": 3}}}
    assert spec_differences([spec, other]) == [
        {"field": "model.name", "values": ["mlp", "bdt"], "text": ["mlp", "bdt"]},
        {"field": "model.params.max_depth", "values": [None, 3], "text": ["(unset)", "3"]},
    ]


def test_same_names_are_told_apart_by_id(tmp_path: Path) -> None:
    runs = [
        load_run(write_run_folder(tmp_path / "mlp-1", name="mlp")),
        load_run(write_run_folder(tmp_path / "x", name="mlp"), run_id="j2"),
        load_run(write_run_folder(tmp_path / "y", name="bdt")),
    ]
    assert [r["label"] for r in compare_runs(runs)["runs"]] == ["mlp-1", "mlp (j2)", "bdt"]
    twins = [
        load_run(write_run_folder(tmp_path / "a" / "run", name="mlp")),
        load_run(write_run_folder(tmp_path / "b" / "run", name="mlp")),
    ]
    labels = [r["label"] for r in compare_runs(twins)["runs"]]
    assert labels == [str((tmp_path / k / "run").resolve()) for k in "ab"]


def test_a_bundle_folder_stands_for_its_run(three: list[Path]) -> None:
    run = load_run(three[1] / "bundle")
    assert (run["id"], run["run_dir"]) == ("ht", str(three[1].resolve()))
    assert run["roc"] is not None


def test_errors_name_what_is_wrong(three: list[Path], tmp_path: Path) -> None:
    one = load_run(three[0])
    with pytest.raises(SpecError, match=r"^jobs: give at least 2 runs .*, got 1$"):
        compare_runs([one])
    with pytest.raises(SpecError, match=r"^jobs: give at least 2 runs .*, got none$"):
        compare_runs([])
    with pytest.raises(SpecError, match=r"the run base \(.*base\) is given twice"):
        compare_runs([one, load_run(three[1]), load_run(three[0])])
    with pytest.raises(SourceError, match=r"nowhere: no such run folder"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"empty: not a run folder: it has no bundle/manifest"):
        load_run(tmp_path / "empty")
    (tmp_path / "broken" / "bundle").mkdir(parents=True)
    (tmp_path / "broken" / "bundle" / "manifest.json").write_text("{not json")
    with pytest.raises(SourceError, match=r"manifest.json: cannot be read as JSON"):
        load_run(tmp_path / "broken")
    (tmp_path / "broken" / "bundle" / "manifest.json").write_text('{"name": "x"}')
    with pytest.raises(SourceError, match=r"not a training bundle: its manifest has no dataset"):
        load_run(tmp_path / "broken")


def _texts(figure: Any) -> str:
    return "\n".join(t.get_text() for ax in figure.axes for t in ax.texts)


def test_figure_overlays_the_runs(three: list[Path]) -> None:
    comparison = compare_runs([load_run(folder) for folder in three])
    figure = draw_comparison(comparison)
    roc, rejection, scores, loss, validation, _table = figure.axes[:6]
    assert [line.get_label() for line in roc.get_lines()][:3] == [
        "base (AUC 0.800)",
        "ht (AUC 0.800)",
        "wide (AUC 0.800)",
    ]
    assert [line.get_color() for line in roc.get_lines()][:3] == ["C0", "C1", "C2"]
    assert rejection.get_yscale() == "log"
    assert list(rejection.get_lines()[0].get_ydata()) == [10.0, 2.0, 1.0]
    assert rejection.get_xlabel().startswith("signal efficiency")
    # one colour per run, the signal solid and the background dashed
    steps = [(p.get_label(), p.get_linestyle()) for p in scores.patches]
    assert steps[:2] == [("base: signal", "-"), ("base: background", "--")]
    assert len(steps) == 6
    assert validation.get_ylabel() == "val auc"
    assert list(validation.get_lines()[0].get_ydata()) == [0.7, 0.78]
    assert [line.get_linestyle() for line in loss.get_lines()][:2] == ["-", "--"]
    assert "dataset.cuts: [nJet >= 2] | added: nJet >= 3" in _texts(figure)
    assert comparison_image(comparison).startswith(PNG_MAGIC)
    assert comparison_image(comparison, "svg").lstrip().startswith(b"<?xml")
    with pytest.raises(SpecError, match=r"format: got 'gif'; allowed: png, pdf, svg"):
        comparison_image(comparison, "gif")


def test_regression_and_missing_curves_are_said_not_drawn(tmp_path: Path) -> None:
    regression = load_run(write_run_folder(tmp_path / "reg", name="reg", task="regression"))
    bare = load_run(write_run_folder(tmp_path / "bare", name="bare", curves=False))
    assert regression["missing"] == ["ROC curves (regression)"]
    assert bare["missing"] == ["plots/curves.json (no ROC curves or score distributions)"]
    assert bare["roc"] is None
    assert bare["history"][0]["val_auc"] == 0.7
    comparison = compare_runs([regression, bare])
    figure = draw_comparison(comparison)
    texts = _texts(figure)
    assert "no ROC curves\n(regression runs, or runs without curves.json)" in texts
    assert "no background rejection" in texts
    assert "no score distributions" in texts
    assert "reg: lacks ROC curves (regression)" in texts
    assert "bare: lacks plots/curves.json (no ROC curves or score distributions)" in texts
    assert figure.axes[4].get_ylabel() == "val auc"  # the classifier's history still drawn
    assert comparison_image(comparison).startswith(PNG_MAGIC)
