"""Schemathesis against a real ``mlaas serve``, from the generated OpenAPI document.

Every phase (examples, coverage, fuzzing, stateful) with every check, authenticated
with the server's token: no reply is a server error, and every reply is what the
document says (a listed status, its media type and schema, 405 with ``Allow``,
401 without a token), schema-valid requests are accepted and schema-violating ones
refused. The server holds the example dataset under its data root, one registered
model and jobs in each state; schemathesis draws path and query values from these
half of the time (its dictionaries), so that the calls get past their 404s. Jobs run
on the tests' quick stand-in executor (no training in a fuzzing run).

``MLAAS_FUZZ_EXAMPLES`` sets the examples per operation (CI: a few minutes), and
``MLAAS_FUZZ_SEED`` the seed (default: a fixed one, so a failure reproduces)::

    MLAAS_FUZZ_EXAMPLES=300 MLAAS_FUZZ_SEED=$RANDOM pytest tests/web/test_schemathesis.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standalone_helpers import Server, serve
from toy_bundles import write_example_bundle
from web_helpers import toy_spec

from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.web.openapi import DOCUMENT_PATH
from mlaas_jupyter.web.routes import API_PREFIX, ROUTES

HERE = Path(__file__).resolve().parent
#: schemathesis' settings (the checks' expected statuses); the test adds what exists
CONFIG = HERE / "schemathesis.toml"
EXAMPLES = int(os.environ.get("MLAAS_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("MLAAS_FUZZ_SEED", "19"))
PHASES = "examples,coverage,fuzzing,stateful"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``mlaas serve`` whose local executor is the tests' FakeExecutor (web_helpers,
    importable by the server through PYTHONPATH), with the example dataset and a
    training spec file in ``toy/`` and the model ``toy-example`` registered."""
    home = tmp_path_factory.mktemp("fuzz")
    bundle = write_example_bundle(home / "bundle")
    executor = {"local_executor_class": "web_helpers.FakeExecutor", "default_executor": "local"}
    with pytest.MonkeyPatch.context() as patch:
        paths = [str(HERE), os.environ.get("PYTHONPATH", "")]
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
        with serve(home, f"--register={bundle}", config={"Mlaas": executor}) as server:
            write_example_dataset(server.root / "toy", events_per_file=300, files_per_class=1)
            # a training spec file: POST jobs with it (spec_path) makes a job
            (server.root / "toy" / "train.yaml").write_text(json.dumps(toy_spec()))
            yield server


def _jobs_in_each_state(server: Server) -> list[str]:
    """Jobs that succeeded (2), failed, run until cancelled, were cancelled: their ids."""
    ids = {}
    for name in ("one", "two", "fail", "block", "stopped"):
        status, _, job = server.call("POST", "jobs", {"spec": toy_spec(), "name": name})
        assert status == 201, job
        ids[name] = job["id"]
    assert server.call("POST", f"jobs/{ids['stopped']}/cancel")[0] in (200, 409)
    wanted = {"one": "succeeded", "two": "succeeded", "fail": "failed", "block": "running"}
    deadline = time.monotonic() + 60
    while any(server.call("GET", f"jobs/{ids[n]}")[2]["state"] != s for n, s in wanted.items()):
        assert time.monotonic() < deadline, "the jobs did not reach their states"
        time.sleep(0.2)
    return list(ids.values())


def _config(server: Server, folder: Path) -> Path:
    """The settings with dictionaries of what exists on the server (job ids, the
    model, data files and folders), bound to the parameters of those names."""
    existing: dict[str, list[Any]] = {
        "job_ids": _jobs_in_each_state(server),
        "models": ["toy-example"],
        "paths": [
            "toy",
            "toy/signal_0.root",
            "toy/background_0.root",
            "toy/dataset.yaml",
            "toy/train.yaml",
        ],
        "trees": ["Events"],
        "versions": [1],
    }
    bound = {
        "path.job_id": "job_ids",
        "path.name": "models",
        "query.path": "paths",
        "query.tree": "trees",
        "query.version": "versions",
        "body.spec_path": "paths",
        "body.path": "paths",
    }
    lines = [CONFIG.read_text(), "[dictionaries]"]
    lines += [f"{name} = {{ values = {json.dumps(values)} }}" for name, values in existing.items()]
    lines.append("[parameters]")
    lines += [
        f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}' for key, name in bound.items()
    ]
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_schemathesis_finds_no_server_error_and_no_disagreement(
    server: Server, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(_config(server, tmp_path)),
        "run",
        str(DOCUMENT_PATH),
        "--url",
        server.url + API_PREFIX.rstrip("/"),
        "--header",
        f"Authorization: token {server.token}",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--report",
        "junit",
        "--report-junit-path",
        str(tmp_path / "junit.xml"),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1])])}
    # in tmp_path: schemathesis keeps its caches (.hypothesis, .schemathesis) where it runs
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1800
    )
    said = done.stdout + done.stderr
    print(said[-6000:])  # the summary, in the test's output
    assert done.returncode == 0, said[-20000:]
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot()
    cases = suite.findall(".//testcase")
    operations = {case.get("name") for case in cases}
    assert len(operations) >= len(ROUTES), operations  # every documented operation was tested
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    assert failed == [], failed
    assert "Traceback" not in server.log.read_text()


def test_what_fuzzing_found_is_a_clear_4xx(server: Server) -> None:
    """The server errors of issue 19's fuzzing run, each now a 400 naming the field,
    and the replies every route gives to a wrong method or no token."""
    cases: list[tuple[str, str, Any, str, str]] = [
        ("GET", "jobs?limit=168428450629193765486592", None, "limit", "must be <="),
        ("POST", "jobs", b'{"spec_path": "\xff\xfe"}', "body", "not valid JSON (UTF-8)"),
        ("POST", "histograms", b"\xff\xfe", "body", "not valid JSON (UTF-8)"),
        ("POST", "jobs", {"spec_path": "toy/signal_0.root"}, "", "not a YAML/JSON text file"),
        ("POST", "models/toy-example/predict_file", {"path": "x", "out": ""}, "out", "at least"),
        (
            "POST",
            "models/toy-example/predict_file",
            {"path": "toy/signal_0.root", "out": "toy"},
            "out",
            "'toy' is a folder",
        ),
    ]
    for method, path, body, field, message in cases:
        status, _, reply = server.call(method, path, body)
        assert status == 400, (path, reply)
        assert reply.get("field", "") == field or field == "", (path, reply)
        assert message in reply["detail"], (path, reply)
    # the spec file's name is the field of its error
    reply = server.call("POST", "jobs", {"spec_path": "toy/signal_0.root"})[2]
    assert reply["field"].endswith("toy/signal_0.root"), reply
    for route in ROUTES:
        path = route.path.format(job_id="x1", sweep_id="x1", name="x1", path="x1")
        status, headers, reply = server.call("PATCH", path, b"{}")
        allowed = ", ".join(r.method for r in ROUTES if r.path == route.path)
        assert (status, _lower(headers).get("allow")) == (405, allowed), (route.name, reply)
        status, headers, reply = server.call(route.method, path, b"{}", token=None)
        assert (status, reply["error"]) == (401, "Unauthorized"), (route.name, reply)
        assert _lower(headers)["www-authenticate"] == 'token realm="mlaas"', route.name


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
