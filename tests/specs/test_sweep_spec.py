"""`SweepRequest`: the parameter forms, the sampler and metric checks, trial specs."""

from __future__ import annotations

from typing import Any

import pytest

from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs.sweep import (
    Param,
    SweepRequest,
    apply_params,
    check_sweep,
    default_direction,
    parse_param,
)
from mlaas_jupyter.specs.training import TrainSpec
from mlaas_jupyter.train._builtin_models import builtin_params

SPEC: dict[str, Any] = {
    "dataset": {
        "tree": "Events",
        "classes": {"background": ["/data/bkg_*.root"], "signal": ["/data/sig_*.root"]},
        "branches": ["MET_*"],
    },
    "model": {"name": "mlp"},
    "training": {"epochs": 2},
}


def request(**fields: Any) -> SweepRequest:
    return SweepRequest.parse({"spec": SPEC, **fields})


def test_param_forms() -> None:
    assert parse_param("model.params.sizes", "64,128,abc") == Param(
        "model.params.sizes", "choice", choices=(64, 128, "abc")
    )
    assert parse_param("training.learning_rate", "1e-3,0.01").choices == (0.001, 0.01)
    assert parse_param("x", "true,false,none").choices == (True, False, None)
    assert parse_param("x", [1, "a"]).choices == (1, "a")
    assert parse_param("lr", "loguniform:1e-4:1e-2") == Param(
        "lr", "loguniform", low=1e-4, high=1e-2
    )
    ranged = parse_param("training.batch_size", "logint:64:1024")
    assert (ranged.kind, ranged.log, ranged.examples()) == ("logint", True, [64, 1024])
    assert parse_param("d", "uniform:0:0.5").examples() == [0.0, 0.5]


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        ("lr", "loguniform:0:1", r"^params\.lr: loguniform bounds must be > 0"),
        ("lr", "uniform:1:0", r"^params\.lr: expected LOW < HIGH, got '1:0'"),
        ("lr", "uniform:1", r"^params\.lr: expected uniform:LOW:HIGH, got uniform:1"),
        ("n", "int:1.5:4", r"^params\.n: int bounds must be integers"),
        ("lr", "uniform:a:b", r"^params\.lr: uniform bounds must be numbers"),
        ("x", "1,,2", r"^params\.x: empty choice in '1,,2'"),
        ("x", "1,1", r"^params\.x: repeated choice"),
        ("x", [[64, 64]], r"^params\.x: choices must be numbers, strings or booleans"),
        ("model..x", "1", r"^params\.model\.\.x: a parameter path is dotted keys"),
    ],
)
def test_param_form_errors(path: str, form: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_param(path, form)


def test_request_defaults_and_checks() -> None:
    grid = request(params={"training.learning_rate": "0.1,0.01", "model.params.dropout": [0, 0.2]})
    assert (grid.trials_total, grid.grid_size, grid.sampler, grid.parallel) == (4, 4, "tpe", 1)
    assert grid.prune is True
    assert grid.register_model is True
    assert grid.model_dump(by_alias=True)["register"] is True
    ranged = request(params={"training.learning_rate": "loguniform:1e-4:1e-2"})
    assert (ranged.trials_total, ranged.grid_size) == (10, None)
    assert request(params={"x": "1,2"}, trials=7, register=False).register_model is False
    cases = [
        ({"params": {"x": "uniform:0:1"}, "sampler": "grid"}, r"^sampler: the grid sampler"),
        ({"params": {"x": "1,2"}, "sampler": "grid", "trials": 3}, r"^trials: the grid has 2"),
        ({"params": {}}, r"^params: give at least one parameter"),
        ({"params": {"x": "uniform:2:1"}}, r"^params\.x: expected LOW < HIGH"),
        ({"params": {"x": "1"}, "metric": "auc"}, r"^metric: got 'auc'; allowed values"),
        ({"params": {"x": "1"}, "parallel": 0}, r"^parallel: must be >= 1"),
        ({"params": {"x": "1"}, "sampler": "cmaes"}, r"^sampler: got 'cmaes'"),
    ]
    for fields, message in cases:
        with pytest.raises(SpecError, match=message):
            request(**fields)
    with pytest.raises(SpecError, match=r"^spec: give exactly one"):
        SweepRequest.parse({"params": {"x": "1"}})


def test_trial_specs_and_path_checks() -> None:
    spec = TrainSpec.from_dict(SPEC)
    values = {"training.learning_rate": 0.01, "model.params.dropout": 0.2}
    trial = apply_params(spec.to_dict(), values)
    assert trial["training"]["learning_rate"] == 0.01
    assert trial["model"]["params"] == {"dropout": 0.2}
    assert spec.to_dict()["model"]["params"] == {}  # the base is left as it was
    assert TrainSpec.from_dict(trial).training.learning_rate == 0.01
    with pytest.raises(SpecError, match=r"^params\.training\.epochs\.x: training\.epochs is 2"):
        apply_params(spec.to_dict(), {"training.epochs.x": 1})

    ok = request(params={"training.learning_rate": "loguniform:1e-4:1e-2"}, metric="val_loss")
    assert check_sweep(ok, spec) == ("val_loss", "minimize")
    assert check_sweep(request(params={"training.epochs": "1,2"}), spec) == ("val_auc", "maximize")
    bad = [
        ({"model.naem": "mlp,bdt"}, r"^params\.model\.params\.naem: the mlp model has no param"),
        ({"model.params.hiden": "64"}, r"allowed: sizes, hidden, layers, dropout, activation$"),
        ({"training.epochs": "int:0:3"}, r"^params\.training\.epochs: must be >= 1, got 0"),
        ({"training.optimizer": "adam,lion"}, r"^params\.training\.optimizer: got 'lion'"),
        ({"training.epochs.x": "1,2"}, r"^params\.training\.epochs\.x: training\.epochs is 2"),
    ]
    for params, message in bad:
        with pytest.raises(SpecError, match=message):
            check_sweep(request(params=params), spec, builtin_params)
    # model.<key> that is no field of the model section is the model's parameter <key>
    hidden = request(params={"model.hidden": "64,128,256", "model.name": "mlp"})
    assert list(hidden.params) == ["model.params.hidden", "model.name"]
    assert check_sweep(hidden, spec, builtin_params) == ("val_auc", "maximize")
    with pytest.raises(SpecError, match="given twice"):
        request(params={"model.hidden": "64", "model.params.hidden": "128"})
    with pytest.raises(SpecError, match=r"^metric: got 'val_r2'; a binary job reports"):
        check_sweep(request(params={"training.epochs": "1,2"}, metric="val_r2"), spec)
    assert default_direction("val_mae") == "minimize"
    assert default_direction("val_accuracy") == "maximize"
