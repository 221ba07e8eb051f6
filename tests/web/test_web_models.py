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

from mlaas_jupyter.inference import load_bundle


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


@pytest.fixture
def example_model(tmp_path: Path) -> Path:
    """A small real bundle that reads the toy dataset's branches (see toy_bundles)."""
    from toy_bundles import write_example_bundle

    return write_example_bundle(tmp_path / "example-bundle")


async def _finished(api: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    job: Any = None
    for _ in range(int(timeout / 0.25)):
        _, job = await api("jobs", job_id)
        if job["state"] in ("succeeded", "failed", "cancelled", "lost"):
            return dict(job)
        await asyncio.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.slow
async def test_prediction_job_writes_friend_trees(
    api: Any, jp_root_dir: Path, toy_dir: Path, example_model: Path
) -> None:
    status, _ = await api(
        "models", method="POST", body=_zip(example_model), params={"name": "higgs"}
    )
    assert status == 201
    bundle = load_bundle(example_model)
    body = {"path": "toy/*.root", "out": "scores", "async": True, "step_size": 500}
    status, job = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 202, job
    assert (job["kind"], job["name"], job["state"]) == ("predict", "predict-higgs", "queued")
    assert (job["spec"]["predict"]["model"], job["spec"]["predict"]["version"]) == ("higgs", 1)
    done = await _finished(api, job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert (done["metrics"]["entries"], done["metrics"]["files"]) == (4000, 2)
    names = ["background_0_score.root", "signal_0_score.root"]
    assert done["outputs"] == [str(jp_root_dir / "scores" / name) for name in names]
    for stem in ("background_0", "signal_0"):
        source = toy_dir / f"{stem}.root"
        with uproot.open(jp_root_dir / "scores" / f"{stem}_score.root") as handle:
            tree = handle["Events"]
            assert tree.num_entries == 2000
            scores = tree["score"].array(library="np")
        np.testing.assert_array_equal(scores, bundle.predict(str(source)))
    _, events = await api("jobs", job["id"], "events")
    progress = [e for e in events["events"] if e["type"] == "progress"]
    assert progress[-1]["events"] == progress[-1]["events_total"] == 4000
    assert progress[-1]["events_per_s"] > 0
    _, listing = await api("jobs", params={"kind": "predict"})
    assert [j["id"] for j in listing["jobs"]] == [job["id"]]
    _, listing = await api("jobs", params={"kind": "train"})
    assert listing["jobs"] == []
    status, reply = await api("jobs", params={"kind": "sweep"})
    assert status == 400
    assert "sweep" in reply["detail"]

    # the synchronous route still scores one file at once
    body = {"path": "toy/signal_0.root", "out": "sync/signal.root", "prefix": "nn"}
    status, reply = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 200, reply
    assert (reply["entries"], reply["branches"]) == (2000, ["nn"])
    with uproot.open(jp_root_dir / "sync" / "signal.root") as handle:
        scores = handle["Events"]["nn"].array(library="np")
    np.testing.assert_array_equal(scores, bundle.predict(str(toy_dir / "signal_0.root")))
    # without "out": scores/ beside the input, where the toy's globs do not reach
    body = {"path": "toy/signal_0.root", "prefix": "nn"}
    status, reply = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert (status, reply["out"]) == (200, str(toy_dir / "scores" / "signal_0_nn.root"))
    with uproot.open(toy_dir / "scores" / "signal_0_nn.root") as handle:
        np.testing.assert_array_equal(handle["Events"]["nn"].array(library="np"), scores)


async def test_prediction_job_errors(
    api: Any, jp_root_dir: Path, toy_dir: Path, outside_dir: Path, toy_bundles: dict[str, Path]
) -> None:
    await api("models", method="POST", body=_zip(toy_bundles["flat"]), params={"name": "higgs"})
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("higgs", {"path": "nothing/*.root", "out": "s"}, 400, "nothing"),
        ("higgs", {"path": "/etc/passwd", "out": "s"}, 403, "outside the data roots"),
        ("higgs", {"path": str(outside_dir / "secret.root"), "out": "s"}, 403, "outside"),
        ("higgs", {"path": "toy/*.root", "out": "../s"}, 403, "'..'"),
        ("higgs", {"path": "toy/*.root", "out": "/tmp/s"}, 403, "outside the data roots"),
        ("higgs", {"path": "toy/*.root", "out": "one.root"}, 400, "2 files match"),
        ("higgs", {"path": "toy/*.root", "out": "s", "colour": 1}, 400, "colour"),
        ("higgs", {"path": "toy/*.root", "out": "s", "step_size": 0}, 400, "step_size"),
        ("higgs", {"path": "toy/*.root", "out": "s", "executor": "gpu"}, 400, "gpu"),
        ("higgs", {"path": "toy/*.root", "out": "s", "version": 7}, 404, "version 7"),
        ("higgs", {"path": 3, "out": "s"}, 400, "path"),
        ("higgs", {"path": "toy/*.root", "out": ""}, 400, "out"),
        ("nope", {"path": "toy/*.root", "out": "s"}, 404, "nope"),
    ]
    for model, body, code, words in cases:
        body = {**body, "async": True}
        status, reply = await api("models", model, "predict_file", method="POST", body=body)
        assert (status, words in reply["detail"]) == (code, True), (body, reply)
    status, reply = await api(
        "models", "higgs", "predict_file", method="POST", body={"path": ["a"], "out": "s"}
    )
    assert status == 400  # a list of files needs "async": true
    status, reply = await api(
        "models", "higgs", "predict_file", method="POST", body={"path": "a", "out": "s", "async": 1}
    )
    assert (status, "async" in reply["detail"]) == (400, True)
    status, reply = await api("jobs", method="POST", body={"kind": "predict", "spec": {}})
    assert (status, "predict_file" in reply["detail"]) == (400, True)
    _, listing = await api("jobs")
    assert listing["jobs"] == []


@pytest.mark.slow
async def test_a_failed_prediction_job_leaves_no_output(
    api: Any, jp_root_dir: Path, toy_dir: Path, toy_bundles: dict[str, Path]
) -> None:
    """The toy files lack the inputs f0... of the flat bundle: the job fails, naming
    the first missing branch, and writes nothing; the server keeps serving."""
    await api("models", method="POST", body=_zip(toy_bundles["flat"]), params={"name": "higgs"})
    body = {"path": "toy", "out": "scores", "async": True}
    status, job = await api("models", "higgs", "predict_file", method="POST", body=body)
    assert status == 202
    done = await _finished(api, job["id"])
    assert done["state"] == "failed"
    assert "lacks input branches of the model: f0" in done["error"]
    assert done["outputs"] == []
    scores = jp_root_dir / "scores"
    assert not scores.exists() or list(scores.iterdir()) == []
    bundle = load_bundle(toy_bundles["flat"])
    rows = [dict.fromkeys(bundle.inputs, 0.5)]
    status, reply = await api("models", "higgs", "predict", method="POST", body={"rows": rows})
    assert status == 200, reply
