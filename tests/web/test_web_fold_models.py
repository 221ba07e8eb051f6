"""A k-fold bundle served over REST (the extension, and ``mlaas serve``): uploaded as a
zip with its fold folders, rows with the fold_by key scored by the model of their fold,
rows without it by the mean of the models."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fold_data import FoldRun, fold_run
from standalone_helpers import serve

from mlaas_jupyter.inference import load_bundle

pytestmark = pytest.mark.slow  # a 2-fold run (about a minute), servers


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FoldRun:
    return fold_run(tmp_path_factory)


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


def _rows(run: FoldRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]], np.ndarray[Any, Any]]:
    """Rows without and with ``event``, and the scores each kind should get."""
    bundle = load_bundle(run.result.bundle)
    models = [load_bundle(run.result.bundle / f"fold{i}") for i in (0, 1)]
    rng = np.random.default_rng(4)
    plain = [
        {"MET_pt": float(rng.gamma(2.0, 30.0)), "MET_phi": float(rng.uniform(-3, 3))}
        for _ in range(9)
    ]
    keyed = [{**row, "event": 1_000_000 + i} for i, row in enumerate(plain)]
    picked = np.where(np.arange(9) % 2 == 1, models[1].predict(plain), models[0].predict(plain))
    mean = (models[0].predict(plain) + models[1].predict(plain)) / 2
    np.testing.assert_allclose(bundle.predict(keyed), picked, rtol=1e-6)
    return plain, keyed, np.stack([mean, picked])


async def test_fold_bundle_through_the_extension(api: Any, run: FoldRun) -> None:
    status, info = await api(
        "models",
        method="POST",
        body=_zip(run.result.bundle),
        params={"name": "folded", "filename": "b.zip"},
    )
    assert status == 201, info
    plain, keyed, (mean, picked) = _rows(run)
    status, reply = await api("models", "folded", "predict", method="POST", body={"rows": plain})
    assert status == 200, reply
    np.testing.assert_allclose(reply["scores"], mean, rtol=1e-5)
    status, reply = await api("models", "folded", "predict", method="POST", body={"rows": keyed})
    assert status == 200, reply
    np.testing.assert_allclose(reply["scores"], picked, rtol=1e-5)
    columns = {k: [row[k] for row in keyed] for k in keyed[0]}
    body = {"columns": columns}
    status, reply = await api("models", "folded", "predict", method="POST", body=body)
    assert status == 200, reply
    np.testing.assert_allclose(reply["scores"], picked, rtol=1e-5)
    status, reply = await api("models", "folded", "predict", method="POST", body={"rows": 3})
    assert status == 400
    assert "rows" in reply["detail"] or "rows" in reply["error"]


def test_fold_bundle_through_mlaas_serve(tmp_path: Path, run: FoldRun) -> None:
    plain, keyed, (mean, picked) = _rows(run)
    with serve(tmp_path / "serve", f"--register={run.result.bundle}") as server:
        status, _, reply = server.call("POST", "models/folded/predict", {"rows": keyed})
        assert status == 200, reply
        np.testing.assert_allclose(reply["scores"], picked, rtol=1e-5)
        status, _, reply = server.call("POST", "models/folded/predict", {"rows": plain})
        assert status == 200, reply
        np.testing.assert_allclose(reply["scores"], mean, rtol=1e-5)
        keys = list(keyed[0])
        body = {"keys": keys, "values": [[row[k] for k in keys] for row in keyed]}
        status, _, reply = server.call("POST", "models/folded/predict", body)
        assert status == 200, reply
        np.testing.assert_allclose(reply["scores"], picked, rtol=1e-5)
