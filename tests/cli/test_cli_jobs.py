"""``mlaas jobs`` and ``mlaas models``: the CLI through the client and the core."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lost_jobs import leave_running

from mlaas_jupyter.cli import main
from mlaas_jupyter.client import Client
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.specs.training import TrainSpec

SPEC = """dataset:
  tree: Events
  classes: {background: [data/background_*.root], signal: [data/signal_*.root]}
  branches: [MET_pt, nJet]
model: {name: bdt}
training: {epochs: 1}
"""


@pytest.fixture
def workspace(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_example_dataset(isolated / "data", events_per_file=2000, files_per_class=1)
    (isolated / "train.yaml").write_text(SPEC)
    monkeypatch.chdir(isolated)
    return isolated


def test_submit_follow_and_use_a_model(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        assert main(["jobs", "submit", "train.yaml", "--name", "cli-bdt", "--wait"]) == 0
        said = capsys.readouterr().out
        assert "local executor, in this process (job store" in said
        assert ": succeeded  loss" in said
        assert main(["jobs", "list", "--json"]) == 0
        (job,) = json.loads(capsys.readouterr().out)
        assert (job["name"], job["state"], job["kind"]) == ("cli-bdt", "succeeded", "train")
        assert main(["jobs", "events", job["id"]]) == 0
        types = [json.loads(line)["type"] for line in capsys.readouterr().out.splitlines()]
        assert types[-2:] == ["done", "state"]
        assert main(["models", "list"]) == 0
        models = json.loads(capsys.readouterr().out)["models"]
        assert [(m["name"], m["version"]) for m in models] == [("cli-bdt", 1)]
        (workspace / "rows.json").write_text(json.dumps({"rows": [{"MET_pt": 50.0, "nJet": 3}]}))
        assert main(["models", "predict", "cli-bdt", "rows.json"]) == 0
        reply = json.loads(capsys.readouterr().out)
        assert reply["model"] == "cli-bdt"
        assert 0.0 <= reply["scores"][0] <= 1.0
        assert main(["jobs", "delete", job["id"]]) == 0
        assert json.loads(capsys.readouterr().out)["deleted"] is True
        assert main(["jobs", "show", job["id"]]) == 2
        assert f"no job with id '{job['id']}'" in capsys.readouterr().err
    finally:
        Client(transport="in-process").close()


def test_errors_are_one_line(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        (workspace / "bad.yaml").write_text(SPEC.replace("bdt", "cnn"))
        assert main(["jobs", "submit", "bad.yaml"]) == 2
        assert "model.name" in capsys.readouterr().err
        (workspace / "rows.json").write_text("[1, 2]")
        assert main(["models", "predict", "nope", "rows.json"]) == 2
        assert "expected {" in capsys.readouterr().err
    finally:
        Client(transport="in-process").close()


def test_resume_a_lost_job(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = TrainSpec.from_file(workspace / "train.yaml").to_dict()
    job_id = leave_running(workspace / "jobs.sqlite", spec, "cli-lost", workspace / "runs")
    try:
        assert main(["jobs", "resume", job_id, "--wait"]) == 0
        said = capsys.readouterr().out
        assert f"job {job_id} (cli-lost): queued again, in this process" in said
        assert f"job {job_id}: succeeded" in said
        assert main(["jobs", "events", job_id]) == 0
        types = [json.loads(line)["type"] for line in capsys.readouterr().out.splitlines()]
        assert types[:5] == ["state", "state", "start", "state", "resumed"]  # lost, resumed
        assert main(["jobs", "resume", job_id]) == 2
        err = capsys.readouterr().err
        assert f"job {job_id} is succeeded; only a lost job can be resumed" in err
    finally:
        Client(transport="in-process").close()
