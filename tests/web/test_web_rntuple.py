"""The data routes (trees, branches, histograms) on RNTuple files, through a real server,
and the one-line 400 for an RNTuple that uproot cannot read."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import skhep_testdata
import uproot

STAFF = skhep_testdata.data_path("uproot-ntpl001_staff.root")
N = 400


@pytest.fixture
def rntuple_dir(jp_root_dir: Path) -> dict[str, Any]:
    """``<root>/rn/events.root`` (RNTuple ``Events``), ``both.root`` (with a TTree ``Runs``)
    and ``staff.root`` (a pre-1.0 RNTuple)."""
    folder = jp_root_dir / "rn"
    folder.mkdir()
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, N)
    fields = {
        "MET_pt": rng.exponential(40.0, N).astype(np.float32),
        "Jet_pt": ak.unflatten(rng.exponential(30.0, int(counts.sum())), counts),
    }
    for name in ("events.root", "both.root"):
        with uproot.recreate(folder / name) as handle:
            handle["Events"] = fields
    with uproot.update(folder / "both.root") as handle:
        handle.mktree("Runs", {"sumw": np.float64}).extend({"sumw": np.array([1.0])})
    shutil.copy(STAFF, folder / "staff.root")
    return fields


async def test_trees_and_branches_of_an_rntuple(api: Any, rntuple_dir: dict[str, Any]) -> None:
    status, body = await api("trees", params={"path": "rn/events.root"})
    assert (status, body) == (
        200,
        {"path": "rn/events.root", "trees": ["Events"], "formats": {"Events": "RNTuple"}},
    )
    status, body = await api("trees", params={"path": "rn/both.root"})
    assert (status, body["trees"]) == (200, ["Events", "Runs"])
    assert body["formats"] == {"Events": "RNTuple", "Runs": "TTree"}
    status, info = await api("branches", params={"path": "rn/events.root"})
    assert status == 200, info
    assert (info["name"], info["format"], info["entries"]) == ("Events", "RNTuple", N)
    assert {b["name"]: b["kind"] for b in info["branches"]} == {
        "MET_pt": "flat",
        "Jet_pt": "jagged",
    }
    status, runs = await api("branches", params={"path": "rn/both.root", "tree": "Runs"})
    assert (status, runs["format"], runs["entries"]) == (200, "TTree", 1)
    status, body = await api("branches", params={"path": "rn/both.root"})
    assert status == 400
    assert body["detail"].endswith(
        "name the tree to read: the file has 2 trees (TTrees or RNTuples): "
        "Events (RNTuple), Runs (TTree)"
    )


async def test_histograms_of_an_rntuple(api: Any, rntuple_dir: dict[str, Any]) -> None:
    request = {
        "classes": {"s": ["rn/events.root"]},
        "tree": "Events",
        "branch": "Jet_pt",
        "cuts": ["MET_pt > 30"],
        "bins": 10,
        "range": [0, 200],
    }
    status, body = await api("histograms", method="POST", body=request)
    assert status == 200, body
    edges = np.linspace(0, 200, 11)
    keep = rntuple_dir["MET_pt"] > 30
    jets = np.asarray(ak.flatten(rntuple_dir["Jet_pt"]))
    kept = np.asarray(ak.flatten(rntuple_dir["Jet_pt"][keep]))
    result = body["classes"]["s"]
    assert result["before"] == np.histogram(jets, edges)[0].tolist()
    assert result["after"] == np.histogram(kept, edges)[0].tolist()
    assert result["events_read"] == N


async def test_pre_1_0_rntuple_is_a_one_line_400(api: Any, rntuple_dir: dict[str, Any]) -> None:
    reason = (
        "rn/staff.root: RNTuple 'Staff' is a pre-1.0 (ROOT::Experimental) RNTuple that "
        f"uproot {uproot.__version__} cannot read; rewrite it with ROOT >= 6.34"
    )
    status, body = await api("trees", params={"path": "rn/staff.root"})
    assert (status, body["detail"]) == (400, reason)
    for params in ({"path": "rn/staff.root"}, {"path": "rn/staff.root", "tree": "Staff"}):
        status, body = await api("branches", params=params)
        assert status == 400
        assert body["detail"].endswith(reason.split(": ", 1)[1])
        assert "\n" not in body["detail"]
    request = {"classes": {"s": ["rn/staff.root"]}, "tree": "Staff", "branch": "Age"}
    status, body = await api("histograms", method="POST", body=request)
    assert status == 400
    assert body["detail"].endswith(reason.split(": ", 1)[1])
