"""The REST browsing routes tell what ``mlaas inspect`` tells of files that are not
(all) trees (issue 19, item 6): a histogram-only file is a 400 saying what it holds,
never an empty list; other objects beside trees are named with their class."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import skhep_testdata

from mlaas_jupyter.cli.inspect import survey

ONLY_HISTOGRAMS = (
    "the file holds no TTree or RNTuple, only 3 objects that are not trees: one (TH1F), "
    "three (TH1F), two (TH1F); histograms and other objects are not events to train on"
)


async def test_histograms_only_and_beside_a_ntuple(api: Any, jp_root_dir: Path) -> None:
    folder = jp_root_dir / "objects"
    folder.mkdir()
    shutil.copy(skhep_testdata.data_path("uproot-histograms.root"), folder / "hists.root")
    shutil.copy(skhep_testdata.data_path("uproot-hepdata-example.root"), folder / "hep.root")
    for route in ("trees", "branches"):
        status, body = await api(route, params={"path": "objects/hists.root"})
        assert (status, body["detail"]) == (400, f"objects/hists.root: {ONLY_HISTOGRAMS}")
    # the CLI (and %mlaas inspect) says the same of the same file
    found = survey([str(folder / "hists.root")])
    assert found.problems == [f"{folder / 'hists.root'}: {ONLY_HISTOGRAMS}"]

    status, body = await api("trees", params={"path": "objects/hep.root"})
    assert status == 200
    assert (body["trees"], body["formats"]) == (["ntuple"], {"ntuple": "TTree"})
    assert body["others"] == {"hprof": "TProfile", "hpx": "TH1F", "hpxpy": "TH2F"}
    status, info = await api("branches", params={"path": "objects/hep.root"})
    assert (status, info["entries"]) == (200, 75000)
    assert [b["name"] for b in info["branches"]] == ["px", "py", "pz", "random", "i"]
