"""Prediction jobs without a server: the in-process client, the local executor."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import uproot

from mlaas_jupyter.client import Client
from mlaas_jupyter.inference import load_bundle


def test_in_process_prediction_job(isolated: Path, toy_bundles: dict[str, Path]) -> None:
    bundle = load_bundle(toy_bundles["flat"])
    rng = np.random.default_rng(0)
    columns = {name: rng.normal(size=120).astype(np.float32) for name in bundle.inputs}
    source = isolated / "events.root"
    with uproot.recreate(source) as handle:
        handle.mktree("Events", dict.fromkeys(columns, np.float32)).extend(columns)
    archive = shutil.make_archive(str(isolated / "toy"), "zip", toy_bundles["flat"])
    client = Client(transport="in-process")
    try:
        info = client.upload_model(archive, name="toy")
        assert (info["name"], info["version"]) == ("toy", 1)
        job = client.predict_file("toy", str(source), str(isolated / "out"))
        assert job["kind"] == "predict"
        done = client.wait(job["id"], timeout=120)
        assert done["state"] == "succeeded", (done["error"], client.logs(job["id"]))
        assert done["metrics"]["entries"] == 120
        with uproot.open(isolated / "out" / "events_score.root") as handle:
            scores = handle["Events"]["score"].array(library="np")
        np.testing.assert_allclose(scores, bundle.predict(str(source)), atol=0)
    finally:
        client.close()
