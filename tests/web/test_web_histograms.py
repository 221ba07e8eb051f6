"""POST histograms: counts per class before and after cuts, equal to NumPy's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot


def _direct(path: Path) -> dict[str, Any]:
    with uproot.open(path) as handle:
        return dict(handle["Events"].arrays(["MET_pt", "nJet", "Jet_pt"], library="ak", how=dict))


async def test_histograms_match_numpy(api: Any, toy_dir: Path) -> None:
    request = {
        "classes": {"signal": ["toy/signal_*.root"], "background": ["toy/background_0.root"]},
        "tree": "Events",
        "branch": "MET_pt",
        "cuts": ["nJet >= 4"],
        "bins": 20,
        "range": [0, 300],
    }
    status, body = await api("histograms", method="POST", body=request)
    assert status == 200, body
    edges = np.linspace(0, 300, 21)
    assert np.allclose(body["edges"], edges)
    assert body["max_events"] == 1_000_000
    assert body["truncated"] is False
    for name in ("signal", "background"):
        columns = _direct(toy_dir / f"{name}_0.root")
        met, keep = np.asarray(columns["MET_pt"], np.float64), np.asarray(columns["nJet"]) >= 4
        result = body["classes"][name]
        assert result["before"] == np.histogram(met, edges)[0].tolist()
        assert result["after"] == np.histogram(met[keep], edges)[0].tolist()
        assert result["overflow"]["before"] == int((met >= 300).sum())
        assert result["events_read"] == 2000
        assert result["events_passed"] == int(keep.sum())
        assert result["efficiency"] == pytest.approx(keep.mean())


async def test_histograms_of_expressions_and_jagged(api: Any, toy_dir: Path) -> None:
    columns = _direct(toy_dir / "signal_0.root")
    base = {"classes": {"s": ["toy/signal_0.root"]}, "bins": 10, "range": [0, 2000]}
    status, body = await api(
        "histograms", method="POST", body={**base, "expression": "sum(Jet_pt)"}
    )
    assert status == 200, body
    ht = np.asarray(ak.sum(columns["Jet_pt"], axis=1), np.float64)
    assert body["classes"]["s"]["before"] == np.histogram(ht, np.linspace(0, 2000, 11))[0].tolist()
    # a jagged branch: every jet counts; the event's cut applies to all its jets
    request = {**base, "branch": "Jet_pt", "cuts": ["MET_pt > 50"], "range": [0, 500]}
    status, body = await api("histograms", method="POST", body=request)
    assert status == 200, body
    keep = np.asarray(columns["MET_pt"]) > 50
    jets = np.asarray(ak.flatten(columns["Jet_pt"]), np.float64)
    kept = np.asarray(ak.flatten(columns["Jet_pt"][keep]), np.float64)
    edges = np.linspace(0, 500, 11)
    assert body["classes"]["s"]["before"] == np.histogram(jets, edges)[0].tolist()
    assert body["classes"]["s"]["after"] == np.histogram(kept, edges)[0].tolist()


async def test_histograms_auto_range_and_cap(api: Any, toy_dir: Path) -> None:
    request = {"classes": {"s": ["toy/signal_0.root"]}, "branch": "MET_pt", "max_events": 500}
    status, body = await api("histograms", method="POST", body=request)
    assert status == 200, body
    met = np.asarray(_direct(toy_dir / "signal_0.root")["MET_pt"][:500], np.float64)
    assert body["range"][0] == pytest.approx(met.min())
    assert body["range"][1] >= met.max()
    result = body["classes"]["s"]
    assert sum(result["before"]) == 500
    assert result["overflow"]["before"] == 0
    assert result["events_read"] == 500
    assert result["truncated"] is True
    assert body["truncated"] is True
    assert "500 events" in body["note"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"classes": {}}, "classes", "at least one class"),
        ({"bins": 0}, "bins", ">= 1"),
        ({"range": [5, 1]}, "range", "low < high"),
        ({"expression": "MET_pt"}, "branch", "exactly one"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
async def test_histograms_bad_requests(
    api: Any, change: dict[str, Any], field: str, words: str
) -> None:
    request = {"classes": {"s": ["toy/signal_0.root"]}, "branch": "MET_pt", **change}
    status, body = await api("histograms", method="POST", body=request)
    assert status == 400, body
    assert body["field"] == field
    assert words in body["detail"]


async def test_histograms_bad_expressions_and_files(api: Any) -> None:
    base = {"classes": {"s": ["toy/signal_0.root"]}}
    status, body = await api("histograms", method="POST", body={**base, "branch": "MET_ptt"})
    assert status == 400
    assert "unknown branch 'MET_ptt'" in body["detail"]
    assert "did you mean MET_pt" in body["detail"]
    request = {**base, "branch": "MET_pt", "cuts": ["__import__('os')"]}
    status, body = await api("histograms", method="POST", body=request)
    assert status == 400
    assert "not allowed" in body["detail"]
    request = {"classes": {"s": ["toy/none_*.root"]}, "branch": "MET_pt"}
    status, body = await api("histograms", method="POST", body=request)
    assert status == 400
    assert "matches no files" in body["detail"]
