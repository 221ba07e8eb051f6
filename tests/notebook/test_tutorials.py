"""The tutorial notebooks run top to bottom against a real Jupyter server with the
mlaas extension, with no error output (this is also the end-to-end test of the magics
and widgets in a real kernel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from notebook_server import RunningServer, error_outputs, execute_notebook, jupyter_server

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns("data", "*.root"))
    with jupyter_server(root, tmp_path_factory.mktemp("state")) as running:
        yield running


def run(server: RunningServer, name: str) -> list[dict[str, object]]:
    path = server.root / "notebooks" / name
    executed = execute_notebook(path, server, save_to=path.with_suffix(".out.ipynb"))
    assert error_outputs(executed) == []
    return list(executed.cells)


def outputs_of(cells: list[dict[str, object]], marker: str) -> list[dict[str, object]]:
    cell = next(c for c in cells if marker in str(c["source"]))
    return list(cell.get("outputs", []))  # type: ignore[call-overload]


@pytest.mark.slow
def test_01_explore(server: RunningServer) -> None:
    cells = run(server, "01-explore.ipynb")
    for marker in ("selector = BranchSelector", "editor = CutEditor"):
        shown = outputs_of(cells, marker)
        assert any(WIDGET_VIEW in o.get("data", {}) for o in shown), marker  # type: ignore[attr-defined]
    errors = outputs_of(cells, 'editor.cuts_box.value = "nJet >= 4\\nMET_pt >"')
    assert "cuts line 2" in str(errors)


@pytest.mark.slow
def test_02_train(server: RunningServer) -> None:
    cells = run(server, "02-train.ipynb")
    submitted = outputs_of(cells, "job = %mlaas train train-mlp.yaml")
    assert "submitted to the kernel executor of the Jupyter server" in str(submitted)
    assert any(WIDGET_VIEW in o.get("data", {}) for o in submitted)  # type: ignore[attr-defined]
    jobs = server.get("mlaas/api/jobs")["jobs"]
    states = {j["name"]: j["state"] for j in jobs}
    assert states["tth-mlp"] == "succeeded"
    assert states["tth-bdt"] == "succeeded"
    assert states["tth-deepsets"] == "succeeded"


@pytest.mark.slow
def test_03_serve(server: RunningServer) -> None:
    cells = run(server, "03-serve.ipynb")
    curl = str(outputs_of(cells, "!curl"))
    assert '\\"scores\\"' in curl or '"scores"' in curl
    models = server.get("mlaas/api/models")["models"]
    # every succeeded job is registered under its name (02's models are there too)
    assert "tth-serve" in [m["name"] for m in models]


@pytest.mark.slow
def test_04_scale(server: RunningServer) -> None:
    run(server, "04-scale.ipynb")
    jobs = {j["name"]: j for j in server.get("mlaas/api/jobs")["jobs"]}
    assert jobs["tth-dask"]["executor"] == "dask"
    assert jobs["tth-dask"]["state"] == "succeeded"


@pytest.mark.slow
def test_05_mlaas4hep(server: RunningServer) -> None:
    run(server, "05-mlaas4hep.ipynb")
    jobs = {j["name"]: j for j in server.get("mlaas/api/jobs")["jobs"]}
    assert jobs["mlaas4hep"]["state"] == "succeeded"


@pytest.mark.slow
def test_06_compare_sweep(server: RunningServer) -> None:
    cells = run(server, "06-compare-sweep.ipynb")
    sweep = next(s for s in server.get("mlaas/api/sweeps")["sweeps"] if s["name"] == "tth-sweep")
    assert (sweep["state"], len(sweep["trials"]), sweep["executor"]) == ("succeeded", 8, "kernel")
    assert sweep["counts"]["done"] >= 3
    assert sweep["best"]["model"] == "tth-sweep"
    compared = outputs_of(cells, "comparison = %mlaas compare")
    assert any("image/png" in o.get("data", {}) for o in compared)  # type: ignore[attr-defined]
    assert "model.params.hidden: " in str(outputs_of(cells, "comparison.differences"))
    models = server.get("mlaas/api/models")["models"]
    assert "tth-sweep" in [m["name"] for m in models]
    assert not any(m["name"].startswith("tth-sweep #") for m in models)  # trials stay jobs


@pytest.mark.slow
def test_07_report_folds(server: RunningServer) -> None:
    cells = run(server, "07-report-folds.ipynb")
    jobs = {j["name"]: j for j in server.get("mlaas/api/jobs")["jobs"]}
    assert (jobs["tth-report"]["state"], jobs["tth-2fold"]["state"]) == ("succeeded",) * 2
    shown = next(c for c in cells if c["source"] == "job.report").get("outputs", [])
    page = str([o.get("data", {}).get("text/html", "") for o in shown])  # type: ignore[attr-defined]
    assert "Overtraining" in page
    assert "data:image/png;base64," in page
    said = str(outputs_of(cells, 'for fold in folds.report.data["folds"]'))
    assert "fold 0: test AUC" in said
    assert "out of fold: AUC" in said
    assert "scored by fold 0's model: True" in str(outputs_of(cells, "fold0 = load_bundle"))
    raw = str(outputs_of(cells, "session = onnxruntime.InferenceSession"))
    difference = float(raw.split("largest difference to bundle.predict: ")[1][:7])
    assert difference <= 1e-4


# -- headless: nbconvert in a plain kernel, no Jupyter server anywhere ------------------


@pytest.fixture(scope="module")
def headless(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the notebooks and an environment in which no server can be found
    (empty runtime folder, no MLAAS_SERVER_URL): the client runs the core in process."""
    root = tmp_path_factory.mktemp("headless")
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns("data", "*.root"))
    state = tmp_path_factory.mktemp("headless-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLAAS_", "JUPYTERHUB_"))}
    env.update(
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        MLAAS_JOB_STORE=str(state / "jobs.sqlite"),
        MLAAS_RUNS_DIR=str(state / "runs"),
        MLAAS_CACHE_DIR=str(state / "cache"),
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_ENABLE_ONEDNN_OPTS="0",
    )
    return root / "notebooks", env


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("0*.ipynb")))
def test_tutorial_runs_headless(headless: tuple[Path, dict[str, str]], name: str) -> None:
    folder, env = headless
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=600",
        "--output",
        f"{Path(name).stem}.out",
        name,
    ]
    done = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    executed = nbformat.read(folder / f"{Path(name).stem}.out.ipynb", as_version=4)
    assert error_outputs(executed) == []
    said = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "in this process" in said or name == "01-explore.ipynb"  # the client says where
