"""A real Jupyter server (pytest-jupyter) with the MLaaS extension, on toy data.

The server's ``root_dir`` (the default data root) holds the toy dataset in ``toy/``;
``outside/`` next to it is outside every root. Jobs use :class:`FakeExecutor` as the
``local`` executor unless a test's ``mlaas_config`` says otherwise; the kernel and
dask executors are the real ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

# The fixtures and hooks of pytest-jupyter's server plugin, for this folder only (pytest
# refuses ``pytest_plugins = [...]`` in a conftest below the rootdir).
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config
from web_helpers import API, FakeExecutor

from mlaas_jupyter.examples import write_example_dataset


@pytest.fixture(scope="session")
def toy_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy dataset, written once per session (1 file per class, 2000 events each)."""
    folder = tmp_path_factory.mktemp("toy")
    write_example_dataset(folder, events_per_file=2000, files_per_class=1)
    return folder


@pytest.fixture
def toy_dir(jp_root_dir: Path, toy_source: Path) -> Path:
    """``<root_dir>/toy``: a copy of the toy dataset inside the default data root."""
    target = jp_root_dir / "toy"
    shutil.copytree(toy_source, target)
    return target


@pytest.fixture
def outside_dir(tmp_path: Path, toy_source: Path) -> Path:
    """A folder outside the data root, holding a readable ROOT file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    shutil.copy(toy_source / "signal_0.root", folder / "secret.root")
    return folder


@pytest.fixture
def mlaas_config(tmp_path: Path) -> dict[str, Any]:
    """``Mlaas`` (core) config of the test server (override to change it)."""
    return {
        "job_store": str(tmp_path / "state" / "jobs.sqlite"),
        "runs_dir": str(tmp_path / "state" / "runs"),
        "local_executor_class": FakeExecutor,
        "default_executor": "local",
    }


@pytest.fixture
def jp_server_config(mlaas_config: dict[str, Any], toy_dir: Path) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"mlaas_jupyter": True}},
            "Mlaas": mlaas_config,
        }
    )


@pytest.fixture
def mlaas(jp_serverapp: Any) -> Any:
    """The running :class:`MlaasExtension` (its core service is ``mlaas.core``)."""
    point = jp_serverapp.extension_manager.extension_points["mlaas"]
    return point.app


@pytest.fixture
def api(jp_fetch: Any) -> Any:
    """``await api("jobs", method="POST", body={...})`` -> (status, JSON) without raising."""

    async def call(*parts: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            kwargs["body"] = body if isinstance(body, str | bytes) else json.dumps(body)
        response = await jp_fetch(*API, *parts, raise_error=False, **kwargs)
        text = response.body.decode() if response.body else ""
        kind = response.headers.get("Content-Type", "")
        return response.code, json.loads(text) if "json" in kind and text else text

    return call


@pytest.fixture(autouse=True)
def no_uncaught_exceptions(caplog: pytest.LogCaptureFixture) -> Any:
    """Every test also checks that no handler raised an unexpected exception (500)."""
    yield
    uncaught = [r.getMessage() for r in caplog.records if "Uncaught exception" in r.getMessage()]
    assert not uncaught, uncaught
