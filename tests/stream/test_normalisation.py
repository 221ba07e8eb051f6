"""Cross-section normalisation: xsec * luminosity * w / sum_w per sample, checked by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot

from mlaas_jupyter.cli import main
from mlaas_jupyter.errors import DataError, SpecError
from mlaas_jupyter.stream import BatchStream, DatasetSpec, compute_stats
from mlaas_jupyter.stream.summary import stats_summary

LUMI = 138_000.0
XSEC = {"tth": 0.5071, "tt": 833.9, "ttw": 0.61}


def _write(path: Path, n: int, seed: int, stored_sum: float | None = None) -> dict[str, Any]:
    """A NanoAOD-like file: Events (x, genWeight with ~20% negative) and Runs."""
    rng = np.random.default_rng(seed)
    w = (np.where(rng.random(n) < 0.2, -1.0, 1.0) * rng.uniform(0.5, 1.5, n)).astype("f4")
    x = rng.normal(size=n).astype("f4")
    with uproot.recreate(path) as handle:
        handle.mktree("Events", {"x": "f4", "genWeight": "f4"})
        handle["Events"].extend({"x": x, "genWeight": w})
        handle.mktree("Runs", {"genEventSumw": "f8"})
        runs = [float(w.sum(dtype=np.float64)) if stored_sum is None else stored_sum]
        handle["Runs"].extend({"genEventSumw": np.array(runs)})
    return {"x": x.astype(np.float64), "w": w.astype(np.float64)}


@pytest.fixture
def samples(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """ttH in two files, ttbar in one, ttW in one (the Runs sums of ttW are 1000)."""
    return {
        "tth": [_write(tmp_path / "tth_1.root", 3000, 1), _write(tmp_path / "tth_2.root", 1000, 2)],
        "tt": [_write(tmp_path / "tt_1.root", 4000, 3)],
        "ttw": [_write(tmp_path / "ttw_1.root", 2000, 4, stored_sum=1000.0)],
    }


def _spec(tmp_path: Path, **changes: Any) -> DatasetSpec:
    data: dict[str, Any] = {
        "tree": "Events",
        "luminosity": LUMI,
        "classes": {
            "ttH": {"files": ["tth_*.root"], "xsec": XSEC["tth"]},
            "ttbar": {"files": ["tt_1.root"], "xsec": XSEC["tt"]},
        },
        "branches": ["x"],
        "cuts": ["x > 0.5"],
        "weights": {"branch": "genWeight"},
        **changes,
    }
    return DatasetSpec.from_dict(data, tmp_path)


def _expected(parts: list[dict[str, Any]], xsec: float, negative: str = "keep") -> float:
    """The sample's yield after the cut ``x > 0.5``, computed directly."""
    sum_w = sum(p["w"].sum() for p in parts)  # signed, before cuts, over all its files
    total = 0.0
    for p in parts:
        w = p["w"][p["x"] > 0.5]
        w = np.abs(w) if negative == "abs" else np.where(w < 0, 0, w) if negative == "zero" else w
        total += w.sum()
    return xsec * LUMI * total / sum_w


@pytest.mark.parametrize("negative", ["keep", "abs", "zero"])
def test_yields_per_class_with_negative_weights_and_several_files(
    tmp_path: Path, samples: dict[str, Any], negative: str
) -> None:
    spec = _spec(tmp_path, weights={"branch": "genWeight", "negative": negative})
    summary = stats_summary(spec, compute_stats(spec, cache=False))
    for name, key in (("ttH", "tth"), ("ttbar", "tt")):
        parts = samples[key]
        row = summary["classes"][name]
        passed = np.concatenate([p["w"][p["x"] > 0.5] for p in parts])
        assert row["events"] == len(passed)
        assert row["yield"] == pytest.approx(_expected(parts, XSEC[key], negative), rel=1e-5)
        assert row["negative_fraction"] == pytest.approx((passed < 0).mean())
    # sum_w is the signed sum whatever happens to negative weights in training
    tth = summary["samples"][0]
    assert (tth["name"], tth["files"]) == ("ttH", 2)
    assert tth["sum_w"] == pytest.approx(sum(p["w"].sum() for p in samples["tth"]), rel=1e-9)
    assert tth["factor"] == pytest.approx(XSEC["tth"] * LUMI / tth["sum_w"])


def test_sums_stored_in_the_runs_tree_and_several_samples_per_class(
    tmp_path: Path, samples: dict[str, Any]
) -> None:
    classes = {
        "ttH": {"files": ["tth_*.root"], "xsec": XSEC["tth"]},
        "background": {
            "samples": {
                "ttbar": {"files": ["tt_1.root"], "xsec": XSEC["tt"]},
                "ttW": {"files": "ttw_1.root", "xsec": XSEC["ttw"]},
            }
        },
    }
    weights = {"branch": "genWeight", "sum": {"tree": "Runs", "branch": "genEventSumw"}}
    spec = _spec(tmp_path, classes=classes, weights=weights)
    summary = stats_summary(spec, compute_stats(spec, cache=False))
    # ttW's Runs tree says 1000, not the sum of its events' weights: the stored sum wins
    ttw = samples["ttw"][0]
    ttw_yield = XSEC["ttw"] * LUMI * ttw["w"][ttw["x"] > 0.5].sum() / 1000.0
    expected = _expected(samples["tt"], XSEC["tt"]) + ttw_yield
    assert summary["classes"]["background"]["yield"] == pytest.approx(expected, rel=1e-5)
    assert [(s["name"], s["class_name"]) for s in summary["samples"]] == [
        ("ttH", "ttH"),
        ("ttbar", "background"),
        ("ttW", "background"),
    ]
    assert summary["samples"][2]["sum_w"] == 1000.0


def test_event_weights_in_batches_are_normalised(tmp_path: Path, samples: dict[str, Any]) -> None:
    spec = _spec(tmp_path, cuts=[], split={"train": 1.0, "validation": 0.0, "test": 0.0})
    stream = BatchStream(spec, "train", 100_000, shuffle=False, cache=False)
    batch = next(iter(stream))
    tt = samples["tt"][0]
    factor = XSEC["tt"] * LUMI / tt["w"].sum()
    got = np.sort(batch.w[batch.y == 1].astype(np.float64))
    np.testing.assert_allclose(got, np.sort(tt["w"] * factor), rtol=1e-6)
    # before cuts, a sample's weights add up to its cross-section times the luminosity
    assert got.sum() == pytest.approx(XSEC["tt"] * LUMI, rel=1e-5)


def test_balance_weights_equalises_the_yields(tmp_path: Path, samples: dict[str, Any]) -> None:
    spec = _spec(tmp_path, balance="weights", weights={"branch": "genWeight", "negative": "abs"})
    stream = BatchStream(spec, "train", 100_000, shuffle=False, cache=False)
    batches = list(stream)
    y = np.concatenate([b.y for b in batches])
    w = np.concatenate([b.w for b in batches]).astype(np.float64)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum(), rel=1e-5)


def test_balance_refuses_a_class_whose_weights_do_not_add_up(tmp_path: Path) -> None:
    for name, sign in (("a.root", 1.0), ("b.root", -1.0)):
        with uproot.recreate(tmp_path / name) as handle:
            handle.mktree("Events", {"x": "f4", "w": "f4"})
            handle["Events"].extend({"x": np.ones(50, "f4"), "w": np.full(50, sign, "f4")})
    spec = DatasetSpec.from_dict(
        {"classes": {"a": "a.root", "b": "b.root"}, "branches": ["x"], "weights": {"branch": "w"},
         "balance": "weights"},
        tmp_path,
    )  # fmt: skip
    with pytest.raises(DataError, match=r"class 'b' has \d+ training events but a summed weight"):
        BatchStream(spec, "train", 10, cache=False)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"luminosity": None}, "luminosity", "sample 'ttH' of class 'ttH' has an xsec"),
        (
            {"classes": {"ttH": {"files": "tth_1.root", "xsec": 0.5}, "tt": "tt_1.root"}},
            "classes.tt.xsec",
            "every sample needs its cross-section",
        ),
        (
            {"classes": {"ttH": {"files": "tth_1.root", "xsec": 0.5},
                         "bkg": {"samples": {"tt": "tt_1.root"}}}},
            "classes.bkg.samples.tt.xsec",
            "every sample needs its cross-section",
        ),
        ({"classes": {"ttH": {"files": "a.root", "xsec": -1}, "tt": "b.root"}}, "classes.ttH.xsec",
         "must be > 0"),
        ({"classes": {"ttH": {"files": "a.root", "xsec": 1, "samples": {}}, "tt": "b.root"}},
         "classes.ttH.files", "give it per sample"),
    ],
)  # fmt: skip
def test_spec_errors_name_the_sample(
    tmp_path: Path, changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        _spec(tmp_path, **changes)
    assert caught.value.field.startswith(f"dataset.{field}")  # named from the spec's root
    assert message in str(caught.value)


def test_missing_runs_tree_and_zero_sum_name_sample_and_file(tmp_path: Path) -> None:
    for name, w in (("zero.root", [1.0, -1.0]), ("tt_1.root", [1.0, 2.0])):
        with uproot.recreate(tmp_path / name) as handle:
            handle.mktree("Events", {"x": "f4", "genWeight": "f4"})
            handle["Events"].extend({"x": np.ones(2, "f4"), "genWeight": np.array(w, "f4")})
    classes = {"ttH": {"files": "zero.root", "xsec": 1.0}, "ttbar": {"files": "tt_1.root",
               "xsec": 2.0}}  # fmt: skip
    spec = _spec(tmp_path, classes=classes)
    with pytest.raises(DataError) as caught:
        compute_stats(spec, cache=False)
    assert "sample 'ttH' (class 'ttH')" in str(caught.value)
    assert "is 0 over its files" in str(caught.value)
    assert "zero.root" in str(caught.value)
    runs = {"branch": "genWeight", "sum": {"tree": "Runs", "branch": "genEventSumw"}}
    with pytest.raises(DataError) as caught:
        compute_stats(_spec(tmp_path, classes=classes, weights=runs), cache=False)
    text = str(caught.value)
    assert text.startswith("sample 'ttH' (class 'ttH'), file ")
    assert "zero.root" in text
    assert "no tree 'Runs'" in text


def test_cli_stats_json_reports_events_yield_and_negative_fraction(
    tmp_path: Path, samples: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec.to_dict()))
    assert main(["stats", str(path), "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["luminosity"] == LUMI
    assert out["classes"]["ttH"]["yield"] == pytest.approx(
        _expected(samples["tth"], XSEC["tth"]), rel=1e-5
    )
    assert set(out["classes"]["ttbar"]) >= {"events", "yield", "negative_fraction"}
    assert main(["stats", str(path)]) == 0
    text = capsys.readouterr().out
    assert "normalised to 138000 pb^-1" in text
    assert "sample ttH (ttH): xsec 0.5071 pb" in text
