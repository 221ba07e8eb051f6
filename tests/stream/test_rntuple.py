"""RNTuples read as trees: their fields as branches, reading, listing beside TTrees, the
pre-1.0 RNTuple that uproot cannot read, and ``mlaas inspect`` on them.

Files are written with uproot (``mkrntuple`` + ``extend``: one cluster per extend).
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import skhep_testdata
import uproot

from mlaas_jupyter import cli
from mlaas_jupyter.errors import SourceError
from mlaas_jupyter.stream import DatasetSpec, compute_stats
from mlaas_jupyter.stream._rntuple import RNTupleSource, index_subfields
from mlaas_jupyter.stream.sources import find_trees, inspect_file, list_trees, open_tree

STAFF = str(skhep_testdata.data_path("uproot-ntpl001_staff.root"))
STAFF_REASON = (
    f"RNTuple 'Staff' is a pre-1.0 (ROOT::Experimental) RNTuple that uproot "
    f"{uproot.__version__} cannot read; rewrite it with ROOT >= 6.34"
)
N = 50


def physics_fields(n: int = N) -> dict[str, Any]:
    """Every kind of field: flat float32/int/bool, jagged, fixed, records, strings."""
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 4, n)
    total = int(counts.sum())
    return {
        "MET_pt": rng.exponential(40.0, n).astype(np.float32),
        "nJet": counts.astype(np.int32),
        "passed": np.arange(n) % 3 == 0,
        "Jet_pt": ak.unflatten(rng.exponential(30.0, total).astype(np.float32), counts),
        "p4": rng.normal(size=(n, 4)),
        "Jet": ak.unflatten(
            ak.zip({"pt": rng.normal(50, 5, total), "eta": rng.normal(0, 1, total)}), counts
        ),
        "MET": ak.zip({"pt": rng.normal(size=n).astype(np.float32), "phi": rng.normal(size=n)}),
        "label": ak.Array([f"event {i}" for i in range(n)]),
    }


def write_rntuple(
    path: Path, fields: dict[str, Any], name: str = "Events", clusters: int = 1
) -> None:
    """``fields`` as one RNTuple in ``clusters`` clusters (``path`` is recreated)."""
    n = len(next(iter(fields.values())))
    bounds = np.linspace(0, n, clusters + 1).astype(int)
    with uproot.recreate(path) as handle:
        out = handle.mkrntuple(name, ak.zip(fields, depth_limit=1).layout.form)
        for lo, hi in itertools.pairwise(bounds):
            out.extend({k: v[lo:hi] for k, v in fields.items()})


@pytest.fixture
def rntuple_file(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    fields = physics_fields()
    path = tmp_path / "events.root"
    write_rntuple(path, fields, clusters=5)
    return str(path), fields


def test_fields_become_branches_by_their_form(rntuple_file: tuple[str, Any]) -> None:
    path, _ = rntuple_file
    (info,) = inspect_file(path)
    assert (info.name, info.format, info.entries) == ("Events", "RNTuple", N)
    assert info.to_dict()["format"] == "RNTuple"
    described = {b.name: (b.kind, b.dtype, b.width) for b in info.branches}
    assert described == {
        "MET_pt": ("flat", "float32", None),
        "nJet": ("flat", "int32", None),
        "passed": ("flat", "bool", None),
        "Jet_pt": ("jagged", "float32", None),
        "p4": ("fixed", "float64", 4),
        "Jet": ("unsupported", None, None),
        # uproot calls these "double": the collection around them makes them jagged
        "Jet.pt": ("jagged", "float64", None),
        "Jet.eta": ("jagged", "float64", None),
        "MET": ("unsupported", None, None),
        "MET.pt": ("flat", "float32", None),
        "MET.phi": ("flat", "float64", None),
        "label": ("unsupported", None, None),
    }
    branches = {b.name: b for b in info.branches}
    assert branches["Jet.pt"].type == "double (per Jet item)"
    assert branches["Jet_pt"].type == "std::vector<float>"
    collection = "a collection of records: its fields are branches (Jet.pt, Jet.eta)"
    assert branches["Jet"].reason == collection
    assert branches["MET"].reason == "a record: its fields are branches (MET.pt, MET.phi)"
    assert branches["label"].reason == "strings are not numbers"


def test_reading_matches_what_was_written(rntuple_file: tuple[str, Any]) -> None:
    path, fields = rntuple_file
    source = open_tree(path, "Events")
    assert isinstance(source, RNTupleSource)
    columns = ["MET_pt", "passed", "Jet_pt", "p4", "Jet.pt", "MET.phi"]
    chunks = list(source.iterate(columns, 7))
    assert [(c.entry_start, c.entry_stop) for c in chunks][:2] == [(0, 7), (7, 14)]
    first = chunks[0].columns
    assert isinstance(first["MET_pt"], np.ndarray)
    assert first["MET_pt"].dtype == np.float32
    assert first["passed"].dtype == np.bool_
    assert first["p4"].shape == (7, 4)
    assert str(ak.type(first["Jet.pt"])) == "7 * var * float64"
    joined = {c: [ch.columns[c] for ch in chunks] for c in columns}
    np.testing.assert_array_equal(np.concatenate(joined["MET_pt"]), fields["MET_pt"])
    np.testing.assert_array_equal(np.concatenate(joined["passed"]), fields["passed"])
    np.testing.assert_array_equal(np.concatenate(joined["p4"]), fields["p4"])
    np.testing.assert_array_equal(np.concatenate(joined["MET.phi"]), fields["MET"].phi)
    assert ak.concatenate(joined["Jet_pt"]).tolist() == fields["Jet_pt"].tolist()
    assert ak.concatenate(joined["Jet.pt"]).tolist() == fields["Jet"].pt.tolist()
    with pytest.raises(SourceError, match="RNTuple 'Events' has no branch 'Muon_pt'"):
        next(source.iterate(["MET_pt", "Muon_pt"], 5))
    source.close()


def test_aligned_reading_ends_on_clusters(rntuple_file: tuple[str, Any]) -> None:
    path, _ = rntuple_file
    source = open_tree(path)
    assert isinstance(source, RNTupleSource)
    # five clusters of 10 entries: steps of 12 end on cluster boundaries
    ranges = [(c.entry_start, c.entry_stop) for c in source.iterate(["MET_pt"], 12, align=True)]
    assert ranges == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
    assert [source.aligned_entry(k) for k in (0, 1, 10, 41)] == [0, 10, 10, 50]
    assert source.entries_per_step("1 MB", ["MET_pt", "Jet.pt"]) >= 1
    source.close()


def test_subfield_index_matches_uproot(tmp_path: Path) -> None:
    path = tmp_path / "nested.root"
    fields = physics_fields(10)
    fields["deep"] = ak.zip({"jets": fields["Jet"], "n": fields["nJet"]}, depth_limit=1)
    write_rntuple(path, fields)
    expected = uproot.open(path)["Events"].keys()
    ntuple = uproot.open(path)["Events"]
    index_subfields(ntuple)
    assert ntuple.keys() == expected
    assert "deep.jets.pt" in expected
    branches = {b.name: b.kind for b in inspect_file(str(path))[0].branches}
    assert branches["deep.jets.pt"] == "jagged"
    assert branches["deep.n"] == "flat"


def test_file_with_a_ttree_and_an_rntuple(tmp_path: Path) -> None:
    path = tmp_path / "both.root"
    write_rntuple(path, {"x": np.arange(5, dtype=np.float32)}, name="Events")
    with uproot.update(path) as handle:
        handle.mktree("Runs", {"sumw": np.float64}).extend({"sumw": np.array([2.5])})
    assert list_trees(str(path)) == ["Events", "Runs"]
    assert find_trees(str(path)).formats == {"Events": "RNTuple", "Runs": "TTree"}
    assert [(i.name, i.format, i.entries) for i in inspect_file(str(path))] == [
        ("Events", "RNTuple", 5),
        ("Runs", "TTree", 1),
    ]
    runs = open_tree(str(path), "Runs")
    assert getattr(runs, "format", None) == "TTree"
    assert next(iter(runs.iterate(["sumw"], 10))).columns["sumw"].tolist() == [2.5]
    runs.close()
    listed = "Events (RNTuple), Runs (TTree)"
    with pytest.raises(SourceError) as info:
        open_tree(str(path))
    assert str(info.value) == (
        f"{path}: name the tree to read: the file has 2 trees (TTrees or RNTuples): {listed}"
    )
    with pytest.raises(SourceError) as info:
        open_tree(str(path), "Jets")
    assert str(info.value).endswith(
        f"no tree 'Jets' (TTree or RNTuple); trees in the file: {listed}"
    )


def test_pre_1_0_rntuple_is_one_line_naming_it() -> None:
    assert find_trees(STAFF).unreadable == {"Staff": STAFF_REASON}
    for call in (
        lambda: list_trees(STAFF),
        lambda: inspect_file(STAFF),
        lambda: open_tree(STAFF),
        lambda: open_tree(STAFF, "Staff"),
    ):
        with pytest.raises(SourceError) as info:
            call()
        assert str(info.value) == f"{STAFF}: {STAFF_REASON}"


def test_spec_naming_a_pre_1_0_rntuple(tmp_path: Path) -> None:
    shutil.copy(STAFF, tmp_path / "staff.root")
    spec = DatasetSpec.from_dict(
        {"tree": "Staff", "classes": {"a": ["staff.root"], "b": ["staff.root"]}},
        base_dir=tmp_path,
    )
    with pytest.raises(SourceError) as info:
        compute_stats(spec, cache=False)
    assert str(info.value) == f"{tmp_path / 'staff.root'}: {STAFF_REASON}"


# ---------------------------------------------------------------- mlaas inspect


@pytest.fixture
def only_inspect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", {"inspect": cli.COMMANDS["inspect"]})


def inspect(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = cli.main(["inspect", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


@pytest.mark.usefixtures("only_inspect")
def test_cli_inspect_rntuple(
    capsys: pytest.CaptureFixture[str], rntuple_file: tuple[str, Any]
) -> None:
    path, _ = rntuple_file
    code, out, err = inspect(capsys, path)
    assert (code, err) == (0, [])
    assert out[0] == f"{path}  RNTuple 'Events': 50 entries, 12 branches"
    assert out[1].split() == ["name", "kind", "type", "detail"]
    rows = {line.split()[0]: line.split()[1:3] for line in out[2:14]}
    assert rows["Jet.pt"] == ["jagged", "double"]
    assert rows["p4"] == ["fixed", "std::array<double,4>"]
    assert rows["passed"] == ["flat", "bool"]
    assert out[-1] == "warning: 3 unsupported branches will be excluded: Jet, MET, label"


@pytest.mark.usefixtures("only_inspect")
def test_cli_inspect_pre_1_0_rntuple(
    capsys: pytest.CaptureFixture[str], rntuple_file: tuple[str, Any], tmp_path: Path
) -> None:
    code, out, err = inspect(capsys, STAFF)
    assert (code, out, err) == (2, [], [f"mlaas inspect: error: {STAFF}: {STAFF_REASON}"])
    code, out, err = inspect(capsys, STAFF, "--tree", "Staff")
    assert (code, out, err) == (2, [], [f"mlaas inspect: error: {STAFF}: {STAFF_REASON}"])
    # with a readable file beside it: what is readable, then the line, exit 0
    staff = tmp_path / "staff.root"
    shutil.copy(STAFF, staff)
    code, out, err = inspect(capsys, str(tmp_path))
    assert (code, err) == (0, [])
    assert out[0] == f"{rntuple_file[0]}  RNTuple 'Events': 50 entries, 12 branches"
    assert f"warning: {staff}: {STAFF_REASON}" in out
    code, out, err = inspect(capsys, str(tmp_path), "--json")
    assert code == 0
    assert err[0] == f"warning: {staff}: {STAFF_REASON}"


@pytest.mark.usefixtures("only_inspect")
def test_cli_inspect_file_without_trees(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "histograms.root"
    with uproot.recreate(path) as handle:
        handle["h"] = np.histogram(np.arange(10.0), bins=5)
    code, out, err = inspect(capsys, str(path))
    message = (
        f"mlaas inspect: error: {path}: the file holds no TTree or RNTuple, only 1 object "
        "that is not a tree: h (TH1D); histograms and other objects are not events to train on"
    )
    assert (code, out, err) == (2, [], [message])
