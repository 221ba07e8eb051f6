"""`Report`: the training report of a finished run (``RUN_DIR/report.json``), and its
settings (``training.report``).

The report holds what TMVA's evaluation shows, computed on the held-out split by
:mod:`mlaas_jupyter.train.report`: the overtraining check (train against test score
distributions with weighted Kolmogorov-Smirnov tests), the ranking of the input
variables (permutation importance; split gains for the BDT), weighted correlations of
the inputs per class, signal efficiencies at fixed background efficiencies, the ROC
integral and the separation; the confusion matrix and one-vs-rest ROCs of a multi-class
model; the residuals, bias and resolution of a regression. A section that does not
apply to the task is null. Values that are undefined (an AUC of one class) are null,
never NaN. ``report_format`` is 1; a reader refuses other versions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import SpecModel
from ._types import Count, Number

__all__ = [
    "REPORT_FORMAT",
    "Confusion",
    "Correlations",
    "Curve",
    "Efficiencies",
    "FoldMetrics",
    "Histogram",
    "NativeImportance",
    "Overtraining",
    "OvertrainingClass",
    "RankedColumn",
    "RankedVariable",
    "Ranking",
    "RegressionBin",
    "RegressionSummary",
    "Report",
    "ReportSettings",
]

REPORT_FORMAT: Literal[1] = 1

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class ReportSettings(SpecModel):
    """``training.report``: how the training report is computed."""

    spec_root = "training.report"

    ks_threshold: Annotated[Number, Field(gt=0.0, lt=1.0)] = Field(
        default=0.05,
        description="a class is flagged as overtrained when the Kolmogorov-Smirnov p-value "
        "of its train and test score distributions is below this",
    )
    max_events: Count = Field(
        default=200_000, description="events of each split (test, train) the report uses"
    )
    ranking_events: Count = Field(
        default=20_000, description="test events the permutation importance is computed on"
    )
    repeats: Count = Field(default=3, description="permutations per variable (mean and std)")


class _Section(SpecModel):
    """A part of the report (frozen, unknown keys refused)."""

    spec_root = "report"


class OvertrainingClass(_Section):
    """One class's train and test score densities and their KS test."""

    train: list[float]
    test: list[float]
    ks_statistic: float | None
    ks_pvalue: float | None
    flagged: bool


class Overtraining(_Section):
    """The train/test comparison of the signal-class score (regression: the prediction,
    one pseudo-class ``all``); densities over ``edges``."""

    threshold: float
    edges: list[float]
    score: str = Field(default="", description="what is histogrammed, e.g. P(signal)")
    classes: dict[str, OvertrainingClass]
    flagged: list[str]


class RankedVariable(_Section):
    """The metric lost when a variable's columns are permuted across events together."""

    name: str
    kind: Literal["flat", "fixed", "jagged", "mask"]
    importance: float | None
    std: float | None


class RankedColumn(_Section):
    """The metric lost when one column of the matrix is permuted."""

    name: str
    variable: str
    importance: float | None
    std: float | None


class NativeImportance(_Section):
    """A model's own importance of a variable (the BDT: its share of the split gains)."""

    name: str
    importance: float


class Ranking(_Section):
    """Permutation importance of the inputs on the report's split, most important first."""

    metric: Literal["auc", "r2"]
    baseline: float | None
    events: int = 0
    repeats: int = 0
    variables: list[RankedVariable]
    columns: list[RankedColumn]
    native: list[NativeImportance] | None = None


class Correlations(_Section):
    """Weighted correlation matrices (-1..1) of the matrix columns per class; mask and
    constant columns are left out (``masks``, ``constant``)."""

    variables: list[str]
    constant: list[str] = Field(default_factory=list)
    masks: list[str] = Field(default_factory=list)
    classes: dict[str, list[list[float]]]


class Curve(_Section):
    """A ROC curve: false and true positive rates (background and signal efficiency)."""

    fpr: list[float]
    tpr: list[float]
    auc: float | None = None


class Efficiencies(_Section):
    """Signal (last class) against the rest: signal efficiency at background
    efficiencies "0.001", "0.01", "0.1", "0.3", ROC integral, separation <S^2>."""

    signal_at_background: dict[str, float | None]
    roc_integral: float | None
    separation: float | None
    roc: Curve | None = None


class Confusion(_Section):
    """Weighted counts ``matrix[true][predicted]`` (argmax) and row fractions."""

    classes: list[str]
    matrix: list[list[float]]
    normalised: list[list[float | None]]


class Histogram(_Section):
    edges: list[float]
    counts: list[float]


class RegressionBin(_Section):
    """Bias and resolution of the residual for a range of the true target."""

    low: float
    high: float
    events: int
    bias: float
    resolution: float


class RegressionSummary(_Section):
    """Residuals ``prediction - target`` and how they depend on the target."""

    residuals: Histogram
    mean: float | None
    std: float | None
    binned: list[RegressionBin]
    r2: float | None
    mae: float | None
    bias_definition: str = ""
    resolution_definition: str = ""


class FoldMetrics(_Section):
    fold: int
    metrics: dict[str, Any]


class Report(_Section):
    """``report.json`` of a training run (see the module's docstring)."""

    report_format: Literal[1] = REPORT_FORMAT
    task: Literal["binary", "multiclass", "regression"]
    classes: list[str]
    signal: str | None
    split: str
    events: dict[str, int]
    overtraining: Overtraining | None = None
    ranking: Ranking | None = None
    correlations: Correlations | None = None
    efficiencies: Efficiencies | None = None
    confusion: Confusion | None = None
    one_vs_rest: dict[str, Curve] | None = None
    regression: RegressionSummary | None = None
    folds: list[FoldMetrics] | None = None
    plots: dict[str, str] = Field(
        default_factory=dict, description="plot name -> PNG path relative to the run folder"
    )
    notes: list[str] = Field(
        default_factory=list, description="how the report was made: events left out by its caps"
    )
