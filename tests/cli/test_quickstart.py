"""The README's first command starts JupyterLab with both extensions on tutorial 01."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from notebook_server import free_port, server_process

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "quickstart-test-token"


def _get(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.mark.slow
def test_run_script_opens_jupyterlab_with_extensions(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "MLAAS_JOB_STORE": str(tmp_path / "jobs.sqlite"),
        "MLAAS_RUNS_DIR": str(tmp_path / "runs"),
    }
    command = [
        "bash",
        str(ROOT / "scripts" / "run"),
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={TOKEN}",
    ]
    base = f"http://127.0.0.1:{port}/"
    with server_process(command, env, tmp_path / "lab.log", lambda: _get(base + "api/status"), 180):
        status, page = _get(base + "lab/tree/notebooks/01-explore.ipynb")
        assert status == 200
        assert "jupyter-config-data" in page
        _, jobs = _get(base + "mlaas/api/jobs")
        assert "jobs" in json.loads(jobs)
        _, contents = _get(base + "api/contents/notebooks/01-explore.ipynb?content=0")
        assert json.loads(contents)["type"] == "notebook"
        config = json.loads(
            page.split('id="jupyter-config-data" type="application/json">', 1)[1].split(
                "</script>", 1
            )[0]
        )
        federated = {entry["name"] for entry in config["federated_extensions"]}
        assert "mlaas-jupyter" in federated
        assert "mlaas-jupyter" not in config.get("disabledExtensions", [])
