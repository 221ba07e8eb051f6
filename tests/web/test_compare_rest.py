"""``GET compare`` and ``GET compare/plot`` on a real server: the comparison of
succeeded jobs, and the 400/404/409 replies naming what is wrong."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from run_folders import write_run_folder
from web_helpers import API, toy_spec, wait_for

from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import Conflict

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def _job(api: Any, name: str, state: str = "succeeded") -> dict[str, Any]:
    status, job = await api("jobs", method="POST", body={"spec": toy_spec(), "name": name})
    assert status == 201, job
    return await wait_for(api, job["id"], (state,))


async def test_compare_succeeded_jobs(api: Any, jp_fetch: Any) -> None:
    first, second = await _job(api, "small"), await _job(api, "wide")
    # the fake executor's run folders, made those of real runs with known values
    write_run_folder(Path(first["run_dir"]), name="small")
    write_run_folder(
        Path(second["run_dir"]),
        name="wide",
        model={"name": "mlp", "params": {"sizes": [64]}},
        dataset={"branches": ["MET_pt", "MET_phi", "nJet", "HT"]},
        metrics={"auc": 0.9},
    )
    ids = f"{second['id']},{first['id']}"
    status, comparison = await api("compare", params={"jobs": ids})
    assert status == 200, comparison
    runs = comparison["runs"]
    assert [(r["id"], r["label"]) for r in runs] == [(second["id"], "wide"), (first["id"], "small")]
    assert [r["metrics"]["auc"] for r in runs] == [0.9, 0.8]
    assert runs[0]["run_dir"] == second["run_dir"]
    assert runs[0]["roc"]["curves"]["signal"]["fpr"] == [0.0, 0.1, 0.5, 1.0]
    assert comparison["metrics"][:2] == ["auc", "auc_weighted"]
    assert comparison["differences"] == [
        {
            "field": "dataset.branches",
            "values": [["MET_pt", "MET_phi", "nJet", "HT"], ["MET_pt", "MET_phi", "nJet"]],
            "text": ["[MET_pt, MET_phi, nJet, HT]", "removed: HT"],
        },
        {"field": "model.params.sizes", "values": [[64], [16]], "text": ["[64]", "[16]"]},
    ]
    # the ids repeated rather than comma-separated
    params = [("jobs", second["id"]), ("jobs", first["id"])]
    status, again = await api("compare", params=params)
    assert status == 200, again
    assert again == comparison

    response = await jp_fetch(*API, "compare", "plot", params={"jobs": ids})
    assert response.headers["Content-Type"] == "image/png"
    assert response.body.startswith(PNG_MAGIC)
    name = f"compare-{second['id']}-{first['id']}.png"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}"'


async def test_compare_errors_name_the_job(api: Any) -> None:
    done = await _job(api, "done")
    write_run_folder(Path(done["run_dir"]), name="done")
    failed = await _job(api, "fail", "failed")
    fake = await _job(api, "fake")  # the fake executor's bundle: a manifest without a spec

    async def reply(query: Any) -> tuple[int, dict[str, Any]]:
        status, body = await api("compare", params=query)
        return status, body

    status, body = await reply({"jobs": done["id"]})
    assert (status, body["field"]) == (400, "jobs")
    assert body["detail"] == "jobs: give at least 2 job ids to compare, got 1"
    status, body = await reply({"jobs": f"{done['id']},{done['id']}"})
    assert (status, body["detail"]) == (400, f"jobs: job {done['id']} is given twice")
    status, body = await reply({"jobs": f"{done['id']},a b"})
    assert status == 400
    assert body["detail"] == "jobs: 'a b' is not a job id (letters, digits, - and _)"
    status, body = await reply({})
    assert (status, body["field"]) == (400, "jobs")
    status, body = await reply({"jobs": f"{done['id']},nope"})
    assert status == 404
    assert "nope" in body["detail"]
    status, body = await reply({"jobs": f"{done['id']},{failed['id']}"})
    assert status == 409
    assert body["detail"] == (
        f"job {failed['id']} is failed: only succeeded training jobs can be compared"
    )
    status, body = await reply({"jobs": f"{fake['id']},{done['id']}"})
    assert status == 409
    assert body["detail"].startswith(f"job {fake['id']}: ")
    assert body["detail"].endswith("not a training bundle: its manifest has no dataset")
    status, body = await api("compare", "plot", params={"jobs": f"{done['id']},{failed['id']}"})
    assert status == 409
    assert json.dumps(body).count(failed["id"]) == 1


async def test_client_over_http(
    api: Any,
    jp_serverapp: Any,
    jp_base_url: str,
    http_server_port: Any,
    tmp_path: Path,
) -> None:
    first, second = await _job(api, "small"), await _job(api, "wide")
    failed = await _job(api, "fail", "failed")
    write_run_folder(Path(first["run_dir"]), name="small")
    write_run_folder(Path(second["run_dir"]), name="wide", training={"epochs": 5})
    local = write_run_folder(tmp_path / "local", name="local", model={"name": "bdt"})
    url = f"http://127.0.0.1:{http_server_port[1]}{jp_base_url}"
    # blocking calls in a thread: the server answers on this test's event loop
    client = await asyncio.to_thread(Client, url, jp_serverapp.identity_provider.token)
    assert client.transport == "http"
    both = await asyncio.to_thread(client.compare, first["id"], second["id"])
    assert both.labels == ["small", "wide"]
    assert both.differences == [{"field": "training.epochs", "values": [2, 5], "text": ["2", "5"]}]
    mixed = await asyncio.to_thread(client.compare, local, second["id"])  # one job: artefacts
    assert mixed.labels == ["local", "wide"]
    assert mixed.runs[1]["roc"] == both.runs[1]["roc"]
    assert [d["field"] for d in mixed.differences] == [
        "model.name",
        "model.params.sizes",
        "training.epochs",
    ]
    with pytest.raises(Conflict, match=rf"^job {failed['id']} is failed"):
        await asyncio.to_thread(client.compare, local, failed["id"])
