"""Model routes through the real extension: upload, list, predict, delete, errors."""

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


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, f"bundle/{path.relative_to(folder)}")
    return buffer.getvalue()


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "models_dir": str(tmp_path / "state" / "models"),
        "default_executor": "local",
    }


async def test_upload_list_predict_delete(api: Any, toy_bundles: dict[str, Path]) -> None:
    folder = toy_bundles["flat"]
    status, info = await api(
        "models", method="POST", body=_zip(folder), params={"name": "higgs", "filename": "b.zip"}
    )
    assert status == 201, info
    assert (info["name"], info["version"]) == ("higgs", 1)
    status, listing = await api("models")
    assert status == 200
    assert [m["name"] for m in listing["models"]] == ["higgs"]

    bundle = load_bundle(folder)
    rng = np.random.default_rng(3)
    rows = [{name: float(rng.normal()) for name in bundle.inputs} for _ in range(5)]
    status, reply = await api("models", "higgs", "predict", method="POST", body={"rows": rows})
    assert status == 200, reply
    np.testing.assert_allclose(reply["scores"], bundle.predict(rows), rtol=1e-6, atol=1e-7)

    missing = [dict(list(row.items())[1:]) for row in rows]
    status, reply = await api("models", "higgs", "predict", method="POST", body={"rows": missing})
    assert status == 400
    first = next(iter(bundle.inputs))
    assert first in reply["detail"] or first in reply["error"]

    status, reply = await api("models", "higgs", "predict", method="POST", body="{not json")
    assert status == 400
    status, reply = await api("models", "nope", "predict", method="POST", body={"rows": rows})
    assert status == 404

    status, _ = await api("models", "higgs", method="DELETE")
    assert status == 200
    status, listing = await api("models")
    assert listing["models"] == []


async def test_hostile_archive_is_refused_and_server_keeps_serving(api: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape/manifest.json", "{}")
    status, reply = await api(
        "models", method="POST", body=buffer.getvalue(), params={"filename": "evil.zip"}
    )
    assert status == 400
    assert "escapes the archive" in reply["detail"] or "escapes the archive" in reply["error"]
    status, listing = await api("models")
    assert (status, listing["models"]) == (200, [])


# -- batch prediction as a job: predict_file with "async": true -------------------------


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
