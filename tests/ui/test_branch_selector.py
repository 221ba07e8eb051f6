"""The BranchSelector widget at NanoAOD size (1,500 branches) in a real notebook: the
filter box, a collection opened and ticked as a whole, the kernel's view of it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from labserver import Lab, screenshot
from nanoaod_like import COLLECTIONS, FLAT, write_nanoaod_like

pytestmark = pytest.mark.slow


def test_branch_selector_filters_groups_and_ticks_a_collection(page: Any, lab: Lab) -> None:
    write_nanoaod_like(lab.root / "nano.root")
    sources = [
        "from mlaas_jupyter.notebook import BranchSelector\n\n"
        'selector = BranchSelector("nano.root")\nselector',
        "import json\n"
        'print(json.dumps({k: getattr(selector, k) for k in ("query", "selected", "width")}))',
    ]
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": kernel, "cells": cells}
    lab.api(
        "PUT",
        "api/contents/nano.ipynb",
        {"type": "notebook", "format": "json", "content": notebook},
    )
    page.goto(f"{lab.url}lab/tree/nano.ipynb")
    first = ".jp-Notebook .jp-Cell:nth-child(1)"
    page.wait_for_selector(f"{first} .jp-InputArea-editor")
    page.wait_for_selector(".jp-StatusBar-Widget:has-text('ipykernel) | Idle')")
    page.click(f"{first} .jp-InputArea-editor")
    page.keyboard.press("Shift+Enter")

    widget = ".mlaas-branches"
    counts = page.wait_for_selector(f"{widget} .mlaas-branches-counts:has-text('1,500 branches')")
    assert "1,000 flat · 500 jagged" in counts.inner_text()
    # collapsed: one header per collection, no branch row in the page
    groups = len(COLLECTIONS) + len(FLAT) + 1  # + run, event... in "(other)"
    assert page.locator(f"{widget} .mlaas-group").count() == groups
    assert page.locator(f"{widget} tr[data-branch]").count() == 0

    page.fill(f"{widget} .mlaas-branches-filter", "Jet_*")
    jet = f'{widget} .mlaas-group[data-group="Jet"]'
    page.wait_for_function(
        "() => document.querySelectorAll('.mlaas-branches .mlaas-group').length === 1"
    )
    assert "40 of 41: 0 flat · 40 jagged" in page.inner_text(f"{jet} .mlaas-group-counts")
    assert "40 shown in 1" in counts.inner_text()
    page.click(f"{jet} .mlaas-group-toggle")
    page.wait_for_selector(f'{jet} tr[data-branch="Jet_f39"]')
    assert page.locator(f"{widget} tr[data-branch]").count() == 40

    page.check(f"{jet} .mlaas-group-check")
    page.wait_for_selector(f"{widget} .mlaas-branches-summary:has-text('40 features selected')")
    assert "input width 328" in page.inner_text(f"{widget} .mlaas-branches-summary")
    assert page.is_checked(f'{jet} tr[data-branch="Jet_f7"] input')
    assert "40 selected" in page.inner_text(f"{jet} .mlaas-group-counts")
    screenshot(page, "branch-selector-nanoaod")

    second = ".jp-Notebook .jp-Cell:nth-child(2)"
    page.click(f"{second} .jp-InputArea-editor")
    page.keyboard.press("Shift+Enter")
    output = page.wait_for_selector(f"{second} .jp-OutputArea-output:has-text('selected')")
    state = json.loads(output.inner_text())
    assert state == {
        "query": "Jet_*",
        "selected": [f"Jet_f{i}" for i in range(40)],
        "width": 40 * 8 + 8,
    }
