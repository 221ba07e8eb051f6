"""The report view of a finished training job (its row's "Report" button): the tables of
its report.json (efficiencies, KS overtraining check with the flagged classes
highlighted, variable ranking, correlation heat maps) and the report's plots, in a real
JupyterLab; a run without report.json says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from labserver import TOKEN, Lab, screenshot
from test_lab import job_row, keep_for_readme, open_jobs_panel, toy_spec

pytestmark = pytest.mark.slow
VIEW = ".mlaas-Report"
PLOTS_LOADED = (
    "n => { const imgs = [...document.querySelectorAll('.mlaas-Report-plots img')];"
    " return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }"
)
#: a BDT that learns its training events by heart: the KS check flags it
OVERTRAINED_BDT = {
    "name": "bdt",
    "params": {
        "max_iter": 60,
        "max_leaf_nodes": 63,
        "learning_rate": 0.5,
        "min_samples_leaf": 1,
        "early_stopping": False,
    },
}


def submit(lab: Lab, model: dict[str, Any], training: dict[str, Any], name: str) -> dict[str, Any]:
    spec = toy_spec(lab, model, training)
    return lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": name})


def report_of(lab: Lab, job_id: str) -> dict[str, Any]:
    report: dict[str, Any] = lab.api("GET", f"mlaas/api/jobs/{job_id}/report")
    return report


def open_report(page: Any, job_id: str) -> str:
    row = f'.mlaas-Job[data-job-id="{job_id}"]'
    page.click(f'{row} button[data-action="report"]:enabled')
    view = f'{VIEW}[data-job-id="{job_id}"]:has(.mlaas-Report-tables)'
    page.wait_for_selector(view)
    return view


def values(page: Any, selector: str) -> list[list[str | None]]:
    """Each row of a table as its cells' data-value (None: a text cell)."""
    return page.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.dataset.value ?? null))",
    )


def texts(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )


def check_overtraining(page: Any, view: str, report: dict[str, Any]) -> None:
    table = f"{view} table.mlaas-Report-overtraining"
    ks = report["overtraining"]["classes"]
    rows = texts(page, table)
    assert [row[0] for row in rows] == list(ks)
    for (name, statistic, pvalue, check), row in zip(values(page, table), rows, strict=True):
        assert name is None
        assert check is None
        assert float(statistic) == ks[row[0]]["ks_statistic"]
        assert float(pvalue) == ks[row[0]]["ks_pvalue"]
        assert row[3] == ("overtrained?" if ks[row[0]]["flagged"] else "ok")
        if ks[row[0]]["ks_pvalue"] >= 0.001:
            assert row[2] == f"{ks[row[0]]['ks_pvalue']:.3f}"
    flagged = page.eval_on_selector_all(
        f"{table} tbody tr",
        "rows => rows.filter(r => r.dataset.flagged === 'true').map(r => r.dataset.key)",
    )
    assert flagged == report["overtraining"]["flagged"]
    assert flagged == [name for name, c in ks.items() if c["flagged"]]


def test_report_view_shows_the_report_of_a_finished_job(page: Any, lab: Lab) -> None:
    open_jobs_panel(page)
    mlp = submit(
        lab, {"name": "mlp", "params": {"sizes": [32, 32]}}, {"epochs": 5}, "ui-report-mlp"
    )
    bdt = submit(lab, OVERTRAINED_BDT, {"epochs": 1}, "ui-report-bdt")
    job_row(page, mlp["id"], "succeeded", timeout=600_000)  # two trainings side by side
    report = report_of(lab, mlp["id"])
    assert report["task"] == "binary"

    view = open_report(page, mlp["id"])
    status = page.inner_text(f"{view} .mlaas-Report-status")
    assert "binary classification" in status
    assert f"{report['events']['test']:,} test" in status
    assert "Report: ui-report-mlp" in page.inner_text(
        "#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current"
    )

    # efficiencies: εS at εB = 0.1%, 1%, 10%, 30%, then ROC integral and separation
    eff = report["efficiencies"]
    at = sorted(eff["signal_at_background"].items(), key=lambda item: float(item[0]))
    table = f"{view} table.mlaas-Report-efficiencies"
    assert [row[0] for row in texts(page, table)] == [
        "εS at εB = 0.1%",
        "εS at εB = 1%",
        "εS at εB = 10%",
        "εS at εB = 30%",
        "ROC integral",
        "separation",
    ]
    expected = [e for _, e in at] + [eff["roc_integral"], eff["separation"]]
    assert [float(row[1]) for row in values(page, table)] == expected
    assert texts(page, table)[2][1] == f"{100 * at[2][1]:.1f}%"

    check_overtraining(page, view, report)

    # the ranking: most important variable first, its permutation importance and std
    ranking = sorted(report["ranking"]["variables"], key=lambda v: -v["importance"])
    table = f"{view} table.mlaas-Report-ranking"
    rows = texts(page, table)
    assert [row[0] for row in rows] == [v["name"] for v in ranking]
    assert [row[1] for row in rows] == [v["kind"] for v in ranking]
    assert [[float(row[2]), float(row[3])] for row in values(page, table)] == [
        [v["importance"], v["std"]] for v in ranking
    ]

    # a heat map per class, the matrix as in report.json
    correlations = report["correlations"]
    for name, matrix in correlations["classes"].items():
        heat = f'{view} .mlaas-Report-map[data-class="{name}"] .mlaas-Report-correlation'
        cells = page.eval_on_selector_all(
            f"{heat} tbody tr",
            "rows => rows.map(r => [r.dataset.key,"
            " [...r.querySelectorAll('td')].map(c => c.dataset.value)])",
        )
        assert [key for key, _ in cells] == correlations["variables"]
        assert [[float(v) for v in row] for _, row in cells] == matrix

    # the report's plots, every one loaded
    plots = report["plots"]
    assert "overtraining" in plots
    page.wait_for_function(PLOTS_LOADED, arg=len(plots))
    shown = page.eval_on_selector_all(
        f"{view} .mlaas-Report-plots img", "imgs => imgs.map(i => i.alt)"
    )
    assert sorted(shown) == sorted(plots)
    keep_for_readme(screenshot(page, "report-view"))

    # an overtrained BDT: its flagged classes highlighted, the verdict names them
    job_row(page, bdt["id"], "succeeded", timeout=600_000)
    overtrained = report_of(lab, bdt["id"])
    assert overtrained["overtraining"]["flagged"]
    view = open_report(page, bdt["id"])
    check_overtraining(page, view, overtrained)
    verdict = page.inner_text(f"{view} .mlaas-Report-verdict")
    assert all(name in verdict for name in overtrained["overtraining"]["flagged"])
    highlight = page.eval_on_selector(
        f'{view} .mlaas-Report-overtraining tr[data-flagged="true"] td',
        "td => getComputedStyle(td).backgroundColor",
    )
    assert highlight not in ("rgba(0, 0, 0, 0)", "transparent")
    native = overtrained["ranking"]["native"]
    assert native
    assert [row[0] for row in texts(page, f"{view} table.mlaas-Report-native")] == [
        v["name"] for v in sorted(native, key=lambda v: -v["importance"])
    ]

    # a run without report.json (trained before reports existed): said in the tab
    run_dir = Path(lab.api("GET", f"mlaas/api/jobs/{bdt['id']}")["run_dir"])
    (run_dir / "report.json").unlink()
    page.goto(f"{lab.url}lab?reset&token={TOKEN}")
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    page.wait_for_function("() => !!window.jupyterapp?.commands.hasCommand('mlaas:job-report')")
    page.evaluate(
        "id => window.jupyterapp.commands.execute('mlaas:job-report', {job: id})", bdt["id"]
    )
    error = page.wait_for_selector(f'{VIEW}[data-job-id="{bdt["id"]}"] .mlaas-Report-error')
    assert "trained before reports existed" in error.inner_text()
    assert "(404)" in error.inner_text()
