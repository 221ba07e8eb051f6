"""Every number of the training report against an independent computation.

The statistics of :mod:`mlaas_jupyter.train._report_stats` and the ranking of
:mod:`mlaas_jupyter.train._report_ranking` on data whose answer is known: scipy's KS
test, scikit-learn's ROC, AUC, confusion matrix and R^2, NumPy's weighted covariance,
the separation of identical and disjoint distributions, and the permutation importance
of a variable that carries everything against one that carries nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import confusion_matrix, r2_score, roc_auc_score, roc_curve

from mlaas_jupyter.train._report_ranking import (
    metric,
    native_importance,
    permutation_ranking,
    variables_of,
)
from mlaas_jupyter.train._report_stats import (
    confusion,
    effective_size,
    efficiencies,
    regression_summary,
    separation,
    weighted_correlations,
    weighted_ks,
    weighted_quantile,
)
from mlaas_jupyter.train.report import build_report


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def test_ks_unit_weights_is_scipys_asymptotic_test(rng: np.random.Generator) -> None:
    a, b = rng.normal(0.0, 1.0, 900), rng.normal(0.15, 1.0, 1300)
    d, p = weighted_ks(a, np.ones(len(a)), b, np.ones(len(b)))
    expected = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
    assert p < 0.05  # shifted by 0.15 sigma with a thousand events: a real difference


def test_ks_integer_weights_are_repeated_events(rng: np.random.Generator) -> None:
    a, b = rng.uniform(size=300), rng.uniform(0.05, 1.05, size=400)
    wa, wb = rng.integers(1, 4, len(a)), rng.integers(1, 4, len(b))
    d, p = weighted_ks(a, wa.astype(float), b, wb.astype(float))
    repeated = stats.ks_2samp(np.repeat(a, wa), np.repeat(b, wb), method="asymp")
    assert d == pytest.approx(repeated.statistic, abs=1e-12)
    # the p-value counts the effective events (sum w)^2 / sum w^2, not the repeats
    na, nb = effective_size(wa), effective_size(wb)
    assert na == pytest.approx(wa.sum() ** 2 / (wa**2).sum())
    n = np.round(na * nb / (na + nb))
    assert p == pytest.approx(stats.kstwo.sf(d, n), rel=1e-9)
    assert p > repeated.pvalue  # fewer effective events than repeats: a weaker test


def test_ks_same_sample_and_no_weight() -> None:
    a = np.linspace(0, 1, 50)
    assert weighted_ks(a, np.ones(50), a, np.full(50, 2.0)) == (0.0, 1.0)
    assert weighted_ks(a, np.zeros(50), a, np.ones(50)) == (None, None)
    assert weighted_ks(a[:0], a[:0], a, np.ones(50)) == (None, None)


def test_separation_of_known_distributions(rng: np.random.Generator) -> None:
    x = rng.uniform(size=1000)
    assert separation(x, np.ones(1000), x, np.full(1000, 3.0)) == pytest.approx(0.0)
    low, high = rng.uniform(0.0, 0.4, 500), rng.uniform(0.6, 1.0, 700)
    assert separation(high, np.ones(700), low, np.ones(500)) == pytest.approx(1.0)
    # signal flat on [0, 1], background twice as dense on [0, 0.5]:
    # 1/2 (1/2 (1 - 2)^2 / (1 + 2) + 1/2 * 1) = 1/3
    signal = np.r_[rng.uniform(0.0, 0.5, 20000), rng.uniform(0.5, 1.0, 20000)]
    background = rng.uniform(0.0, 0.5, 40000)
    edges = np.linspace(0, 1, 101)
    ys = np.histogram(signal, edges)[0] / len(signal)
    yb = np.histogram(background, edges)[0] / len(background)
    used = ys + yb > 0
    expected = 0.5 * np.sum((ys - yb)[used] ** 2 / (ys + yb)[used])
    assert separation(signal, np.ones(40000), background, np.ones(40000)) == pytest.approx(expected)
    assert expected == pytest.approx(1 / 3, abs=0.01)


def test_efficiencies_on_sklearns_roc(rng: np.random.Generator) -> None:
    n = 20000
    signal = rng.uniform(size=n) < 0.4
    score = rng.normal(np.where(signal, 1.2, 0.0), 1.0)
    w = rng.uniform(0.5, 2.0, n)
    out = efficiencies(signal, score, w)
    fpr, tpr, _ = roc_curve(signal, score, sample_weight=w)
    for target in (0.001, 0.01, 0.1, 0.3):
        assert out["signal_at_background"][str(target)] == pytest.approx(
            np.interp(target, fpr, tpr), abs=1e-9
        )
    assert out["roc_integral"] == pytest.approx(roc_auc_score(signal, score, sample_weight=w))
    assert 0.0 < out["separation"] < 1.0
    no_background = efficiencies(np.ones(5, bool), np.arange(5.0), np.ones(5))
    assert no_background["roc_integral"] is None
    assert set(no_background["signal_at_background"].values()) == {None}


def test_weighted_correlations_are_numpys(rng: np.random.Generator) -> None:
    n = 5000
    a = rng.normal(size=n)
    x = np.c_[a, 0.6 * a + 0.8 * rng.normal(size=n), np.full(n, 3.0), rng.normal(size=n)]
    w = rng.uniform(0.1, 3.0, n)
    used, constant, matrix = weighted_correlations(x, w, ["a", "b", "c", "d"])
    assert (used, constant) == (["a", "b", "d"], ["c"])
    expected = np.corrcoef(np.cov(x[:, [0, 1, 3]].T, aweights=w))
    cov = np.cov(x[:, [0, 1, 3]].T, aweights=w)
    expected = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(matrix, expected, atol=1e-12)
    assert matrix[0, 1] == pytest.approx(0.6, abs=0.03)
    assert not np.isnan(matrix).any()


def test_confusion_is_sklearns(rng: np.random.Generator) -> None:
    y = rng.integers(0, 3, 600)
    predicted = np.where(rng.uniform(size=600) < 0.7, y, rng.integers(0, 3, 600))
    w = rng.uniform(0.2, 2.0, 600)
    matrix, normalised = confusion(y, predicted, w, 3)
    expected = confusion_matrix(y, predicted, sample_weight=w, labels=[0, 1, 2])
    np.testing.assert_allclose(matrix, expected)
    np.testing.assert_allclose(
        normalised, confusion_matrix(y, predicted, sample_weight=w, normalize="true")
    )
    _, empty_row = confusion(np.zeros(4, int), np.zeros(4, int), np.ones(4), 2)
    assert empty_row == [[1.0, 0.0], [None, None]]


def test_regression_summary(rng: np.random.Generator) -> None:
    n = 40000
    truth = rng.uniform(0.0, 10.0, n)
    # bias +0.5 everywhere; Gaussian resolution growing with the target: 0.1 * truth
    predicted = truth + 0.5 + rng.normal(size=n) * 0.1 * truth
    w = rng.uniform(0.5, 1.5, n)
    out = regression_summary(truth, predicted, w, bins=5)
    assert out["r2"] == pytest.approx(r2_score(truth, predicted, sample_weight=w))
    assert out["mae"] == pytest.approx(np.average(np.abs(predicted - truth), weights=w))
    assert out["mean"] == pytest.approx(np.average(predicted - truth, weights=w))
    assert [b["events"] for b in out["binned"]] == pytest.approx([n / 5] * 5, rel=0.05)
    for entry in out["binned"]:
        centre = (entry["low"] + entry["high"]) / 2
        assert entry["bias"] == pytest.approx(0.5, abs=0.05)
        assert entry["resolution"] == pytest.approx(0.1 * centre, rel=0.15)
    assert sum(out["residuals"]["counts"]) == pytest.approx(w.sum(), rel=1e-9)


def test_weighted_quantile_of_unit_weights_is_hazen(rng: np.random.Generator) -> None:
    x = rng.normal(size=101)
    q = [0.16, 0.5, 0.84]
    np.testing.assert_allclose(
        weighted_quantile(x, np.ones(101), q), np.quantile(x, q, method="hazen")
    )


def test_permutation_importance_of_informative_and_useless_variables(
    rng: np.random.Generator,
) -> None:
    n = 4000
    y = rng.integers(0, 2, n)
    x = np.c_[y + rng.normal(0, 0.5, n), rng.normal(size=n)].astype(np.float32)
    w = np.ones(n)

    def predict(matrix: np.ndarray) -> np.ndarray:  # uses the first column only
        return 1.0 / (1.0 + np.exp(-4 * (matrix[:, 0] - 0.5)))

    ranking = permutation_ranking(predict, "binary", x, y, w, variables_of(None, 2), seed=3)
    assert ranking["baseline"] == pytest.approx(roc_auc_score(y, predict(x)))
    first, second = ranking["variables"]
    assert first["name"] == "x[0]"
    assert second["name"] == "x[1]"
    assert first["importance"] == pytest.approx(ranking["baseline"] - 0.5, abs=0.03)
    assert (second["importance"], second["std"]) == (0.0, 0.0)
    assert [c["importance"] for c in ranking["columns"]] == [
        first["importance"], second["importance"]
    ]  # fmt: skip
    again = permutation_ranking(predict, "binary", x, y, w, variables_of(None, 2), seed=3)
    assert again == ranking  # a fixed seed: the same numbers


def test_permutation_of_a_block_and_regression_r2(rng: np.random.Generator) -> None:
    n = 3000
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = x[:, 0] + x[:, 1]  # a two-column "jagged" variable carries everything

    def predict(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(matrix[:, 0] + matrix[:, 1], dtype=np.float64)

    variables = [("Jet_pt", "jagged", [0, 1], ["Jet_pt[0]", "Jet_pt[1]"]),
                 ("MET", "flat", [2], ["MET"])]  # fmt: skip
    ranking = permutation_ranking(predict, "regression", x, y, np.ones(n), variables)
    assert ranking["metric"] == "r2"
    assert ranking["baseline"] == pytest.approx(1.0)
    jet, met = ranking["variables"]
    # permuting both columns: R^2 = 1 - E[(s' - s)^2] / var(s) = 1 - 2 = -1 -> a loss of 2
    assert jet["name"] == "Jet_pt"
    assert jet["importance"] == pytest.approx(2.0, abs=0.15)
    assert met["importance"] == 0.0
    columns = {c["name"]: c for c in ranking["columns"]}
    assert columns["Jet_pt[0]"]["variable"] == "Jet_pt"
    assert columns["Jet_pt[0]"]["importance"] == pytest.approx(1.0, abs=0.1)
    assert metric("regression", y, predict(x), np.ones(n)) == pytest.approx(r2_score(y, y))


def test_native_importance_of_a_fitted_bdt(rng: np.random.Generator) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    n = 3000
    y = rng.integers(0, 2, n)
    x = np.c_[y + rng.normal(0, 0.7, n), rng.normal(size=(n, 2))]

    class Backend:
        estimator = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)

    variables = [("signal_like", "flat", [0], ["signal_like"]),
                 ("noise", "fixed", [1, 2], ["noise[0]", "noise[1]"])]  # fmt: skip
    native = native_importance(Backend(), variables)
    assert native is not None
    assert [v["name"] for v in native] == ["signal_like", "noise"]
    assert sum(v["importance"] for v in native) == pytest.approx(1.0)
    assert native[0]["importance"] > 0.8
    assert native_importance(object(), variables) is None


def test_build_report_caps_the_events_and_has_no_nan(rng: np.random.Generator) -> None:
    from mlaas_jupyter.specs.report import Report, ReportSettings

    n = 3000
    y = rng.integers(0, 3, n)
    scores = rng.dirichlet(np.ones(3), n)
    x = np.c_[rng.normal(size=n), np.zeros(n)]
    settings = ReportSettings(max_events=1000, ranking_events=200, repeats=2)
    report = build_report("multiclass", ["a", "b", "c"], y, np.ones(n), scores, x=x,
                          train=(y, np.ones(n), scores), predict=lambda m: scores[: len(m)],
                          settings=settings)  # fmt: skip
    assert report["events"] == {"train": 1000, "test": 1000}
    assert report["notes"] == [
        "test: 1000 of 3000 events used (training.report.max_events)",
        "train: 1000 of 3000 events used",
    ]
    assert report["ranking"]["events"] == 200
    assert report["correlations"]["constant"] == ["x[1]"]
    assert report["correlations"]["classes"]["a"] == [[1.0]]
    assert set(report["one_vs_rest"]) == {"a", "b", "c"}
    assert report["confusion"]["classes"] == ["a", "b", "c"]
    assert report["signal"] == "c"
    assert report["regression"] is None
    Report.parse(report)
