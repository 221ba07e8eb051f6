"""The lab extension in a real browser: jobs panel, cancel, ROOT viewer, histogram."""

from __future__ import annotations

import os
import shutil
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


def toy_spec(model: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    dataset = {
        "tree": "Events",
        "classes": {"background": ["toy/background_0.root"], "signal": ["toy/signal_0.root"]},
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
    spec = toy_spec({"name": "bdt"}, {"epochs": 1})
    job = lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": "ui-bdt"})
    row = job_row(page, job["id"], "succeeded")
    assert "ui-bdt" in row.inner_text()
    assert "AUC" in row.inner_text()
    assert row.query_selector(".mlaas-Job-progress > div").get_attribute("style") == "width: 100%;"
    keep_for_readme(screenshot(page, "jobs-panel"))

    # a page reload shows the same jobs: their state comes from the server
    page.reload()
    page.wait_for_selector('li.lm-TabBar-tab[data-id="mlaas-jobs-panel"]')
    run_palette_command(page, "MLaaS: Show Jobs")
    job_row(page, job["id"], "succeeded", timeout=30_000)

    job_row(page, job["id"], "succeeded").query_selector('button:has-text("Plots")').click()
    page.wait_for_selector('.mlaas-Plots img[alt="roc"]')
    screenshot(page, "job-plots")


def test_training_monitor_widget_replays_a_job(page: Any, lab: Lab) -> None:
    spec = toy_spec({"name": "mlp"}, {"epochs": 3})
    job = lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": "ui-mlp"})
    source = f"from mlaas_jupyter.widgets import TrainingMonitor\n\nTrainingMonitor({job['id']!r})"
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
    page.wait_for_selector('.mlaas-monitor img[alt="roc"]')
    keep_for_readme(screenshot(page, "training-monitor"))


def test_cancel_from_the_panel_with_confirmation(page: Any, lab: Lab) -> None:
    open_jobs_panel(page)
    spec = toy_spec({"name": "mlp"}, {"epochs": 500, "early_stopping": None, "batch_size": 64})
    job = lab.api("POST", "mlaas/api/jobs", {"spec": spec, "executor": "local", "name": "ui-long"})
    row = job_row(page, job["id"], "running", timeout=120_000)
    row.query_selector('button:has-text("Cancel")').click()
    dialog = page.wait_for_selector(".jp-Dialog")
    assert "Cancel ui-long?" in dialog.inner_text()
    page.click('.jp-Dialog button:has-text("Cancel job")')
    job_row(page, job["id"], "cancelled", timeout=60_000)
    assert lab.api("GET", f"mlaas/api/jobs/{job['id']}")["state"] == "cancelled"
    screenshot(page, "jobs-cancelled")


def test_root_viewer_shows_branches_and_a_histogram(page: Any, lab: Lab) -> None:
    listing = '.jp-DirListing-item:has-text("uproot-HZZ.root")'
    show_sidebar(page, "filebrowser", listing)
    item = page.wait_for_selector(listing)
    item.dblclick()
    branch = page.wait_for_selector('.mlaas-RootView .mlaas-Branch[data-branch="Muon_Px"]')
    assert "jagged" in branch.inner_text()
    header = page.wait_for_selector(".mlaas-RootView-header").inner_text()
    assert "2,421 entries" in header
    branch.click()
    page.wait_for_selector(".mlaas-RootView-preview svg.mlaas-Histogram rect")
    bars = page.query_selector_all(".mlaas-RootView-preview rect.mlaas-Histogram-bar")
    assert len(bars) == 40
    screenshot(page, "root-viewer")

    page.click('.jp-Toolbar-item:has-text("Train a model on this file")')
    page.wait_for_selector('.jp-Notebook .jp-Cell:has-text("TrainingStudio")')
    notebook = lab.root / "train-uproot-HZZ.ipynb"
    assert notebook.exists()
    assert 'TrainingStudio(\\"uproot-HZZ.root\\")' in notebook.read_text()
