"""``%mlaas`` through IPython's own shell: grammar, errors, and real jobs in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import uproot
import yaml
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from lost_jobs import leave_running

from mlaas_jupyter.client._job import Job
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.specs.training import TrainSpec


def run(shell: InteractiveShell, line: str, cell: str | None = None) -> tuple[Any, str, str]:
    with capture_output() as captured:
        if cell is None:
            result = shell.run_line_magic("mlaas", line)
        else:
            result = shell.run_cell_magic("mlaas", line, cell)
    return result, captured.stdout, captured.stderr


def test_help_lists_every_command(shell: InteractiveShell) -> None:
    _, out, _ = run(shell, "help")
    for command in ("train", "jobs", "status", "cancel", "logs", "inspect", "predict", "connect"):
        assert f"  {command}" in out
    _, out, _ = run(shell, "help train")
    assert "--executor {kernel,dask,local}" in out
    assert "--files" in out
    _, out, _ = run(shell, "train --help")
    assert "%mlaas train" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "%mlaas: give a command"),
        ("trian x.yaml", "unknown command 'trian'; did you mean 'train'?"),
        ("jobs --colour red", "%mlaas jobs: unrecognized arguments: --colour red"),
        ("jobs --state done", "argument --state: invalid choice: 'done'"),
        ("status", "%mlaas status: the following arguments are required: ID"),
        ("train missing.yaml", "%mlaas train: no spec file 'missing.yaml'"),
        ("train", "%mlaas train: give a spec file, a YAML cell body, or --files"),
        ("train --files f.txt", "MLaaS4HEP inputs also need --labels, --model, --params"),
        ("connect", "%mlaas connect: give a URL, or --in-process"),
        ("inspect nope.root", "%mlaas inspect: "),
        ("status 'unclosed", "cannot split the line"),
        ("help nothing", "unknown command 'nothing'"),
    ],
)
def test_usage_errors_are_one_line_messages(
    shell: InteractiveShell, line: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        run(shell, line)
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_bad_cell_spec_names_the_field(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="dataset"):
        run(shell, "train", "model: {name: mlp}\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        run(shell, "train", "dataset: [\n")
    with pytest.raises(UsageError, match="only %%mlaas train and %%mlaas stats take a cell body"):
        run(shell, "jobs", "x: 1\n")


def test_inspect_real_file(shell: InteractiveShell, hzz_path: str) -> None:
    result, out, _ = run(shell, f"inspect {hzz_path}")
    assert result is None
    assert "events" in out
    assert "2421" in out
    assert "Muon_Px" in out
    described, _, _ = run(shell, f"inspect {hzz_path} --json")
    assert described[0]["entries"] == 2421
    kinds = {b["name"]: b["kind"] for b in described[0]["branches"]}
    assert kinds["Muon_Px"] == "jagged"
    assert kinds["NMuon"] == "flat"


def test_inspect_says_what_a_file_holds(shell: InteractiveShell) -> None:
    import skhep_testdata

    histograms = skhep_testdata.data_path("uproot-histograms.root")
    with pytest.raises(UsageError) as caught:  # as mlaas inspect: never a silent empty
        run(shell, f"inspect {histograms}")
    assert "only 3 objects that are not trees: one (TH1F), three (TH1F)" in str(caught.value)
    hepdata = skhep_testdata.data_path("uproot-hepdata-example.root")
    result, out, _ = run(shell, f"inspect {hepdata}")
    assert result is None
    assert "TTree 'ntuple': 75000 entries, 5 branches" in out
    assert "also 3 objects that are not trees: hprof (TProfile), hpx (TH1F)" in out


def _toy_spec(folder: Path, model: str = "bdt") -> dict[str, Any]:
    path = write_example_dataset(folder, events_per_file=2000, files_per_class=1)
    dataset = yaml.safe_load(path.read_text())
    dataset["classes"] = {k: [f"data/{g}" for g in v] for k, v in dataset["classes"].items()}
    return {"dataset": dataset, "model": {"name": model}, "training": {"epochs": 1}}


@pytest.mark.slow
def test_train_status_logs_jobs_and_predict(shell: InteractiveShell, isolated: Path) -> None:
    (isolated / "spec.yaml").write_text(yaml.safe_dump(_toy_spec(isolated / "data")))
    job, out, _ = run(shell, "train spec.yaml --name toy --wait")
    assert isinstance(job, Job)
    assert f"job {job.id} submitted to the local executor, in this process" in out
    assert job.status == "succeeded", job.logs()
    assert Path(job.bundle or "").is_dir()
    assert job.metrics["auc"] > 0.6

    table, _, _ = run(shell, "jobs")
    assert [row[0] for row in table.rows] == [job.id]
    assert table.rows[0][1:3] == ("toy", "succeeded")
    assert job.id in repr(table)
    assert "<table" in table._repr_html_()
    _, out, _ = run(shell, f"status {job.id}")
    assert f"job {job.id} (toy): succeeded" in out
    assert "bundle: " in out
    _, out, _ = run(shell, f"logs {job.id}")
    assert isinstance(out, str)
    with pytest.raises(UsageError, match="has already finished"):
        run(shell, f"cancel {job.id}")

    data = isolated / "data" / "signal_0.root"
    written, out, _ = run(shell, f"predict {job.bundle} {data} --output scores.root")
    assert written == "scores.root"
    assert "scored 2000 entries" in out
    friend = uproot.open(isolated / "scores.root")["Events"]
    assert friend.num_entries == 2000


@pytest.mark.slow
def test_resume_a_lost_job(shell: InteractiveShell, isolated: Path) -> None:
    spec = TrainSpec.from_dict(_toy_spec(isolated / "data"), base_dir=isolated).to_dict()
    job_id = leave_running(isolated / "jobs.sqlite", spec, "toy", isolated / "runs")
    job, out, _ = run(shell, f"resume {job_id} --wait")
    assert isinstance(job, Job)
    assert job.id == job_id
    assert f"job {job_id} resumed on the local executor, in this process" in out
    assert job.status == "succeeded", job.logs()
    assert "resumed" in [event["type"] for event in job.client.events(job_id)]
    with pytest.raises(UsageError, match=f"%mlaas resume: job {job_id} is succeeded; only a lost"):
        run(shell, f"resume {job_id}")


@pytest.mark.slow
def test_cell_form_and_mlaas4hep_options(shell: InteractiveShell, isolated: Path) -> None:
    spec = _toy_spec(isolated / "data")
    job, _, _ = run(shell, "train --wait --name cell", yaml.safe_dump(spec))
    assert job.status == "succeeded", job.logs()
    # relative paths in the cell were made absolute for the job's own folder
    files = job.info["spec"]["dataset"]["classes"]["signal"]["files"]
    assert Path(files[0]).is_absolute()

    (isolated / "files.txt").write_text("data/background_0.root\ndata/signal_0.root\n")
    (isolated / "labels.txt").write_text("0\n1\n")
    params = {"branch": "Events", "selected_branches": ["MET_pt", "nJet"], "nevts": -1}
    (isolated / "params.json").write_text(json.dumps(params))
    (isolated / "net.py").write_text(
        "import torch.nn as nn\n\n\ndef model(idim):\n"
        "    return nn.Sequential(nn.Linear(idim, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())\n"
    )
    line = "train --files files.txt --labels labels.txt --model net.py --params params.json --wait"
    legacy, _, _ = run(shell, line)
    assert legacy.status == "succeeded", legacy.logs()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ("--workers 2", ["training.workers", "the BDT (scikit-learn) trains in one process"]),
        ("--workers 0", ["training.workers", ">= 1"]),
        ("--model-free --workers 3 --cluster '{local: {workers: 2}}'", ["cluster.local.workers"]),
        ("--cluster nowhere", ["--cluster", "'nowhere' is not 'local', a scheduler address"]),
    ],
)
def test_workers_and_cluster_options_reach_the_spec(
    shell: InteractiveShell, isolated: Path, options: str, words: list[str]
) -> None:
    spec = _toy_spec(isolated / "data")
    if options.startswith("--model-free"):  # a torch model: the cluster's size is checked
        spec["model"] = {"name": "mlp"}
        options = options.removeprefix("--model-free ")
    (isolated / "spec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(UsageError) as caught:
        run(shell, f"train spec.yaml {options}")
    for word in words:
        assert word in str(caught.value)
    assert not (isolated / "runs").exists()  # refused before any job ran
