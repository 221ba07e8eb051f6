"""Physics metrics: weighted ROC AUC, background rejection, the best cut's Asimov Z,
on arrays whose answers are known by hand, and as a test run records them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlaas_jupyter.specs.dataset import DatasetSpec
from mlaas_jupyter.train._results import _save_curves
from mlaas_jupyter.train.metrics import evaluate_scores
from mlaas_jupyter.train.physics import (
    MIN_BACKGROUND_EVENTS,
    asimov_significance,
    best_cut,
    physics_metrics,
    rejection_at,
    weighted_auc,
    weighted_roc,
)

Z_10_20 = math.sqrt(2 * (30 * math.log(1.5) - 10))  # s = 10 over b = 20, by hand: 2.0804


def _mann_whitney(signal: Any, score: Any, w: Any) -> float:
    """The weighted AUC by its definition: every signal-background pair, ties half."""
    s, b = np.flatnonzero(signal), np.flatnonzero(~signal)
    wins = (score[s][:, None] > score[b][None, :]) + 0.5 * (score[s][:, None] == score[b][None, :])
    pairs = w[s][:, None] * w[b][None, :]
    return float((wins * pairs).sum() / (w[s].sum() * w[b].sum()))


def test_roc_of_interleaved_scores_by_hand() -> None:
    # signal 0.9 0.7 0.5 0.3, background 0.8 0.6 0.4 0.2: a staircase
    score = np.array([0.9, 0.7, 0.5, 0.3, 0.8, 0.6, 0.4, 0.2])
    signal = np.array([True] * 4 + [False] * 4)
    w = np.ones(8)
    eff_s, eff_b, thresholds = weighted_roc(signal, score, w)
    assert eff_s.tolist() == [0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1]
    assert eff_b.tolist() == [0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1]
    assert thresholds[0] == np.inf
    assert thresholds[1:].tolist() == sorted(score, reverse=True)
    # 4 + 3 + 2 + 1 of the 16 pairs rank the signal higher
    assert weighted_auc(signal, score, w) == pytest.approx(10 / 16)
    # 50%: the cut at 0.7 keeps one background of four; 90%: reached at 0.3, 3 of 4
    assert rejection_at(eff_s, eff_b, 0.5) == pytest.approx(4.0)
    assert rejection_at(eff_s, eff_b, 0.9) == pytest.approx(4 / 3)


def test_rejection_interpolates_across_a_tie_and_is_none_without_background() -> None:
    # signal at 0.9 and 0.5, background at 0.5 and 0.1: the tie at 0.5 is one step
    score = np.array([0.9, 0.5, 0.5, 0.1])
    signal = np.array([True, True, False, False])
    eff_s, eff_b, _ = weighted_roc(signal, score, np.ones(4))
    assert list(zip(eff_s, eff_b, strict=True)) == [(0, 0), (0.5, 0), (1, 0.5), (1, 1)]
    # eff_s 0.9 lies 80% of the way from (0.5, 0) to (1, 0.5): eff_b 0.4
    assert rejection_at(eff_s, eff_b, 0.9) == pytest.approx(2.5)
    assert rejection_at(eff_s, eff_b, 0.5) is None  # no background left: infinite
    assert weighted_auc(signal, score, np.ones(4)) == pytest.approx(0.875)


def test_weighted_auc_matches_sklearn_for_positive_weights_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    score = np.round(rng.normal(0.4 + 0.2 * y, 0.2), 2)  # rounded: many ties
    w = rng.uniform(0.1, 3.0, 2000)
    expected = roc_auc_score(y, score, sample_weight=w)
    assert weighted_auc(y == 1, score, w) == pytest.approx(expected, abs=1e-12)


def test_negative_weights_give_the_pairwise_auc_where_sklearn_refuses() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    score = rng.normal(0.4 + 0.2 * y, 0.2)
    w = rng.uniform(0.5, 1.5, 300) * rng.choice([1.0, -1.0], 300, p=[0.8, 0.2])
    with pytest.raises(ValueError, match="neither increasing nor decreasing"):
        roc_auc_score(y, score, sample_weight=w)
    expected = _mann_whitney(y == 1, score, w)
    assert weighted_auc(y == 1, score, w) == pytest.approx(expected, abs=1e-12)
    p = np.clip(score, 0.0, 1.0)
    auc = evaluate_scores("binary", y, p, w)["auc"]  # today's metric no longer fails
    assert auc == pytest.approx(_mann_whitney(y == 1, p, w), abs=1e-12)


def test_asimov_significance_against_the_formula() -> None:
    assert asimov_significance(10.0, 20.0) == pytest.approx(Z_10_20)
    assert pytest.approx(2.0804, abs=1e-4) == Z_10_20
    # many background events: s / sqrt(b)
    assert asimov_significance(50.0, 1e6) == pytest.approx(0.05, rel=1e-3)
    assert asimov_significance(0.0, 5.0) == 0.0
    assert asimov_significance(-1.0, 5.0) == 0.0
    assert asimov_significance(np.array([10.0, 3.0]), np.array([20.0, 0.0])).tolist() == [
        pytest.approx(Z_10_20),
        0.0,
    ]


def _separated() -> tuple[Any, Any, Any]:
    """20 signal events at 0.7-0.89 (yield 0.5 each), 20 background at 0.1025-0.2925
    (yield 2 each): fully separated, background scores in the middle of 0.005 bins."""
    score = np.r_[np.linspace(0.7, 0.89, 20), 0.1025 + 0.01 * np.arange(20)]
    signal = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    yields = np.r_[np.full(20, 0.5), np.full(20, 2.0)]
    return signal, score, yields


def test_best_cut_keeps_the_minimum_of_simulated_background() -> None:
    signal, score, yields = _separated()
    assert MIN_BACKGROUND_EVENTS == 10
    cut = best_cut(signal, score, yields)
    # zero background is not allowed: the best cut keeps all signal and the top 10
    # background events (0.2025 ... 0.2925); of the equal cuts 0.195 and 0.2 (edges
    # between 0.1925 and 0.2025) the loosest is reported
    assert cut is not None
    assert cut["score"] == pytest.approx(0.195)
    assert (cut["signal"], cut["background"]) == pytest.approx((10.0, 20.0))
    assert cut["significance"] == pytest.approx(Z_10_20)
    # with under one expected background event left no cut qualifies
    assert best_cut(signal, score, np.r_[np.full(20, 0.5), np.full(20, 0.01)]) is None


def test_physics_metrics_of_a_perfect_separation() -> None:
    signal, score, yields = _separated()
    y = signal.astype(np.int64)
    metrics = physics_metrics("binary", y, score, yields, luminosity=138000.0)
    assert set(metrics) == {
        "auc_weighted",
        "rejection_at_50",
        "rejection_at_90",
        "best_cut",
        "luminosity",
    }
    assert metrics["auc_weighted"] == 1.0
    assert metrics["rejection_at_50"] is None
    assert metrics["rejection_at_90"] is None
    assert metrics["best_cut"]["significance"] == pytest.approx(Z_10_20)
    assert metrics["luminosity"] == 138000.0
    json.dumps(metrics, allow_nan=False)  # JSON-safe: no infinity, no NaN

    one_class = physics_metrics("binary", np.zeros(5, np.int64), np.linspace(0, 1, 5), np.ones(5))
    assert one_class == dict.fromkeys(
        ("auc_weighted", "rejection_at_50", "rejection_at_90", "best_cut")
    )
    assert physics_metrics("regression", y, score, yields) == {}


def test_multiclass_takes_the_last_class_as_signal() -> None:
    # the last class scores 0.9 on its own column, the others 0.1 on it
    y = np.array([0] * 15 + [1] * 15 + [2] * 10)
    scores = np.full((40, 3), 0.05)
    scores[:, 2] = np.where(y == 2, 0.9, 0.1)
    scores[np.arange(40), np.minimum(y, 1)] = 0.85
    metrics = physics_metrics("multiclass", y, scores, np.ones(40))
    assert metrics["auc_weighted"] == 1.0
    assert metrics["best_cut"]["signal"] == 10.0
    assert metrics["best_cut"]["background"] == 30.0  # 0.1 is the only cut with >= 10


def _dataset(luminosity: float | None) -> DatasetSpec:
    classes = {
        "ttbar": {"files": ["tt.root"], "xsec": 833.9},
        "ttH": {"files": ["h.root"], "xsec": 0.5},
    }
    spec: dict[str, Any] = {"tree": "Events", "branches": ["x"], "luminosity": luminosity}
    if luminosity is None:
        spec["classes"] = {"ttbar": ["tt.root"], "ttH": ["h.root"]}
    else:
        spec["classes"] = classes
    return DatasetSpec.model_validate(spec)


def test_save_curves_adds_the_metrics_and_writes_the_curves(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    y = (rng.random(4000) < 0.3).astype(np.int64)
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0.0, 1.0)
    w = np.ones(4000)
    yields = np.where(y == 1, 0.05, 30.0)
    metrics: dict[str, Any] = evaluate_scores("binary", y, score, w)
    history = [{"epoch": 1, "loss": 0.5}]
    paths = _save_curves(tmp_path, _dataset(138000.0), history, y, w, score, metrics, yields=yields)
    assert [p.name for p in paths] == ["loss.png", "roc.png", "rejection.png", "scores.png"]
    assert metrics["luminosity"] == 138000.0
    assert metrics["auc_weighted"] == pytest.approx(weighted_auc(y == 1, score, yields))
    assert metrics["rejection_at_50"] > metrics["rejection_at_90"] > 1
    cut = metrics["best_cut"]
    assert cut["background"] >= 1
    assert cut["signal"] > 0
    assert cut["significance"] == pytest.approx(
        asimov_significance(cut["signal"], cut["background"])
    )
    curves = json.loads((tmp_path / "plots" / "curves.json").read_text())
    assert set(curves) == {"history", "roc", "scores", "rejection", "yields"}
    assert curves["rejection"]["auc"] == metrics["auc_weighted"]
    assert min(curves["rejection"]["background_rejection"]) >= 1.0
    in_events = curves["yields"]
    # the histograms hold the expected yields of each class (all scores are in range)
    assert sum(in_events["classes"]["ttH"]) == pytest.approx(yields[y == 1].sum())
    assert sum(in_events["classes"]["ttbar"]) == pytest.approx(yields[y == 0].sum())
    assert in_events["signal"] == "ttH"
    assert in_events["luminosity"] == 138000.0
    assert in_events["signal_scale"] == 1000  # ttbar / ttH ~ 1400: shown x1000
    assert sum(curves["scores"]["classes"]["ttH"]) == pytest.approx(1.0)  # unit area kept


def test_save_curves_without_yields_uses_the_weights(tmp_path: Path) -> None:
    y = np.r_[np.zeros(30, np.int64), np.ones(30, np.int64)]
    score = np.r_[np.linspace(0.0, 0.6, 30), np.linspace(0.4, 1.0, 30)]
    w = np.full(60, 2.0)
    metrics: dict[str, Any] = {}
    _save_curves(tmp_path, _dataset(None), [], y, w, score, metrics)
    assert "luminosity" not in metrics
    assert metrics["auc_weighted"] == pytest.approx(weighted_auc(y == 1, score, w))
    curves = json.loads((tmp_path / "plots" / "curves.json").read_text())
    assert sum(curves["yields"]["classes"]["ttH"]) == pytest.approx(60.0)
    assert curves["yields"]["luminosity"] is None
