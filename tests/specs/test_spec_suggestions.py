"""Spec mistakes answered with the nearest allowed name, and named by their full path.

Issue 22, item 4. Every spec model (dataset, training, model, cluster, prediction,
sweep and REST requests) refuses an unknown field in one place (``specs/_base.py``):
the message names the field from the spec's root (``dataset.branchs``, whether the
dataset came alone or inside a training spec) and, when an allowed name is close,
asks "did you mean ...?". A misspelt value of a fixed set gets the same help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter.cli import main
from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs import DatasetSpec, HistogramRequest, PredictSpec, TrainSpec, nearest
from mlaas_jupyter.specs.cluster import ClusterSpec
from mlaas_jupyter.specs.requests import JobRequest, ListJobsQuery, PredictFileRequest
from mlaas_jupyter.specs.sweep import SweepRequest, check_sweep
from mlaas_jupyter.train._builtin_models import builtin_params

DATASET: dict[str, Any] = {"classes": {"bkg": ["bkg.root"], "sig": ["sig.root"]}}
TRAINING: dict[str, Any] = {"dataset": DATASET, "model": {"name": "mlp"}}
#: what a dataset accepts (its fields and the alias "normalization"), as messages list it
DATASET_FIELDS = ", ".join(sorted({*DatasetSpec.model_fields, "normalization"}))


def _error(model: Any, data: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        model.parse(data)
    return caught.value


def test_nearest_name_is_the_close_one_or_none() -> None:
    assert nearest("branchs", ["branches", "balance", "tree"]) == "branches"
    assert nearest("Brnaches", ["branches", "balance"]) == "branches"  # case aside
    assert nearest("epoch", ["epochs", "epoch_cache_mb"]) == "epochs"
    assert nearest("colour", ["branches", "balance", "tree"]) is None
    assert nearest("gpu", ["auto", "cpu", "cuda"]) is None  # not close enough to guess


@pytest.mark.parametrize(
    ("model", "data", "field", "message"),
    [
        (
            DatasetSpec,
            {**DATASET, "branchs": ["Jet_*"]},
            "dataset.branchs",
            f"unknown field; did you mean branches? allowed fields are {DATASET_FIELDS}",
        ),
        (
            TrainSpec,
            {**TRAINING, "dataset": {**DATASET, "branchs": ["Jet_*"]}},
            "dataset.branchs",
            f"unknown field; did you mean branches? allowed fields are {DATASET_FIELDS}",
        ),
        (
            DatasetSpec,
            {**DATASET, "colour": "red"},
            "dataset.colour",
            f"unknown field; allowed fields are {DATASET_FIELDS}",  # nothing close
        ),
        (
            DatasetSpec,
            {"classes": {"bkg": "b.root", "sig": {"fles": "s.root", "weight": 2}}},
            "dataset.classes.sig.fles",
            "unknown field; did you mean files? allowed fields are files, samples, weight, xsec",
        ),
        (
            DatasetSpec,
            {**DATASET, "jagged": {"Jet_*": {"lenght": 4}}},
            "dataset.jagged.Jet_*.lenght",
            "unknown field; did you mean length? allowed fields are descending, length, mask, "
            "pad_value, quantile, sort_by",
        ),
        (
            DatasetSpec,
            {**DATASET, "normalisation": "standart"},
            "dataset.normalisation",
            "got 'standart'; did you mean standard? allowed values are minmax, none, standard",
        ),
        (
            TrainSpec,
            {"datset": DATASET},  # named as misspelt, not reported as "dataset: missing"
            "datset",
            "unknown field; did you mean dataset? allowed fields are cluster, dataset, model, "
            "notes, training",
        ),
        (
            TrainSpec,
            {**TRAINING, "training": {"learningrate": 0.1}},
            "training.learningrate",
            "unknown field; did you mean learning_rate? allowed fields are batch_size,",
        ),
        (
            TrainSpec,
            {**TRAINING, "model": {"name": "mlp", "parms": {}}},
            "model.parms",
            "unknown field; did you mean params? allowed fields are backend, file, name, params",
        ),
        (
            TrainSpec,
            {**TRAINING, "cluster": {"locl": {}}},
            "cluster.locl",
            "unknown field; did you mean local? allowed fields are gateway, jobqueue, local,",
        ),
        (
            ClusterSpec,
            {"locl": {}},
            "cluster.locl",
            "unknown field; did you mean local? allowed fields are gateway, jobqueue, local,",
        ),
        (
            PredictSpec,
            {"model": "jets", "files": ["a.root"], "ouput": "scores"},
            "predict.ouput",
            "unknown field; did you mean output? allowed fields are bundle, cluster, files,",
        ),
        (
            SweepRequest,
            {"spec": TRAINING, "params": {"training.epochs": "1,2"}, "trails": 3},
            "trails",
            "unknown field; did you mean trials? allowed fields are direction, executor,",
        ),
        (
            SweepRequest,
            {"spec": TRAINING, "params": {"training.epochs": "1,2"}, "sampler": "gird"},
            "sampler",
            "got 'gird'; did you mean grid? allowed values are grid, random, tpe",
        ),
        (
            JobRequest,
            {"spec_pth": "train.yaml"},
            "spec_pth",
            "unknown field; did you mean spec_path? allowed fields are executor, kernel_name, "
            "kind, name, spec, spec_path",
        ),
        (
            ListJobsQuery,
            {"limt": "3"},
            "limt",
            "unknown field; did you mean limit? allowed fields are kind, limit, name, state",
        ),
        (
            HistogramRequest,
            {"classes": {"s": ["s.root"]}, "brnch": "MET_pt"},  # not "give one of branch..."
            "brnch",
            "unknown field; did you mean branch? allowed fields are bins, branch, classes,",
        ),
        (
            PredictFileRequest,
            {"path": "a.root", "prefx": "nn"},
            "prefx",
            "unknown field; did you mean prefix? allowed fields are async, asynchronous,",
        ),
    ],
)
def test_unknown_fields_get_the_nearest_name_and_their_full_path(
    model: Any, data: dict[str, Any], field: str, message: str
) -> None:
    error = _error(model, data)
    assert error.field == field
    assert str(error).startswith(f"{field}: {message}")


def test_the_same_message_from_python_and_from_a_json_body() -> None:
    with pytest.raises(SpecError) as caught:
        DatasetSpec(classes=(), branchs=("x",))  # type: ignore[call-arg]
    assert caught.value.field == "dataset.branchs"
    body = _error(DatasetSpec, {**DATASET, "branchs": ["x"]})
    with pytest.raises(SpecError) as from_json:
        DatasetSpec.parse_json('{"classes": {"b": "b.root", "s": "s.root"}, "branchs": ["x"]}')
    assert str(from_json.value) == str(body) == str(caught.value)


def test_sweep_parameters_of_a_model_get_the_nearest_name() -> None:
    spec = TrainSpec.from_dict(TRAINING)
    request = SweepRequest.parse({"spec": TRAINING, "params": {"model.params.hiden": "64"}})
    with pytest.raises(SpecError) as caught:
        check_sweep(request, spec, builtin_params)
    assert caught.value.field == "params.model.params.hiden"
    assert "has no parameter 'hiden'; did you mean hidden? allowed: sizes" in str(caught.value)
    request = SweepRequest.parse({"spec": TRAINING, "params": {"training.epoch": "1,2"}})
    with pytest.raises(SpecError) as caught:
        check_sweep(request, spec)
    assert caught.value.field == "params.training.epoch"
    assert "training.epoch: unknown field; did you mean epochs?" in str(caught.value)


@pytest.mark.parametrize("inside_training", [False, True])
def test_cli_says_the_full_path_and_the_nearest_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inside_training: bool
) -> None:
    dataset = {**DATASET, "branchs": ["MET_*"]}
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump({**TRAINING, "dataset": dataset} if inside_training else dataset)
    )
    assert main(["stats", str(spec)]) == 2
    assert capsys.readouterr().err == (
        "mlaas stats: error: dataset.branchs: unknown field; did you mean branches? "
        f"allowed fields are {DATASET_FIELDS}\n"
    )
