"""JupyterLab with the mlaas extensions on loopback, and Debian's Chromium driven by
Playwright (``playwright install`` cannot download browsers here: the system one is
launched). The screenshots are kept under ``tests/ui/artefacts/`` (or
``$MLAAS_UI_ARTEFACTS``); ``MLAAS_UPDATE_SCREENSHOTS=1`` also copies the README ones to
``docs/images/``."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import skhep_testdata
from labserver import CHROMIUM, CHROMIUM_ARGS, TOKEN, Lab
from notebook_server import free_port, server_process

from mlaas_jupyter.examples import write_example_dataset


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab-root")
    state = tmp_path_factory.mktemp("lab-state")
    # a real ROOT file in a folder, to check the paths the lab sends (relative to the
    # server's root) against data roots whose first one is not the root: the extension
    # must turn them into paths the API resolves right
    (root / "data").mkdir()
    shutil.copy(skhep_testdata.data_path("uproot-HZZ.root"), root / "data" / "uproot-HZZ.root")
    elsewhere = tmp_path_factory.mktemp("other-data-root")
    write_example_dataset(root / "toy", events_per_file=2000, files_per_class=1)
    settings = state / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no "get notified about Jupyter news?" toast over the screenshots
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port = free_port()
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "MLAAS_CACHE_DIR": str(state / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={TOKEN}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: commands from tests
        f"--Mlaas.data_roots={elsewhere}",
        f"--Mlaas.data_roots={root}",
        f"--Mlaas.job_store={state / 'jobs.sqlite'}",
        f"--Mlaas.runs_dir={state / 'runs'}",
        f"--Mlaas.models_dir={state / 'models'}",
    ]
    running = Lab(f"http://127.0.0.1:{port}/", root)
    ready = lambda: running.api("GET", "mlaas/api/jobs?limit=1")  # noqa: E731
    with server_process(command, env, state / "lab.log", ready, timeout=90):
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (scripts/test does it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, lab: Lab) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(60_000)
    opened.goto(f"{lab.url}lab?reset&token={TOKEN}")  # a fresh layout for each test
    opened.wait_for_selector("#jp-main-dock-panel", state="attached")
    yield opened
    context.close()
