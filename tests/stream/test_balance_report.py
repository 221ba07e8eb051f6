"""What balancing did: each class's sum of weights before and after ``balance``.

Issue 22, item 5. Two classes of known weights (``tests/known_weights.py``: sums 600
and 400, every event in the training split) go through the statistics summary
(``mlaas stats --json``, ``POST stats``), the batch stream and ``mlaas stream``: with
``balance: weights`` both classes end with a sum of 500, and the weights streamed say
the same; ``sample`` keeps 300 of the 800 background events; ``none`` changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from known_weights import expected_balancing, write_known_weights

from mlaas_jupyter.cli import main
from mlaas_jupyter.errors import DataError
from mlaas_jupyter.specs import DatasetSpec
from mlaas_jupyter.stream import BatchStream, compute_stats
from mlaas_jupyter.stream.summary import stats_summary


def _approx(value: Any) -> Any:
    """``value`` with every float compared to within rounding."""
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    return pytest.approx(value) if isinstance(value, float) else value


@pytest.fixture
def known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    return write_known_weights(tmp_path, prefix=f"{tmp_path}/")


@pytest.mark.parametrize("method", ["weights", "sample", "none"])
def test_stats_report_the_sums_of_weights_before_and_after(
    known: dict[str, Any], method: str
) -> None:
    spec = DatasetSpec.from_dict({**known, "balance": method})
    summary = stats_summary(spec, compute_stats(spec))
    assert summary["balance"] == method
    assert summary["balancing"] == _approx(expected_balancing(method))


def test_the_stream_carries_the_balanced_weights(known: dict[str, Any]) -> None:
    spec = DatasetSpec.from_dict({**known, "balance": "weights"})
    stream = BatchStream(spec, "train", 128)
    sums = np.zeros(2)
    for batch in stream:
        sums += np.bincount(batch.y, weights=batch.w, minlength=2)
    assert sums.tolist() == pytest.approx([500.0, 500.0], rel=1e-6)  # signal, background
    assert stream.report.class_weights == _approx({0: 500.0, 1: 500.0})
    assert stream.report.class_events == {0: 300, 1: 800}
    assert stream.balance_report() == _approx(expected_balancing("weights"))


def test_a_class_that_cannot_be_balanced_is_reported_and_refused(
    known: dict[str, Any], tmp_path: Path
) -> None:
    from known_weights import _write

    _write(tmp_path / "kw_signal.root", np.tile([1.0, -1.0], 150))  # sums to 0
    spec = DatasetSpec.from_dict({**known, "balance": "weights"})
    report = stats_summary(spec, compute_stats(spec))["balancing"]
    problem = (
        "balance: weights: class 'signal' has 300 training events but a summed weight of 0; "
        "its yield cannot be equalised (with negative weights, try weights.negative: abs, or "
        "balance: sample)"
    )
    assert report["problem"] == problem
    assert report["classes"]["signal"]["factor"] == 0.0
    with pytest.raises(DataError) as caught:
        BatchStream(spec, "train", 128)
    assert str(caught.value) == problem


def test_a_regression_has_no_classes_to_balance(known: dict[str, Any]) -> None:
    data = {k: v for k, v in known.items() if k != "classes"}
    spec = DatasetSpec.from_dict(
        {
            **data,
            "files": list(known["classes"].values()),
            "target": "x",
            "branches": ["y"],
            "balance": "weights",
        }
    )
    assert stats_summary(spec, compute_stats(spec))["balancing"] is None


def test_mlaas_stats_and_stream_say_what_balancing_did(
    known: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "balanced.yaml"
    path.write_text(json.dumps({**known, "balance": "weights"}))
    assert main(["stats", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["balancing"] == _approx(expected_balancing("weights"))

    assert main(["stats", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("balance: weights (train split): sum of weights per class, before -> after")
    assert lines[start + 1].split() == ["signal", "600", "->", "500", "x0.8333"]
    assert lines[start + 2].split() == ["background", "400", "->", "500", "x1.25"]

    assert main(["stream", str(path), "--json"]) == 0
    streamed = json.loads(capsys.readouterr().out)
    assert streamed["classes"] == {"signal": 300, "background": 800}
    assert streamed["class_weights"] == _approx({"signal": 500.0, "background": 500.0})
    assert streamed["balancing"] == _approx(expected_balancing("weights"))

    path.write_text(json.dumps({**known, "balance": "sample"}))
    assert main(["stream", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("balance: sample (train split): sum of weights per class, before -> after")
    assert lines[start + 1].split() == ["signal", "600", "->", "600", "x1"]
    background = ["background", "400", "->", "150", "x1,", "300", "of", "800", "events"]
    assert lines[start + 2].split() == background
