"""BranchSelector at NanoAOD size: collections, the filter box, counts, group ticks."""

from __future__ import annotations

import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from nanoaod_like import COLLECTIONS, write_nanoaod_like

from mlaas_jupyter.notebook.widgets import BranchSelector
from mlaas_jupyter.notebook.widgets._branches import (
    OTHER,
    collection_of,
    group_branches,
    matches_filter,
)
from mlaas_jupyter.stream import DatasetSpec


@pytest.fixture(scope="module")
def nano(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("nano") / "nano.root"
    return path, write_nanoaod_like(path)


def test_collection_of_nanoaod_and_rntuple_names() -> None:
    assert collection_of("Jet_pt") == "Jet"
    assert collection_of("Jet.pt") == "Jet"
    assert collection_of("HLT_IsoMu24_eta2p1") == "HLT"
    assert collection_of("Jet.sub_pt") == "Jet"
    assert collection_of("nJet") == "nJet"
    assert collection_of("event") == "event"


def test_group_branches_counters_rntuple_fields_and_the_rest() -> None:
    names = ["run", "nJet", "Jet_pt", "Jet_eta", "Muon.pt", "Muon.eta", "Muon", "event", "nX"]
    groups = group_branches(names)
    assert groups == {
        "Jet": ["nJet", "Jet_pt", "Jet_eta"],  # the counter joins its collection
        "Muon": ["Muon.pt", "Muon.eta", "Muon"],
        OTHER: ["run", "event", "nX"],
    }
    assert list(group_branches(["b_x", "A_y", "a_z"])) == ["A", "a", "b"]


@pytest.mark.parametrize(
    ("query", "name", "expected"),
    [
        ("", "Jet_pt", True),
        ("Jet_*", "Jet_pt", True),
        ("Jet_*", "FatJet_pt", False),  # a glob matches the whole name
        ("jet_*", "Jet_pt", True),  # case-insensitive
        ("jet", "FatJet_pt", True),  # a plain term is a substring
        ("Muon_*, pt", "Jet_pt", True),  # comma: any term
        ("Muon_*, eta", "Jet_pt", False),
        ("HLT_Mu[0-9]*", "HLT_Mu50", True),
        ("HLT_Mu[!0-9]*", "HLT_Mu50", False),
        (" , ", "run", True),  # only blanks: no filter
    ],
)
def test_filter_box_syntax(query: str, name: str, expected: bool) -> None:
    assert matches_filter(name, query) is expected


def test_selector_counts_and_groups_at_nanoaod_size(nano: tuple[Path, dict[str, str]]) -> None:
    path, kinds = nano
    started = time.perf_counter()
    selector = BranchSelector(path)
    assert len(selector.branches) == 1500
    assert selector.kinds == kinds
    assert selector.counts == {"flat": 1000, "jagged": 500, "fixed": 0, "unsupported": 0}
    groups = selector.groups
    assert len(groups["HLT"]) == 631
    assert groups["Jet"] == ["nJet", *(f"Jet_f{i}" for i in range(COLLECTIONS["Jet"]))]
    assert groups[OTHER] == ["run", "luminosityBlock", "event", "genWeight"]
    assert list(groups)[-1] == OTHER
    assert {b["group"] for b in selector.branches} == set(groups)

    selector.query = "Jet_*"
    assert selector.shown == [f"Jet_f{i}" for i in range(40)]
    selector.query = "Jet_f1?, hlt_v10"
    hlt = ["HLT_v10", *(f"HLT_v10{i}" for i in range(10))]  # a substring: HLT_v100 too
    assert selector.shown == [*hlt, *(f"Jet_f{i}" for i in range(10, 20))]

    # a whole collection ticked and unticked through the filter (what its checkbox does)
    selector.query = "Jet_*"
    assert len(selector.select_group("Jet")) == 40  # nJet is filtered out
    assert selector.features == 40
    assert selector.width == 40 * 8 + 8  # padded to 8, plus the Jet mask
    selector.query = ""
    assert selector.select_group("Muon") == ["nMuon", *(f"Muon_f{i}" for i in range(60))]
    assert selector.width == 40 * 8 + 8 + 1 + 60 * 8 + 8
    assert len(selector.select_group("Muon", on=False)) == 61
    assert selector.select("HLT_v1", "MET_*") == ["HLT_v1", *(f"MET_v{i}" for i in range(25))]
    assert selector.select_shown()[:3] == ["run", "luminosityBlock", "event"]
    assert selector.features == 1500
    assert len(selector.deselect("HLT_*", "L1_*")) == 631 + 250
    assert selector.features == 1500 - 631 - 250
    with pytest.raises(KeyError, match="no collection 'Jets'"):
        selector.select_group("Jets")
    # everything above, 1,500 branches included, is interactive-quick
    assert time.perf_counter() - started < 10


def test_group_selection_makes_a_valid_spec(nano: tuple[Path, dict[str, str]]) -> None:
    selector = BranchSelector(path := nano[0], jagged_length=4)
    selector.query = "Electron_f1*, MET"
    selector.select_group("Electron")
    selector.select_group("MET")
    spec = DatasetSpec.from_dict(selector.to_spec({"sig": [str(path)], "bkg": [str(path)]}))
    expected = [*(f"Electron_f{i}" for i in [1, *range(10, 20)]), *(f"MET_v{i}" for i in range(25))]
    assert list(spec.branches) == expected  # in the order they were ticked
    assert spec.jagged_for("Electron_f1").length == 4
    assert selector.width == 11 * 4 + 4 + 25


def test_rntuple_fields_group_by_collection(tmp_path: Path) -> None:
    path = tmp_path / "ntuple.root"
    jets = ak.zip({"pt": ak.Array([[40.0, 30.0], [25.0]]), "eta": ak.Array([[0.1, -1.2], [2.0]])})
    with uproot.recreate(path) as handle:
        handle["Events"] = {"Jet": jets, "MET_pt": np.array([12.0, 30.0])}  # an RNTuple
    selector = BranchSelector(path)
    assert selector.kinds["Jet.pt"] == "jagged"
    assert {"Jet.pt", "Jet.eta"} <= set(selector.groups["Jet"])
    assert selector.groups["MET"] == ["MET_pt"]
    # the collection's record itself, if listed, is not a feature: only its fields are
    assert selector.select_group("Jet") == ["Jet.pt", "Jet.eta"]
    assert selector.width == 2 * 8 + 8
