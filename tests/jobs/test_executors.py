"""Executors are plug-ins: found through entry points, configured through traitlets."""

from __future__ import annotations

import asyncio
import logging
import sys
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from traitlets.config import Config, Configurable

from mlaas_jupyter.jobs import executors
from mlaas_jupyter.jobs.executors import ENTRY_POINT_GROUP, Executor, executor_classes
from mlaas_jupyter.jobs.executors.dask import DaskExecutor
from mlaas_jupyter.jobs.executors.kernel import KernelExecutor
from mlaas_jupyter.jobs.executors.local import LocalExecutor
from mlaas_jupyter.jobs.models import Job


def test_the_installed_executors_are_found_by_name() -> None:
    classes = executor_classes()
    assert {name: classes[name] for name in ("local", "dask", "kernel")} == {
        "local": LocalExecutor,
        "dask": DaskExecutor,
        "kernel": KernelExecutor,
    }
    for name, cls in classes.items():
        assert issubclass(cls, Executor)
        assert cls.name == name


def _point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_a_broken_plugin_is_skipped_with_a_warning_naming_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    points = [
        _point("local", "mlaas_jupyter.jobs.executors.local:LocalExecutor"),
        _point("missing", "no_such_package_for_mlaas.executor:Thing"),
        _point("not_one", "json:dumps"),
    ]

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == "mlaas_jupyter.executors"
        return points

    monkeypatch.setattr(executors, "entry_points", fake_entry_points)
    with caplog.at_level(logging.WARNING, logger="mlaas_jupyter.jobs.executors"):
        classes = executor_classes()
    assert classes == {"local": LocalExecutor}
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith(
        "mlaas: executor plug-in 'missing' (no_such_package_for_mlaas.executor:Thing) "
        "cannot be loaded: ModuleNotFoundError"
    )
    assert messages[1] == (
        "mlaas: executor plug-in 'not_one' (json:dumps) is not a subclass of "
        "mlaas_jupyter.jobs.executors.base.Executor; skipped"
    )


def test_settings_come_from_the_parent_config_and_keywords_win() -> None:
    config = Config()
    config.DaskExecutor.scheduler = "tcp://scheduler:8786"
    config.DaskExecutor.grace = 3.0
    config.LocalExecutor.env = {"OMP_NUM_THREADS": "1"}
    config.KernelExecutor.default_kernel = "python3-gpu"
    parent = Configurable(config=config)
    dask = DaskExecutor(parent=parent)
    assert (dask.scheduler, dask.grace, dask.drain_timeout) == ("tcp://scheduler:8786", 3.0, 10.0)
    assert DaskExecutor(parent=parent, scheduler="").scheduler == ""
    local = LocalExecutor(parent=parent, grace=20.0)
    assert (local.env, local.grace) == ({"OMP_NUM_THREADS": "1"}, 20.0)
    manager = object()
    kernel = KernelExecutor(parent=parent, kernel_manager=manager)
    assert (kernel.kernel_manager, kernel.default_kernel) == (manager, "python3-gpu")


def test_defaults_without_a_parent() -> None:
    assert DaskExecutor().scheduler == ""  # a LocalCluster on first use
    assert (LocalExecutor().python, LocalExecutor().grace) == (sys.executable, 10.0)
    kernel = KernelExecutor()
    assert (kernel.kernel_manager, kernel.default_kernel) == (None, "python3")


def test_the_base_class_states_what_a_plugin_must_implement() -> None:
    class Half(Executor):
        name = "half"

    half = Half()
    job: Any = Job.__new__(Job)
    with pytest.raises(NotImplementedError, match="Half does not implement run"):
        asyncio.run(half.run(job, lambda event: None))
    with pytest.raises(NotImplementedError, match="Half does not implement cancel"):
        asyncio.run(half.cancel(job))
    assert asyncio.run(half.close()) is None
