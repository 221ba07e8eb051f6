"""Hand-written training reports (report.json, format 1) whose every value is known.

:func:`binary_report`, :func:`multiclass_report` and :func:`regression_report` are
the report dicts; :func:`write_report_folder` writes one into a run folder with a
small PNG for each of its plots (``plots/report_*.png``).
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

_OVERTRAINING: dict[str, Any] = {
    "threshold": 0.05,
    "edges": [0.0, 0.5, 1.0],
    "classes": {
        "background": {
            "train": [1.2, 0.8],
            "test": [1.1, 0.9],
            "ks_statistic": 0.04,
            "ks_pvalue": 0.61,
            "flagged": False,
        },
        "signal": {
            "train": [0.2, 1.8],
            "test": [0.6, 1.4],
            "ks_statistic": 0.31,
            "ks_pvalue": 0.0012,
            "flagged": True,
        },
    },
    "flagged": ["signal"],
}
_RANKING: dict[str, Any] = {
    "metric": "auc",
    "baseline": 0.87,
    "variables": [
        {"name": "MET_pt", "kind": "flat", "importance": 0.21, "std": 0.01},
        {"name": "Jet_pt", "kind": "jagged", "importance": 0.08, "std": 0.005},
    ],
    "columns": [
        {"name": "MET_pt", "variable": "MET_pt", "importance": 0.21, "std": 0.01},
        {"name": "Jet_pt[0]", "variable": "Jet_pt", "importance": 0.06, "std": 0.004},
        {"name": "Jet_pt[1]", "variable": "Jet_pt", "importance": 0.01, "std": 0.002},
    ],
    "native": None,
}
_CORRELATIONS: dict[str, Any] = {
    "variables": ["MET_pt", "Jet_pt[0]"],
    "classes": {"background": [[1.0, 0.3], [0.3, 1.0]], "signal": [[1.0, -0.42], [-0.42, 1.0]]},
}


def binary_report() -> dict[str, Any]:
    """A binary classifier's report, its signal class flagged as overtrained."""
    return copy.deepcopy(
        {
            "report_format": 1,
            "task": "binary",
            "classes": ["background", "signal"],
            "signal": "signal",
            "split": "test",
            "events": {"train": 800, "test": 200},
            "overtraining": _OVERTRAINING,
            "ranking": _RANKING,
            "correlations": _CORRELATIONS,
            "efficiencies": {
                "signal_at_background": {"0.001": 0.05, "0.01": 0.21, "0.1": 0.62, "0.3": 0.9},
                "roc_integral": 0.87,
                "separation": 0.43,
            },
            "confusion": None,
            "one_vs_rest": None,
            "regression": None,
            "folds": None,
            "plots": {
                "overtraining": "plots/report_overtraining.png",
                "ranking": "plots/report_ranking.png",
            },
        }
    )


def multiclass_report() -> dict[str, Any]:
    """A three-class report with a confusion matrix and one-vs-rest AUCs, 2 folds."""
    report = binary_report()
    report.update(
        task="multiclass",
        classes=["qcd", "ttbar", "higgs"],
        signal="higgs",
        confusion={
            "classes": ["qcd", "ttbar", "higgs"],
            "matrix": [[80.0, 15.0, 5.0], [10.0, 70.0, 20.0], [4.0, 6.0, 90.0]],
            "normalised": [[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.04, 0.06, 0.9]],
        },
        one_vs_rest={
            "qcd": {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "auc": 0.91},
            "ttbar": {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "auc": 0.83},
            "higgs": {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "auc": 0.95},
        },
        folds=[
            {"fold": 0, "metrics": {"auc": 0.9, "loss": 0.4}},
            {"fold": 1, "metrics": {"auc": 0.88, "loss": 0.42}},
        ],
        split="out_of_fold",
    )
    return report


def regression_report() -> dict[str, Any]:
    """A regression's report: residuals, bias and resolution in bins of the target."""
    return {
        "report_format": 1,
        "task": "regression",
        "classes": [],
        "signal": None,
        "split": "test",
        "events": {"train": 500, "test": 120},
        "overtraining": {
            "threshold": 0.05,
            "edges": [0.0, 1.0],
            "classes": {
                "all": {
                    "train": [1.0],
                    "test": [1.0],
                    "ks_statistic": 0.02,
                    "ks_pvalue": 0.9,
                    "flagged": False,
                }
            },
            "flagged": [],
        },
        "ranking": {
            "metric": "r2",
            "baseline": 0.75,
            "variables": [{"name": "MET_pt", "kind": "flat", "importance": 0.3, "std": 0.02}],
            "columns": [],
            "native": [{"name": "MET_pt", "importance": 12.5}],
        },
        "correlations": None,
        "efficiencies": None,
        "confusion": None,
        "one_vs_rest": None,
        "regression": {
            "residuals": {"edges": [-1.0, 0.0, 1.0], "counts": [55, 65]},
            "mean": 0.013,
            "std": 0.25,
            "binned": [
                {"low": 0.0, "high": 50.0, "events": 60, "bias": 0.02, "resolution": 0.2},
                {"low": 50.0, "high": 100.0, "events": 60, "bias": -0.01, "resolution": 0.3},
            ],
            "r2": 0.75,
            "mae": 0.19,
        },
        "folds": None,
        "plots": {},
    }


def png_bytes(colour: str = "red") -> bytes:
    """A tiny PNG image (Matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(0.5, 0.5), dpi=20)
    figure.add_subplot().plot([0, 1], [0, 1], color=colour)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_report_folder(folder: Path, report: dict[str, Any] | None = None) -> Path:
    """A run folder holding ``report.json`` (``binary_report()`` by default) and a PNG
    for each plot it names; returns the folder."""
    report = binary_report() if report is None else report
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    for relative in (report.get("plots") or {}).values():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes())
    return folder
