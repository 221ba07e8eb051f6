"""Batch prediction as a job: ``models/{name}/predict_file`` with ``"async": true``."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot

from mlaas_jupyter.serve import load_bundle


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "models_dir": str(tmp_path / "state" / "models"),
        "default_executor": "local",
    }


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, f"bundle/{path.relative_to(folder)}")
    return buffer.getvalue()


def _events(path: Path, inputs: list[str], n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    columns = {name: rng.normal(size=n).astype(np.float32) for name in inputs}
    with uproot.recreate(path) as handle:
        handle.mktree("Events", dict.fromkeys(columns, np.float32)).extend(columns)


async def _finished(api: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    for _ in range(int(timeout / 0.25)):
        _, job = await api("jobs", job_id)
        if job["state"] in ("succeeded", "failed", "cancelled", "lost"):
            return dict(job)
        await asyncio.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def test_prediction_job_writes_friend_trees(
    api: Any, jp_root_dir: Path, toy_bundles: dict[str, Path]
) -> None:
    status, _ = await api(
        "models", method="POST", body=_zip(toy_bundles["flat"]), params={"name": "higgs"}
    )
    assert status == 201
    bundle = load_bundle(toy_bundles["flat"])
    (jp_root_dir / "events").mkdir()
    _events(jp_root_dir / "events" / "a.root", list(bundle.inputs), 300, 1)
    _events(jp_root_dir / "events" / "b.root", list(bundle.inputs), 200, 2)

    body = {"path": "events/*.root", "out": "scores", "async": True}
    status, job = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 202, job
    assert (job["kind"], job["name"]) == ("predict", "predict-higgs")
    done = await _finished(api, job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert (done["metrics"]["entries"], done["metrics"]["files"]) == (500, 2)
    for stem in ("a", "b"):
        source = jp_root_dir / "events" / f"{stem}.root"
        with uproot.open(jp_root_dir / "scores" / f"{stem}_score.root") as handle:
            scores = handle["Events"]["score"].array(library="np")
        np.testing.assert_allclose(scores, bundle.predict(str(source)), atol=0)
    _, events = await api("jobs", job["id"], "events")
    progress = [e for e in events["events"] if e["type"] == "progress"]
    assert [e["batch"] for e in progress] == [1, 2]
    assert progress[-1]["events"] == 500


async def test_prediction_job_errors(
    api: Any, jp_root_dir: Path, toy_bundles: dict[str, Path]
) -> None:
    await api("models", method="POST", body=_zip(toy_bundles["flat"]), params={"name": "higgs"})
    body: dict[str, Any] = {"path": "nothing/*.root", "out": "scores", "async": True}
    status, reply = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 400
    assert "nothing" in reply["detail"]
    body = {"path": "/etc/passwd", "out": "scores", "async": True}
    status, reply = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 403
    body = {"path": "events/*.root", "out": "scores", "async": True}
    status, reply = await api("models", "nope", "predict_file", method="POST", body=body)
    assert status == 404

    # a file without the model's inputs: the job fails and leaves no output behind
    (jp_root_dir / "events").mkdir()
    _events(jp_root_dir / "events" / "wrong.root", ["x", "y"], 50, 3)
    status, job = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 202
    done = await _finished(api, job["id"])
    assert done["state"] == "failed"
    assert "f0" in done["error"]
    assert (
        not list((jp_root_dir / "scores").glob("*")) if (jp_root_dir / "scores").exists() else True
    )
