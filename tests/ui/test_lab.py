"""The lab extension in a real browser: jobs panel (live updates, filters, logs, plots,
reload), cancel and delete with confirmation, ROOT viewer, histogram, train-on-file notebook."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from labserver import Lab, screenshot

pytestmark = pytest.mark.slow
README_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def keep_for_readme(path: Path) -> None:
    if os.environ.get("MLAAS_UPDATE_SCREENSHOTS"):
        README_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, README_IMAGES / path.name)


def toy_spec(lab: Lab, model: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    # absolute paths: the first data root of the test server is not its root_dir
    toy = lab.root / "toy"
    dataset = {
        "tree": "Events",
        "classes": {
            "background": [str(toy / "background_0.root")],
            "signal": [str(toy / "signal_0.root")],
        },
        "branches": ["MET_pt", "nJet", "Jet_pt"],
        "jagged": {"Jet_*": {"length": 4}},
    }
    return {"dataset": dataset, "model": model, "training": training}


def show_sidebar(page: Any, panel_id: str, content: str) -> None:
    """Click a sidebar tab until ``content`` shows (a tab click toggles its panel, and
    the layout restorer may still be opening panels right after the page loads)."""
    tab = f'li.lm-TabBar-tab[data-id="{panel_id}"]'
    page.wait_for_selector(tab)
    for _ in range(10):
        if page.is_visible(content):
            return
        page.click(tab)
        page.wait_for_timeout(500)
    raise AssertionError(f"the {panel_id} panel did not open")


def open_jobs_panel(page: Any) -> None:
    show_sidebar(page, "mlaas-jobs-panel", "#mlaas-jobs-panel .mlaas-JobsPanel-toolbar")


def run_palette_command(page: Any, label: str) -> None:
    for _ in range(10):
        page.keyboard.press("Control+Shift+C")
        if page.is_visible(".lm-CommandPalette-input"):
            break
        page.wait_for_timeout(500)
    page.fill(".lm-CommandPalette-input", label)
    page.wait_for_selector(f'.lm-CommandPalette-item:has-text("{label}")')
    page.keyboard.press("Enter")


def job_row(page: Any, job_id: str, state: str, timeout: float = 180_000) -> Any:
    selector = f'.mlaas-Job[data-job-id="{job_id}"][data-state="{state}"]'
    return page.wait_for_selector(selector, timeout=timeout)


def test_jobs_panel_follows_a_job_to_success(page: Any, lab: Lab) -> None:
    open_jobs_panel(page)
    spec = toy_spec(lab, {"name": "bdt"}, {"epochs": 1})
    job = lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": "ui-bdt"})
    job_row(page, job["id"], "succeeded")
    row = f'.mlaas-Job[data-job-id="{job["id"]}"]'
    assert "ui-bdt" in page.inner_text(f"{row} .mlaas-Job-name")
    # the best validation AUC comes from the job's epoch events
    page.wait_for_selector(f'{row} .mlaas-Job-auc:has-text("best val AUC")')
    page.wait_for_selector(f'{row} .mlaas-Job-physics:has-text("weighted AUC")')
    fill = page.wait_for_selector(f"{row} .mlaas-Job-progress-fill")
    assert fill.get_attribute("style") == "width: 100%;"
    page.wait_for_selector(f'{row} button[data-action="copy-bundle-path"]:enabled')
    assert page.is_disabled(f'{row} button[data-action="cancel"]')
    keep_for_readme(screenshot(page, "jobs-panel"))

    # filters by state
    page.select_option(".mlaas-JobsPanel-filter", "failed")
    page.wait_for_selector(f'.mlaas-Job[data-job-id="{job["id"]}"]', state="detached")
    page.select_option(".mlaas-JobsPanel-filter", "succeeded")
    job_row(page, job["id"], "succeeded", timeout=10_000)

    # the logs open in the main area
    page.click(f'{row} button[data-action="logs"]')
    logs = page.wait_for_selector(".mlaas-Logs pre:not(:text-is('loading...'))")
    assert logs.inner_text().strip()

    # a page reload shows the same jobs: their state comes from the server
    page.reload()
    page.wait_for_selector('li.lm-TabBar-tab[data-id="mlaas-jobs-panel"]')
    run_palette_command(page, "MLaaS: Show Jobs")
    job_row(page, job["id"], "succeeded", timeout=30_000)
    page.wait_for_selector(f"{row} .mlaas-Job-auc")
    page.click(f'{row} button[data-action="plots"]')
    page.wait_for_selector('.mlaas-Plots img[alt="roc"]')
    page.wait_for_function(
        "() => [...document.querySelectorAll('.mlaas-Plots img')].every(i => i.naturalWidth > 0)"
    )
    screenshot(page, "job-plots")

    # the dark theme: the panel follows the --jp-* variables
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme',"
        " {theme: 'JupyterLab Dark'})"
    )
    try:
        page.wait_for_selector('body[data-jp-theme-name="JupyterLab Dark"]', state="attached")
        page.wait_for_selector("#jupyterlab-splash", state="detached")
        open_jobs_panel(page)
        page.wait_for_function(
            "() => getComputedStyle(document.querySelector('.mlaas-JobsPanel'))"
            ".backgroundColor !== 'rgb(255, 255, 255)'"
        )
        screenshot(page, "jobs-panel-dark")
    finally:
        page.evaluate(
            "() => window.jupyterapp.commands.execute('apputils:change-theme',"
            " {theme: 'JupyterLab Light'})"
        )


def test_training_monitor_widget_replays_a_job(page: Any, lab: Lab) -> None:
    spec = toy_spec(lab, {"name": "mlp"}, {"epochs": 3})
    job = lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": "ui-mlp"})
    source = f"from mlaas_jupyter.notebook import TrainingMonitor\n\nTrainingMonitor({job['id']!r})"
    cell = {"cell_type": "code", "metadata": {}, "source": source, "outputs": []}
    cell["execution_count"] = None
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": kernel, "cells": [cell]}
    content = {"type": "notebook", "format": "json", "content": notebook}
    lab.api("PUT", "api/contents/monitor.ipynb", content)
    page.goto(f"{lab.url}lab/tree/monitor.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
    # the kernel must be connected before the cell is run, or the run is dropped
    page.wait_for_selector(".jp-StatusBar-Widget:has-text('ipykernel) | Idle')")
    page.click(".jp-Notebook .jp-Cell .jp-InputArea-editor")
    page.keyboard.press("Shift+Enter")
    try:
        page.wait_for_selector(".mlaas-monitor .mlaas-state-succeeded", timeout=180_000)
    finally:
        screenshot(page, "training-monitor-last")
    page.wait_for_selector(".mlaas-monitor polyline")
    # losses and metrics on separate charts; the throughput as text
    assert page.locator(".mlaas-monitor svg.mlaas-chart").count() == 2
    page.wait_for_selector('.mlaas-monitor .mlaas-summary:has-text("events/s")')
    page.wait_for_selector('.mlaas-monitor img[alt="roc"]')
    page.wait_for_selector('.mlaas-monitor img[alt="rejection"]')
    page.wait_for_selector('.mlaas-monitor .mlaas-physics:has-text("weighted AUC")')
    keep_for_readme(screenshot(page, "training-monitor"))


def test_cancel_then_delete_from_the_panel_with_confirmation(page: Any, lab: Lab) -> None:
    open_jobs_panel(page)
    spec = toy_spec(lab, {"name": "mlp"}, {"epochs": 500, "early_stopping": None, "batch_size": 64})
    job = lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": "ui-long"})
    row_selector = f'.mlaas-Job[data-job-id="{job["id"]}"][data-state="running"]'
    # live progress from the event bus: the epoch and the events/s of the running job
    page.wait_for_selector(f"{row_selector} .mlaas-Job-epoch", timeout=120_000)
    page.wait_for_selector(f"{row_selector} .mlaas-Job-rate", timeout=60_000)
    screenshot(page, "jobs-running")
    assert page.is_disabled(f'{row_selector} button[data-action="delete"]')
    page.click(f'{row_selector} button[data-action="cancel"]')
    dialog = page.wait_for_selector(".jp-Dialog")
    assert "Cancel ui-long?" in dialog.inner_text()
    page.click('.jp-Dialog button:has-text("Cancel job")')
    job_row(page, job["id"], "cancelled", timeout=60_000)
    assert lab.api("GET", f"mlaas/api/jobs/{job['id']}")["state"] == "cancelled"
    screenshot(page, "jobs-cancelled")

    # a finished job can be deleted (asks first): its row goes, the server forgets it
    row = f'.mlaas-Job[data-job-id="{job["id"]}"]'
    page.click(f'{row} button[data-action="delete"]:enabled')
    dialog = page.wait_for_selector('.jp-Dialog:has-text("Delete job?")')
    assert "Delete ui-long?" in dialog.inner_text()
    page.click('.jp-Dialog button:has-text("Delete job")')
    page.wait_for_selector(row, state="detached")
    with pytest.raises(urllib.error.HTTPError) as gone:
        lab.api("GET", f"mlaas/api/jobs/{job['id']}")
    assert gone.value.code == 404


def test_root_viewer_shows_branches_and_a_histogram(page: Any, lab: Lab) -> None:
    contents_reads: list[str] = []
    page.on(
        "request",
        lambda request: (
            contents_reads.append(request.url)
            if "/api/contents/data/uproot-HZZ.root" in request.url
            else None
        ),
    )
    folder = '.jp-DirListing-item[title^="Name: data"]'
    show_sidebar(page, "filebrowser", folder)
    page.dblclick(folder)
    item = page.wait_for_selector('.jp-DirListing-item:has-text("uproot-HZZ.root")')
    item.dblclick()  # the ROOT viewer is the default for .root files
    branch = page.wait_for_selector('.mlaas-RootView .mlaas-Branch[data-branch="Muon_Px"]')
    assert "jagged" in branch.inner_text()
    header = page.wait_for_selector(".mlaas-RootView-summary").inner_text()
    assert "2,421 entries" in header
    # the viewer asks the mlaas API; the file's bytes never come to the browser
    assert contents_reads
    assert not [url for url in contents_reads if "content=1" in url]

    branch.click()
    page.wait_for_selector(".mlaas-RootView-preview svg.mlaas-Histogram rect")
    bars = page.query_selector_all(".mlaas-RootView-preview rect.mlaas-Histogram-bar")
    assert len(bars) == 40
    assert "events read" in page.inner_text(".mlaas-RootView-note")
    screenshot(page, "root-viewer")
    page.fill(".mlaas-RootView-search", "jet_")
    page.wait_for_selector('.mlaas-Branch[data-branch="Muon_Px"]', state="hidden")
    assert page.is_visible('.mlaas-Branch[data-branch="Jet_Px"]')

    page.click('.jp-Toolbar-item:has-text("Train a model on this file")')
    page.wait_for_selector('.jp-Notebook .jp-Cell:has-text("TrainingStudio")')
    # at the server's root, with the file's path from there (where the kernel starts)
    notebook = lab.root / "train-uproot-HZZ.ipynb"
    assert notebook.exists()
    source = "".join(json.loads(notebook.read_text())["cells"][0]["source"])
    assert source == (
        'from mlaas_jupyter.notebook import TrainingStudio\nTrainingStudio("data/uproot-HZZ.root")'
    )
