"""Training backends are plug-ins found by name through the ``mlaas_jupyter.backends``
entry points; nothing in the package imports them by name."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from mlaas_jupyter.errors import SpecError, TrainingError
from mlaas_jupyter.specs.training import ModelSpec, TrainConfig
from mlaas_jupyter.train import backend as backend_module
from mlaas_jupyter.train.backend import ENTRY_POINT_GROUP, backend_names, make_backend


class FakeBackend:
    """Records how :func:`make_backend` built it."""

    def __init__(self, model: Any, context: Any, config: Any) -> None:
        self.built_with = (model, context, config)


def _install(monkeypatch: pytest.MonkeyPatch, **points: str) -> None:
    """Make ``points`` (name -> ``module:attribute``) the only installed backends."""
    installed = [EntryPoint(name=n, value=v, group=ENTRY_POINT_GROUP) for n, v in points.items()]

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == "mlaas_jupyter.backends"
        return installed

    monkeypatch.setattr(backend_module, "entry_points", fake_entry_points)


def test_the_three_backends_are_installed() -> None:
    assert {"torch", "keras", "sklearn"} <= set(backend_names())


def test_the_backend_of_the_spec_is_built_from_its_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _install(monkeypatch, torch=f"{__name__}:FakeBackend", keras="no_such_module_xyz:Nope")
    model = ModelSpec.from_dict({"name": "mlp"})  # resolved backend: torch
    context, config = object(), TrainConfig()
    built: Any = make_backend(model, context, config)  # type: ignore[arg-type]
    assert isinstance(built, FakeBackend)
    assert built.built_with == (model, context, config)


def test_an_unknown_backend_lists_the_installed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, sklearn=f"{__name__}:FakeBackend", keras=f"{__name__}:FakeBackend")
    with pytest.raises(SpecError) as caught:
        make_backend(ModelSpec.from_dict({"name": "mlp"}), object(), TrainConfig())  # type: ignore[arg-type]
    assert caught.value.field == "model.backend"
    assert str(caught.value).endswith(
        "unknown training backend 'torch'; installed backends: keras, sklearn"
    )


def test_a_backend_whose_library_is_missing_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, sklearn="no_such_module_xyz.backend:Backend")
    with pytest.raises(TrainingError) as caught:
        make_backend(ModelSpec.from_dict({"name": "bdt"}), object(), TrainConfig())  # type: ignore[arg-type]
    assert str(caught.value) == (
        "the sklearn training backend (no_such_module_xyz.backend:Backend) cannot be "
        "imported: No module named 'no_such_module_xyz'"
    )
