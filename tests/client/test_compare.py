"""``Client.compare`` and ``mlaas compare`` on really trained tiny jobs (in process):
the metrics of each job, what differs between their specs, job ids mixed with run
folders, the figure's files, and the errors naming the job."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter.cli import main
from mlaas_jupyter.client import Client, Comparison
from mlaas_jupyter.errors import Conflict, NotFound, SourceError, SpecError
from mlaas_jupyter.examples import write_example_dataset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(isolated: Path) -> Iterator[Client]:
    handle = Client(transport="in-process")
    yield handle
    handle.close()


def _spec(folder: Path, sizes: list[int], extra: list[str] = (), **model: Any) -> dict[str, Any]:
    dataset = yaml.safe_load((folder / "dataset.yaml").read_text())
    dataset["classes"] = {k: [str(folder / g) for g in v] for k, v in dataset["classes"].items()}
    dataset["branches"] = [*dataset["branches"], *extra]
    training = {"epochs": 1, "batch_size": 256, "device": "cpu", "early_stopping": None}
    params = {"sizes": sizes, **model}
    return {"dataset": dataset, "model": {"name": "mlp", "params": params}, "training": training}


@pytest.mark.slow
def test_compare_trained_jobs(client: Client, isolated: Path, capsys: Any) -> None:
    folder = isolated / "data"
    write_example_dataset(folder, events_per_file=1500, files_per_class=1)
    specs = {
        "small": _spec(folder, [8]),
        "wide": _spec(folder, [32]),
        "ht": _spec(folder, [8], ["HT"]),
        "broken": _spec(folder, [8], bogus=1),  # fails: an unknown model parameter
    }
    ids = {name: client.submit(spec, name=name)["id"] for name, spec in specs.items()}
    jobs = {name: client.wait(job_id, timeout=300) for name, job_id in ids.items()}
    for name in ("small", "wide", "ht"):
        assert jobs[name]["state"] == "succeeded", (jobs[name]["error"], client.logs(ids[name]))
    assert jobs["broken"]["state"] == "failed"

    comparison = client.compare(ids["small"], ids["wide"], ids["ht"])
    assert isinstance(comparison, Comparison)
    assert comparison.labels == ["small", "wide", "ht"]
    runs = comparison.runs
    assert [r["id"] for r in runs] == [ids["small"], ids["wide"], ids["ht"]]
    assert [r["run_dir"] for r in runs] == [jobs[n]["run_dir"] for n in ("small", "wide", "ht")]
    for run, name in zip(runs, ("small", "wide", "ht"), strict=True):
        assert run["metrics"]["auc"] == pytest.approx(jobs[name]["metrics"]["auc"])
        assert run["metrics"]["epochs"] == 1.0
        assert run["roc"]["curves"]["signal"]["fpr"]
        assert run["missing"] == []
    by_field = {d["field"]: d for d in comparison.differences}
    assert list(by_field) == ["dataset.branches", "model.params.sizes"]
    assert by_field["model.params.sizes"]["values"] == [[8], [32], [8]]
    assert by_field["dataset.branches"]["text"][1:] == ["[MET_*, Jet_*, nJet]", "added: HT"]
    assert comparison.table[0] == {
        "metric": "auc",
        **{name: runs[k]["metrics"]["auc"] for k, name in enumerate(comparison.labels)},
    }
    assert comparison.to_dict() == client.compare(ids["small"], ids["wide"], ids["ht"]).to_dict()

    # a run folder and one job (read through its artefacts), in the order given
    mixed = client.compare(Path(jobs["wide"]["run_dir"]), ids["small"])
    assert [r["run_dir"] for r in mixed.runs] == [jobs["wide"]["run_dir"], jobs["small"]["run_dir"]]
    assert mixed.labels == ["mlp", "small"]  # the bundle's name: no job name in a folder
    assert mixed.runs[1]["roc"] == runs[0]["roc"]
    assert [d["field"] for d in mixed.differences] == ["model.params.sizes"]

    assert comparison.save(isolated / "c.png").read_bytes().startswith(PNG_MAGIC)
    assert comparison.save(isolated / "c.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(SpecError, match=r"'.*c.gif': save as .png, .pdf, .svg"):
        comparison.save(isolated / "c.gif")
    bundle = comparison._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    assert "<img" in bundle["text/html"]
    assert "<td>model.params.sizes</td><td>[8]</td><td>[32]</td><td>[8]</td>" in bundle["text/html"]
    assert bundle["text/plain"].startswith("metric ")
    assert "model.params.sizes  [8]" in repr(comparison)

    with pytest.raises(SpecError, match=r"^jobs: give at least 2 job ids or run folders"):
        client.compare(ids["small"])
    with pytest.raises(NotFound, match="nope1"):
        client.compare(ids["small"], "nope1", ids["wide"])
    with pytest.raises(Conflict, match=rf"job {ids['broken']} is failed: only succeeded"):
        client.compare(ids["small"], ids["broken"])
    with pytest.raises(Conflict, match=rf"job {ids['broken']} is failed"):
        client.compare(jobs["small"]["run_dir"], ids["broken"])  # one job: its artefacts
    with pytest.raises(SourceError, match=r"no/such: no such run folder, nor a job id"):
        client.compare(ids["small"], "no/such")

    # mlaas compare: the same core (this process's, of the same job store)
    out = isolated / "cli.svg"
    assert main(["compare", ids["small"], jobs["ht"]["run_dir"], "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dataset.branches" in text
    assert "added: HT" in text
    assert f"wrote {out}" in text
    assert out.read_bytes().lstrip().startswith(b"<?xml")
    assert main(["compare", ids["small"], ids["wide"], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data["runs"]] == [ids["small"], ids["wide"]]
    assert main(["compare", ids["small"], ids["broken"]]) == 2
    assert capsys.readouterr().err == (
        f"mlaas compare: error: job {ids['broken']} is failed: only succeeded training jobs "
        "can be compared\n"
    )
