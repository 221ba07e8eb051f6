"""PredictSpec (prediction jobs) and HistogramRequest (POST histograms): defaults,
paths, round trips, field errors and the JSON Schema."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.specs import HistogramRequest, PredictSpec, is_prediction

PREDICT: dict[str, Any] = {"bundle": "/m/higgs/1", "files": "/d/*.root", "output": "/out"}


def test_defaults_round_trip_and_job_spec() -> None:
    spec = PredictSpec.from_dict(PREDICT)
    assert spec.files == ("/d/*.root",)
    assert (spec.tree, spec.prefix, spec.step_size) == (None, "score", "64 MB")
    assert (spec.model, spec.version) == (None, None)
    job = spec.to_dict()
    assert list(job) == ["predict"]
    assert job["predict"]["files"] == ["/d/*.root"]
    assert json.loads(json.dumps(job)) == job
    assert is_prediction(job)
    assert not is_prediction({"dataset": {}})
    assert PredictSpec.from_dict(job["predict"]) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert spec.job_name() == "predict-1"
    assert spec.model_copy(update={"model": "higgs"}).job_name() == "predict-higgs"


def test_relative_paths_from_base_dir(tmp_path: Path) -> None:
    data = {"bundle": "b", "files": ["x/*.root", "root://eos//a.root"], "output": "out"}
    spec = PredictSpec.from_dict(data, base_dir=tmp_path)
    assert spec.bundle == str(tmp_path / "b")
    assert spec.files == (str(tmp_path / "x/*.root"), "root://eos//a.root")
    assert spec.output == str(tmp_path / "out")
    assert PredictSpec.from_dict(data).bundle == "b"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"bundle": None}, "predict.bundle", "expected a non-empty string, got None"),
        ({"files": []}, "predict.files", "give at least one file, folder or glob"),
        ({"files": 3}, "predict.files", "expected a string or a list of strings, got 3"),
        ({"files": ["a", ""]}, "predict.files[1]", "expected a non-empty string, got ''"),
        ({"step_size": 0}, "predict.step_size", "must be >= 1, got 0"),
        (
            {"step_size": True},
            "predict.step_size",
            "expected a number of entries or a size such as '32 MB', got True",
        ),
        ({"version": 0}, "predict.version", "must be >= 1, got 0"),
        ({"version": "2"}, "predict.version", "expected an integer, got '2'"),
        ({"prefix": " "}, "predict.prefix", "expected a non-empty string, got ' '"),
        (
            {"colour": "red"},
            "predict.colour",
            "unknown field; allowed fields are bundle, cluster, files, model, output, prefix, "
            "step_size, tree, version",
        ),
    ],
)
def test_prediction_errors(change: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        PredictSpec.from_dict({**PREDICT, **change})
    assert info.value.field == field
    assert str(info.value) == f"{field}: {message}"


def test_missing_fields_and_outputs() -> None:
    with pytest.raises(SpecError, match=r"^predict\.files: missing$"):
        PredictSpec.from_dict({"bundle": "b"})
    # no output: scores/ beside each input, where the inputs' globs do not reach
    beside = PredictSpec.from_dict({"bundle": "b", "files": "a"})
    assert beside.output is None
    assert not beside.single_file
    assert beside.outputs_for(["/d/x.root", "/e/y.root", "file:///f/z.root"]) == [
        Path("/d/scores/x_score.root"),
        Path("/e/scores/y_score.root"),
        Path("/f/scores/z_score.root"),
    ]
    with pytest.raises(SpecError, match=r"^predict\.output: root://h//x\.root is remote"):
        beside.outputs_for(["root://h//x.root"])
    with pytest.raises(SpecError, match=r"would both write /d/scores/x_score\.root"):
        beside.outputs_for(["/d/x.root", "/d/x.parquet"])
    with pytest.raises(SpecError, match=r"^predict: expected a mapping, got list"):
        PredictSpec.from_dict(["b"])
    folder = PredictSpec.from_dict({**PREDICT, "prefix": "nn"})
    assert folder.outputs_for(["/d/x.root"]) == [Path("/out/x_nn.root")]
    single = PredictSpec.from_dict({**PREDICT, "output": "/out/s.ROOT"})
    assert single.single_file
    with pytest.raises(SpecError, match="2 files match"):
        single.outputs_for(["/d/x.root", "/d/y.root"])


def test_prediction_schema() -> None:
    schema = PredictSpec.model_json_schema()
    assert schema["required"] == ["bundle", "files"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["step_size"]["anyOf"][0] == {"minimum": 1, "type": "integer"}


# -- HistogramRequest -------------------------------------------------------------------
BODY: dict[str, Any] = {"classes": {"s": "sig.root", "b": ["b1.root", "b2.root"]}, "branch": "x"}


def test_histogram_request_values_and_cap() -> None:
    request = HistogramRequest.from_dict({**BODY, "range": [0, 10], "cuts": "x > 1"})
    assert request.expression == "x"
    assert request.classes == {"s": ("sig.root",), "b": ("b1.root", "b2.root")}
    assert (request.bins, request.range, request.cuts) == (50, (0.0, 10.0), ("x > 1",))
    assert request.max_events is None
    assert request.events_per_class == 1_000_000
    assert HistogramRequest.from_dict(BODY, cap=500).max_events == 500
    assert HistogramRequest.from_dict({**BODY, "max_events": 100}, cap=500).max_events == 100
    assert HistogramRequest.from_dict({**BODY, "max_events": 900}, cap=500).max_events == 500
    python = HistogramRequest(classes={"s": ["sig.root"]}, expression="x * 2", bins=7)
    assert (python.expression, python.bins) == ("x * 2", 7)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"classes": {}}, "classes", "give at least one class: name -> list of files"),
        ({"classes": ["a.root"]}, "classes", "expected a mapping, got list"),
        ({"expression": "y"}, "branch", "give exactly one of branch or expression"),
        ({"branch": ""}, "branch", "expected a non-empty string, got ''"),
        ({"bins": 0}, "bins", "must be >= 1, got 0"),
        ({"bins": 20_000}, "bins", "must be <= 10000, got 20000"),
        ({"range": [5, 1]}, "range", "need finite low < high, got [5.0, 1.0]"),
        ({"range": [1]}, "range", "expected [low, high], got [1]"),
        ({"range": [0, "high"]}, "range[1]", "expected a number, got 'high'"),
        ({"max_events": True}, "max_events", "expected an integer, got True"),
        ({"colour": "red"}, "colour", "unknown field; allowed fields are bins, branch, classes"),
    ],
)
def test_histogram_request_errors(change: dict[str, Any], field: str, message: str) -> None:
    body = {**BODY, **change}
    with pytest.raises(SpecError) as info:
        HistogramRequest.from_dict(body)
    assert info.value.field == field
    assert message in str(info.value)


def test_histogram_request_schema() -> None:
    schema = HistogramRequest.model_json_schema()
    assert schema["required"] == ["classes"]
    assert {"branch", "expression"} <= set(schema["properties"])
    assert schema["properties"]["classes"]["type"] == "object"
    assert schema["properties"]["bins"]["maximum"] == 10_000
