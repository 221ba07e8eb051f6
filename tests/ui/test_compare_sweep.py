"""The jobs panel's comparison tab (jobs ticked, then "Compare") and its sweep rows (a
sweep's trials under one row with its progress, "Compare best 5", cancel), in a real
JupyterLab."""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest
from labserver import Lab, screenshot
from test_lab import job_row, keep_for_readme, open_jobs_panel, toy_spec

pytestmark = pytest.mark.slow
MAIN_TAB = "#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current"
FIGURE_LOADED = (
    "() => { const img = document.querySelector('.mlaas-Compare-figure img');"
    " return !!img && img.complete && img.naturalWidth > 0; }"
)


def tiny_mlp(lab: Lab, sizes: list[int], name: str) -> dict[str, Any]:
    spec = toy_spec(lab, {"name": "mlp", "params": {"sizes": sizes}}, {"epochs": 1})
    return lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": name})


def require_sweeps(lab: Lab) -> None:
    try:
        lab.api("GET", "mlaas/api/sweeps")
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise
        pytest.skip("the server has no sweep routes (GET mlaas/api/sweeps answered 404)")


def test_comparison_tab_of_two_ticked_jobs(page: Any, lab: Lab) -> None:
    open_jobs_panel(page)
    jobs = [tiny_mlp(lab, [16], "ui-narrow"), tiny_mlp(lab, [32], "ui-wide")]
    compare = '.mlaas-JobsPanel-compare[data-action="compare-selected"]'
    for job in jobs:
        job_row(page, job["id"], "succeeded")
    assert not page.is_visible(compare)  # the selection bar shows once a job is ticked
    boxes = [f'.mlaas-Job[data-job-id="{job["id"]}"] input.mlaas-Job-select' for job in jobs]
    page.check(boxes[0])
    assert page.inner_text(".mlaas-JobsPanel-selected") == "1 job selected"
    assert page.is_disabled(compare)
    page.check(boxes[1])
    assert page.inner_text(".mlaas-JobsPanel-selected") == "2 jobs selected"
    page.click(f"{compare}:enabled")

    page.wait_for_function(FIGURE_LOADED)
    # a column per job, a row per metric; the specs differ in the layer sizes only
    for job in jobs:
        page.wait_for_selector(f'.mlaas-Compare-metrics thead th[data-job-id="{job["id"]}"]')
    auc = page.wait_for_selector('.mlaas-Compare-metrics tbody tr[data-key="auc"]')
    assert len(auc.query_selector_all("td")) == 3
    differences = page.query_selector_all(".mlaas-Compare-differences tbody tr")
    assert [row.inner_text().split("\t") for row in differences] == [
        ["model.params.sizes", "[16]", "[32]"]
    ]
    tab = page.inner_text(MAIN_TAB)
    assert "ui-narrow" in tab
    assert "ui-wide" in tab
    keep_for_readme(screenshot(page, "comparison-tab"))

    # a job that cannot be compared: the server's reason, readable, in the tab
    page.evaluate(
        "ids => window.jupyterapp.commands.execute('mlaas:compare-jobs', {jobs: ids})",
        [jobs[0]["id"], "no-such-job"],
    )
    error = page.wait_for_selector(".mlaas-Compare .mlaas-Compare-error")
    assert "Cannot compare the jobs" in error.inner_text()
    assert "no-such-job" in error.inner_text()
    assert "(404)" in error.inner_text()


def test_sweep_row_groups_its_trials_and_compares_the_best(page: Any, lab: Lab) -> None:
    require_sweeps(lab)
    open_jobs_panel(page)
    spec = toy_spec(lab, {"name": "mlp", "params": {"sizes": [8]}}, {"epochs": 1})
    request = {
        "spec": spec,
        "params": {"training.learning_rate": "0.001,0.003,0.01"},
        "sampler": "grid",
        "parallel": 1,
        "prune": False,
        "executor": "local",
        "name": "ui-sweep",
    }
    sweep = lab.api("POST", "mlaas/api/sweeps", request)
    group = f'.mlaas-Sweep[data-sweep-id="{sweep["id"]}"]'
    page.wait_for_selector(f'{group}[data-state="succeeded"]', timeout=300_000)
    counts = page.inner_text(f"{group} .mlaas-Sweep-counts")
    assert counts == "3 done, 0 running, 0 pruned, 0 failed of 3"
    assert "best val_auc" in page.inner_text(f"{group} .mlaas-Sweep-best")
    assert page.is_disabled(f'{group} button[data-action="cancel-sweep"]')
    trials = [t["job_id"] for t in lab.api("GET", f"mlaas/api/sweeps/{sweep['id']}")["trials"]]
    assert len(trials) == 3
    # one row for the sweep: its trials are not rows of their own
    for job_id in trials:
        assert not page.query_selector(f'.mlaas-JobsPanel-list > [data-job-id="{job_id}"]')
        assert not page.is_visible(f'.mlaas-Job[data-job-id="{job_id}"]')
    assert len(page.query_selector_all(group)) == 1

    page.click(f'{group} button[data-action="toggle-trials"]')
    for job_id in trials:
        trial = f'{group} .mlaas-Sweep-trials .mlaas-Job[data-job-id="{job_id}"]'
        page.wait_for_selector(f'{trial} .mlaas-Sweep-params:has-text("learning_rate=0.0")')

    page.click(f'{group} button[data-action="compare-best"]:enabled')
    page.wait_for_function(FIGURE_LOADED)
    columns = page.query_selector_all(".mlaas-Compare-metrics thead th[data-job-id]")
    assert sorted(th.get_attribute("data-job-id") for th in columns) == sorted(trials)
    page.wait_for_selector('.mlaas-Compare-differences tbody tr[data-key="training.learning_rate"]')
    assert "best 3 of ui-sweep" in page.inner_text(MAIN_TAB)
    keep_for_readme(screenshot(page, "sweep-row"))  # the row, its trials, their comparison


def test_sweep_row_cancels_the_sweep_with_confirmation(page: Any, lab: Lab) -> None:
    require_sweeps(lab)
    open_jobs_panel(page)
    training = {"epochs": 500, "early_stopping": None, "batch_size": 64}
    spec = toy_spec(lab, {"name": "mlp", "params": {"sizes": [8]}}, training)
    request = {
        "spec": spec,
        "params": {"training.learning_rate": "0.001,0.01"},
        "sampler": "grid",
        "prune": False,
        "executor": "local",
        "name": "ui-sweep-long",
        "register": False,
    }
    sweep = lab.api("POST", "mlaas/api/sweeps", request)
    group = f'.mlaas-Sweep[data-sweep-id="{sweep["id"]}"][data-state="running"]'
    page.wait_for_selector(f'{group} .mlaas-Sweep-counts:has-text("1 running")', timeout=120_000)
    page.click(f'{group} button[data-action="cancel-sweep"]:enabled')
    dialog = page.wait_for_selector('.jp-Dialog:has-text("Cancel sweep?")')
    assert "Cancel ui-sweep-long and its running trials?" in dialog.inner_text()
    page.click('.jp-Dialog button:has-text("Cancel sweep")')
    cancelled = f'.mlaas-Sweep[data-sweep-id="{sweep["id"]}"][data-state="cancelled"]'
    page.wait_for_selector(cancelled, timeout=60_000)
    assert page.is_disabled(f'{cancelled} button[data-action="cancel-sweep"]')
    record = lab.api("GET", f"mlaas/api/sweeps/{sweep['id']}")
    assert record["state"] == "cancelled"
    assert [t["state"] for t in record["trials"] if t["state"] in ("queued", "running")] == []
    assert "cancelled" in {t["state"] for t in record["trials"]}
