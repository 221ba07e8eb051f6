"""Sample normalisation from the notebook: the studio's samples step and ``%mlaas
stats``, on real ROOT files with generator weights (some negative), checked against
the yields computed by hand: ``xsec * luminosity * sum(w after cuts) / sum(w)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
import yaml
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.notebook._yields import YieldTable
from mlaas_jupyter.notebook.widgets import TrainingStudio
from mlaas_jupyter.notebook.widgets._samples import NO_WEIGHTS
from mlaas_jupyter.specs.training import TrainSpec

LUMINOSITY = 138_000.0  # pb^-1
XSEC = {"ttH": 0.5071, "ttbar": 833.9}  # pb
FILES = {"ttH": ["tth_0.root", "tth_1.root"], "ttbar": ["tt_0.root"]}
CUT = "MET_pt > 30"


def _write(path: Path, events: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {
        # NLO-like generator weights: about 20% negative, not all of one size
        "genWeight": (
            rng.choice([-1.0, 1.0], events, p=[0.2, 0.8]) * rng.uniform(0.5, 1.5, events)
        ),
        "MET_pt": rng.exponential(40.0, events).astype(np.float32),
        "nJet": rng.poisson(3.0, events).astype(np.int32),
    }
    with uproot.recreate(path) as handle:
        handle.mktree("Events", {k: v.dtype for k, v in arrays.items()}).extend(arrays)
    return arrays


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The files (ttH in two files: one sample, one sum_w) and each class's expected
    events, yield and negative fraction after the cut."""
    folder = tmp_path_factory.mktemp("samples")
    expected: dict[str, Any] = {}
    for seed, (name, files) in enumerate(FILES.items()):
        written = [_write(folder / f, 300 + 100 * i, 10 * seed + i) for i, f in enumerate(files)]
        w = np.concatenate([a["genWeight"] for a in written])
        passed = np.concatenate([a["MET_pt"] > 30 for a in written])
        expected[name] = {
            "events": int(passed.sum()),
            "yield": XSEC[name] * LUMINOSITY * w[passed].sum() / w.sum(),
            "negative_fraction": float((w[passed] < 0).mean()),
        }
    return folder, expected


def _dataset(folder: Path) -> dict[str, Any]:
    return {
        "tree": "Events",
        "luminosity": LUMINOSITY,
        "classes": {
            "ttH": {"files": [str(folder / "tth_*.root")], "xsec": XSEC["ttH"]},
            "ttbar": {"files": [str(folder / "tt_*.root")], "xsec": XSEC["ttbar"]},
        },
        "branches": ["MET_pt", "nJet"],
        "cuts": [CUT],
        "weights": {"branch": "genWeight", "negative": "keep"},
    }


def _studio(folder: Path, client: Client | None = None) -> TrainingStudio:
    classes = {"ttH": [str(folder / "tth_*.root")], "ttbar": [str(folder / "tt_*.root")]}
    return TrainingStudio(
        sorted(str(p) for p in folder.glob("*.root")), classes=classes, client=client
    )


def test_studio_samples_step_round_trips_through_the_spec(samples: tuple[Path, Any]) -> None:
    folder, _ = samples
    studio = _studio(folder)
    studio.branches.select("MET_pt", "nJet")
    # left alone, the step adds nothing: today's specs stay as they were
    plain = studio.spec()["dataset"]
    assert {"luminosity", "weights", "balance"}.isdisjoint(plain)
    assert plain["classes"]["ttH"] == [str(folder / "tth_*.root")]
    # the candidate weights: the real-valued flat branches
    assert studio.samples.weights_box.options == (NO_WEIGHTS, "genWeight", "MET_pt")

    samples_step = studio.samples
    samples_step.luminosity_box.value = "138000"
    for name, xsec in XSEC.items():
        samples_step.xsec_boxes[name].value = str(xsec)
    samples_step.weights_box.value = "genWeight"
    samples_step.sum_tree_box.value = "Runs"
    samples_step.sum_branch_box.value = "genEventSumw"
    samples_step.negative_box.value = "abs"
    samples_step.balance_box.value = "weights"
    exported = yaml.safe_load(studio.to_yaml())
    dataset = TrainSpec.from_dict(exported).dataset
    assert dataset.luminosity == LUMINOSITY
    assert {g.name: g.xsec for g in dataset.classes} == XSEC
    assert dataset.classes[0].files == (str(folder / "tth_*.root"),)
    assert dataset.weights is not None
    assert dataset.weights.branch == "genWeight"
    assert dataset.weights.negative == "abs"
    assert dataset.weights.sum is not None
    assert (dataset.weights.sum.tree, dataset.weights.sum.branch) == ("Runs", "genEventSumw")
    assert dataset.balance == "weights"
    assert TrainSpec.from_dict(exported).to_dict()["dataset"]["luminosity"] == LUMINOSITY


def test_studio_shows_what_is_wrong_with_the_samples(samples: tuple[Path, Any]) -> None:
    studio = _studio(samples[0])
    studio.branches.select("MET_pt")
    studio.samples.xsec_boxes["ttH"].value = "0.5071"
    with pytest.raises(SpecError, match="luminosity"):
        studio.spec()  # an xsec without a luminosity
    studio.model.train_button.click()  # shown next to Train, as every spec error
    assert "sample 'ttH' of class 'ttH' has an xsec" in studio.model.status.value
    studio.samples.luminosity_box.value = "lots"
    studio.export_button.click()
    assert "luminosity: &#x27;lots&#x27; is not a number" in studio.model.status.value
    studio.samples.luminosity_box.value = "138000"
    with pytest.raises(SpecError, match=r"classes\.ttbar\.xsec"):
        studio.spec()  # with a luminosity every class needs its xsec
    studio.samples.sum_tree_box.value = "Runs"
    studio.samples.weights_box.value = "genWeight"
    with pytest.raises(ValueError, match=r"weights\.sum: give both"):
        studio.spec()


def test_studio_yields_button_shows_each_class(samples: tuple[Path, Any], isolated: Path) -> None:
    folder, expected = samples
    client = Client(transport="in-process")
    try:
        studio = _studio(folder, client)
        studio.cuts.cuts_box.value = CUT
        step = studio.samples
        step.luminosity_box.value = str(LUMINOSITY)
        for name, xsec in XSEC.items():
            step.xsec_boxes[name].value = str(xsec)
        step.weights_box.value = "genWeight"
        step.yields_button.click()  # before any branch is ticked: the yields need none
        assert step.messages.value == ""
        assert step.table is not None
        for name, want in expected.items():
            row = step.table.classes[name]
            assert row["events"] == want["events"]
            # rel: the stream's blocks hold the weights in float32
            assert row["yield"] == pytest.approx(want["yield"], rel=1e-6)
            assert row["negative_fraction"] == pytest.approx(want["negative_fraction"])
            assert (
                f"<td style='text-align: right'>{want['yield']:.6g}</td>" in step.yields_box.value
            )
        step.luminosity_box.value = ""
        step.yields_button.click()
        assert "luminosity" in step.messages.value
    finally:
        client.close()


def _run(shell: InteractiveShell, line: str, cell: str | None = None) -> tuple[Any, str]:
    with capture_output() as captured:
        if cell is None:
            result = shell.run_line_magic("mlaas", line)
        else:
            result = shell.run_cell_magic("mlaas", line, cell)
    return result, captured.stdout


def test_stats_magic_shows_per_class_events_and_yields(
    shell: InteractiveShell, samples: tuple[Path, Any], isolated: Path
) -> None:
    folder, expected = samples
    dataset = _dataset(folder)
    # relative paths in a spec file are taken from its folder
    dataset["classes"] = {
        name: {**entry, "files": [Path(entry["files"][0]).name]}
        for name, entry in dataset["classes"].items()
    }
    (folder / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    table, _ = _run(shell, f"stats {folder / 'dataset.yaml'}")
    assert isinstance(table, YieldTable)
    text = repr(table).splitlines()
    assert text[0] == "expected events after cuts at 138000 pb^-1 (weights genWeight)"
    assert text[1].split() == ["class", "events", "yield", "negative", "w"]
    for line, (name, want) in zip(text[2:], expected.items(), strict=True):
        assert line.split() == [
            name,
            f"{want['events']:,}",
            f"{want['yield']:.6g}",
            f"{want['negative_fraction']:.1%}",
        ]
    page = table._repr_html_()
    assert page.startswith("<table class='mlaas-yields'><caption>expected events")
    assert f"<td style='text-align: right'>{expected['ttbar']['yield']:.6g}</td>" in page

    # the cell form, a training spec's dataset, and the whole summary with --json
    cell = yaml.safe_dump({"dataset": _dataset(folder), "model": {"name": "bdt"}})
    summary, _ = _run(shell, "stats --json", cell)
    assert summary["luminosity"] == LUMINOSITY
    for name, want in expected.items():
        assert summary["classes"][name]["events"] == want["events"]
        assert summary["classes"][name]["yield"] == pytest.approx(want["yield"], rel=1e-6)

    _, listed = _run(shell, "help")
    assert "  stats    per class events and expected yield" in listed
    _, usage = _run(shell, "help stats")
    assert "--json" in usage
    with pytest.raises(UsageError, match="not both"):
        _run(shell, "stats dataset.yaml", cell)
    with pytest.raises(UsageError, match=r"no spec file 'nope\.yaml'"):
        _run(shell, "stats nope.yaml")
    with pytest.raises(UsageError, match="give a spec file, or a YAML cell body"):
        _run(shell, "stats")
    wrong = {**_dataset(folder), "luminosity": None}
    with pytest.raises(UsageError, match=r"%mlaas stats: dataset\.luminosity"):
        _run(shell, "stats", yaml.safe_dump(wrong))
