"""POST stats: a dataset spec's events, expected yields and negative weights per class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot


def _columns(path: Path) -> dict[str, Any]:
    with uproot.open(path) as handle:
        return dict(handle["Events"].arrays(["nJet", "EventWeight"], library="np", how=dict))


async def test_stats_reports_normalised_yields(api: Any, toy_dir: Path) -> None:
    spec = {
        "tree": "Events",
        "luminosity": 1000.0,
        "classes": {
            "signal": {"files": ["toy/signal_*.root"], "xsec": 0.5},
            "background": {"files": "toy/background_0.root", "xsec": 800.0},
        },
        "branches": ["MET_pt"],
        "cuts": ["nJet >= 4"],
        "weights": {"branch": "EventWeight"},
    }
    status, body = await api("stats", method="POST", body=spec)
    assert status == 200, body
    assert body["luminosity"] == 1000.0
    for name, xsec in (("signal", 0.5), ("background", 800.0)):
        columns = _columns(toy_dir / f"{name}_0.root")
        w = columns["EventWeight"].astype(np.float64)
        keep = columns["nJet"] >= 4
        row = body["classes"][name]
        assert row["events"] == int(keep.sum())
        assert row["yield"] == pytest.approx(xsec * 1000.0 * w[keep].sum() / w.sum(), rel=1e-5)
        assert row["negative_fraction"] == 0.0
    assert [s["name"] for s in body["samples"]] == ["signal", "background"]


async def test_stats_errors_name_the_field_or_refuse_the_path(
    api: Any, toy_dir: Path, outside_dir: Path
) -> None:
    spec: dict[str, Any] = {
        "tree": "Events",
        "classes": {"s": {"files": "toy/signal_0.root", "xsec": 0.5}, "b": "toy/background_0.root"},
    }
    status, body = await api("stats", method="POST", body=spec)
    assert status == 400
    assert body["field"] == "dataset.luminosity"
    assert "has an xsec" in body["detail"]
    spec = {"classes": {"s": "toy/signal_0.root", "b": str(outside_dir / "secret.root")}}
    status, body = await api("stats", method="POST", body=spec)
    assert status == 403, body


@pytest.mark.parametrize("method", ["weights", "sample"])
async def test_stats_say_what_balancing_did(api: Any, jp_root_dir: Path, method: str) -> None:
    """Issue 22, item 5: each class's sum of weights before and after ``balance``."""
    from known_weights import expected_balancing, write_known_weights

    spec = write_known_weights(jp_root_dir / "kw", prefix="kw/")
    status, body = await api("stats", method="POST", body={**spec, "balance": method})
    assert status == 200, body
    assert body["balance"] == method
    expected = expected_balancing(method)
    assert body["balancing"]["classes"] == {
        name: {k: pytest.approx(v) for k, v in row.items()}
        for name, row in expected["classes"].items()
    }
    assert {k: body["balancing"][k] for k in ("method", "split", "problem")} == {
        "method": method,
        "split": "train",
        "problem": None,
    }


async def test_stats_name_a_misspelt_field_and_the_nearest_one(api: Any, toy_dir: Path) -> None:
    """Issue 22, item 4: a dataset's fields are named from its root, with a suggestion."""
    spec = {"classes": {"s": "toy/signal_0.root", "b": "toy/background_0.root"}, "branchs": ["x"]}
    status, body = await api("stats", method="POST", body=spec)
    assert status == 400, body
    assert body["field"] == "dataset.branchs"
    assert body["detail"].startswith(
        "dataset.branchs: unknown field; did you mean branches? allowed fields are balance,"
    )
