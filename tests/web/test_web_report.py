"""``GET jobs/{id}/report`` and ``GET jobs/{id}/report.html`` on a real server: the
report of a succeeded job, 409 while it runs, 404 for an unknown job and for a run
without report.json (the fake executor's runs write none; the tests write one)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from report_examples import binary_report, write_report_folder
from web_helpers import API, toy_spec, wait_for

from mlaas_jupyter.client import Client, Job
from mlaas_jupyter.errors import Conflict, NotFound


async def _job(api: Any, name: str, state: str = "succeeded") -> dict[str, Any]:
    status, job = await api("jobs", method="POST", body={"spec": toy_spec(), "name": name})
    assert status == 201, job
    return await wait_for(api, job["id"], (state,))


async def test_report_of_a_succeeded_job(api: Any, jp_fetch: Any) -> None:
    job = await _job(api, "done")
    folder = write_report_folder(Path(job["run_dir"]))
    status, report = await api("jobs", job["id"], "report")
    assert status == 200, report
    assert report == json.loads((folder / "report.json").read_text())  # as written
    assert report["overtraining"]["flagged"] == ["signal"]

    response = await jp_fetch(*API, "jobs", job["id"], "report.html")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    name = f"report-{job['id']}.html"
    assert response.headers["Content-Disposition"] == f'inline; filename="{name}"'
    page = response.body.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<h3>Overtraining check" in page
    assert "<tr class=flagged><td class=name>signal</td>" in page
    images = [base64.b64decode(i) for i in re.findall(r"base64,([^']+)'", page)]
    assert (folder / "plots/report_overtraining.png").read_bytes() in images

    # the plots as artefacts too (the jobs panel shows them from there)
    status, listing = await api("jobs", job["id"], "artefacts")
    paths = {entry["path"] for entry in listing["artefacts"]}
    assert {"report.json", "plots/report_overtraining.png"} <= paths


async def test_report_errors(api: Any) -> None:
    status, body = await api("jobs", "nosuchjob", "report")
    assert status == 404
    assert "nosuchjob" in body["detail"]
    status, body = await api("jobs", "nosuchjob", "report.html")
    assert status == 404

    running = await _job(api, "block", "running")
    status, body = await api("jobs", running["id"], "report")
    assert status == 409
    assert body["detail"] == (f"job {running['id']} is running: only succeeded jobs have a report")
    status, body = await api("jobs", running["id"], "report.html")
    assert status == 409
    status, _ = await api("jobs", running["id"], "cancel", method="POST", body={})
    assert status == 200

    old = await _job(api, "old")  # the fake executor writes no report: an old run
    for route in ("report", "report.html"):
        status, body = await api("jobs", old["id"], route)
        assert status == 404
        assert body["detail"] == (
            f"the run of job {old['id']} has no report.json (trained before reports existed)"
        )

    failed = await _job(api, "fail", "failed")
    status, body = await api("jobs", failed["id"], "report")
    assert status == 409
    assert body["detail"] == f"job {failed['id']} is failed: only succeeded jobs have a report"


async def test_a_broken_report_is_a_conflict_naming_the_file(api: Any) -> None:
    job = await _job(api, "broken")
    report = binary_report()
    report["report_format"] = 7
    write_report_folder(Path(job["run_dir"]), report)
    status, body = await api("jobs", job["id"], "report")
    assert status == 409
    assert body["detail"].startswith(f"job {job['id']}: {job['run_dir']}/report.json: ")
    assert "report_format 7 is not supported" in body["detail"]


async def test_client_over_http(
    api: Any, jp_serverapp: Any, jp_base_url: str, http_server_port: Any
) -> None:
    done = await _job(api, "done")
    folder = write_report_folder(Path(done["run_dir"]))
    old = await _job(api, "old")
    failed = await _job(api, "fail", "failed")
    url = f"http://127.0.0.1:{http_server_port[1]}{jp_base_url}"
    # blocking calls in a thread: the server answers on this test's event loop
    client = await asyncio.to_thread(Client, url, jp_serverapp.identity_provider.token)
    assert client.transport == "http"
    shown = await asyncio.to_thread(client.report, done["id"])
    assert shown.data == json.loads((folder / "report.json").read_text())
    assert shown.job_id == done["id"]
    assert shown.flagged == ["signal"]
    page = await asyncio.to_thread(shown.html)  # GET jobs/{id}/report.html
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == 2
    assert await asyncio.to_thread(shown._repr_html_) == page
    again = await asyncio.to_thread(lambda: Job(done["id"], client).report)
    assert again.data == shown.data
    with pytest.raises(NotFound, match=r"has no report\.json \(trained before reports existed\)"):
        await asyncio.to_thread(client.report, old["id"])
    with pytest.raises(Conflict, match=rf"^job {failed['id']} is failed"):
        await asyncio.to_thread(client.report, failed["id"])
