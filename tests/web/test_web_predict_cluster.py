"""``POST models/{name}/predict_file`` with ``"async": true`` and a ``cluster``: a real
prediction job (local executor: a subprocess) scoring each file as a task of a dask
LocalCluster, listing every file's result in the job record."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot

from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.specs.cluster import ClusterSpec

CLUSTER = {"local": {"workers": 2}}


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "models_dir": str(tmp_path / "state" / "models"),
        "default_executor": "local",
    }


@pytest.fixture
def example_model(tmp_path: Path) -> Path:
    """A small real bundle that reads the toy dataset's branches."""
    from toy_bundles import write_example_bundle

    return write_example_bundle(tmp_path / "example-bundle")


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, f"bundle/{path.relative_to(folder)}")
    return buffer.getvalue()


async def _finished(api: Any, job_id: str, timeout: float = 180) -> dict[str, Any]:
    job: Any = None
    for _ in range(int(timeout / 0.25)):
        _, job = await api("jobs", job_id)
        if job["state"] in ("succeeded", "failed", "cancelled", "lost"):
            return dict(job)
        await asyncio.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def test_cluster_needs_a_job_and_a_valid_kind(
    api: Any, toy_dir: Path, example_model: Path
) -> None:
    await api("models", method="POST", body=_zip(example_model), params={"name": "higgs"})
    body: dict[str, Any] = {"path": "toy/signal_0.root", "out": "s.root", "cluster": "local"}
    status, reply = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert (status, reply["detail"]) == (
        400,
        'cluster: only a prediction job takes it: add "async": true',
    )
    body = {"path": "toy", "out": "s", "async": True, "cluster": {"local": {}, "gateway": {}}}
    status, reply = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 400
    assert "give exactly one of local, scheduler, gateway, jobqueue" in reply["detail"]
    _, listing = await api("jobs")
    assert listing["jobs"] == []


@pytest.mark.slow
async def test_a_prediction_job_on_a_cluster_lists_every_file(
    api: Any, jp_root_dir: Path, toy_dir: Path, example_model: Path
) -> None:
    status, _ = await api(
        "models", method="POST", body=_zip(example_model), params={"name": "higgs"}
    )
    assert status == 201
    # a ROOT file without the model's tree: it passes the check at submit (damaged or
    # non-ROOT files are refused there) and fails when it is scored, alone
    with uproot.recreate(toy_dir / "broken.root") as handle:
        handle["Other"] = {"x": np.arange(10.0)}
    body = {"path": "toy/*.root", "out": "scores", "async": True, "cluster": CLUSTER}
    status, job = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 202, job
    cluster = ClusterSpec.parse(CLUSTER).to_dict()
    assert (job["kind"], job["spec"]["predict"]["cluster"]) == ("predict", cluster)
    done = await _finished(api, job["id"])
    assert done["state"] == "failed"
    broken = str(toy_dir / "broken.root")
    assert done["error"].startswith(f"1 of 3 files failed: {broken} (")
    assert "Events" in done["error"].split("2 scored")[0]
    assert done["error"].endswith("2 scored; their friend trees are in place")

    results = {r["input"]: r for r in done["progress"]["results"]}
    assert set(results) == {
        broken,
        str(toy_dir / "background_0.root"),
        str(toy_dir / "signal_0.root"),
    }
    assert results.pop(broken)["output"] == str(jp_root_dir / "scores" / "broken_score.root")
    bundle = load_bundle(example_model)
    for source, result in results.items():
        assert result["entries"] == 2000
        with uproot.open(result["output"]) as handle:
            scores = handle["Events"]["score"].array(library="np")
        np.testing.assert_array_equal(scores, bundle.predict(source))
    written = sorted(p.name for p in (jp_root_dir / "scores").iterdir())
    assert written == ["background_0_score.root", "signal_0_score.root"]
    _, events = await api("jobs", job["id"], "events")
    per_file = [e for e in events["events"] if e["type"] == "progress" and "file" in e]
    assert [e["files_done"] for e in per_file] == [1, 2, 3]
    assert [e["files"] for e in per_file] == [3, 3, 3]

    # the two good files alone: the job succeeds, its record lists both
    body = {**body, "path": ["toy/background_0.root", "toy/signal_0.root"], "out": "again"}
    status, job = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 202, job
    done = await _finished(api, job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert (done["metrics"]["entries"], done["metrics"]["files"]) == (4000, 2)
    assert done["outputs"] == [
        str(jp_root_dir / "again" / f"{stem}_score.root") for stem in ("background_0", "signal_0")
    ]
    assert [(r["input"], r["entries"]) for r in done["progress"]["results"]] == [
        (str(toy_dir / "background_0.root"), 2000),
        (str(toy_dir / "signal_0.root"), 2000),
    ]
