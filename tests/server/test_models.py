"""Model routes through the real extension: upload, list, predict, delete, errors."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

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
