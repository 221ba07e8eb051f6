"""``mlaas stats`` and ``mlaas stream`` on the toy dataset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mlaas_jupyter import cli
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.stream import DatasetSpec, compute_stats
from mlaas_jupyter.stream.plan import SPLITS


@pytest.fixture
def spec_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    return write_example_dataset(tmp_path / "data", events_per_file=3000, files_per_class=2)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_stats_table_then_cache(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = compute_stats(DatasetSpec.from_file(spec_path), cache=False)
    code, out, err = run(["stats", str(spec_path)], capsys)
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert re.fullmatch(r"statistics of 4 files \(12000 events read, \d+\.\d\d s\)", lines[0])
    assert lines[1] == f"events: 12000 read, {stats.events_selected} pass the cuts"
    assert lines[2].split() == ["class", "train", "validation", "test", "yield", "negative", "w"]
    for line, name, c in ((lines[3], "background", 0), (lines[4], "signal", 1)):
        name_, *counts, yield_, negative = line.split()
        assert [name_, *counts] == [name, *map(str, stats.events[c])]
        assert float(yield_) == pytest.approx(sum(stats.weights[c]), rel=1e-5)
        assert negative == "0.00%"
    features = {line.split()[0]: line.split() for line in lines[6:] if line and line[0] != " "}
    assert features["feature"] == ["feature", "kind", "columns", "mean", "std", "min", "max"]
    assert features["MET_pt"][1:3] == ["flat", "1"]
    assert float(features["MET_pt"][3]) == pytest.approx(stats.features["MET_pt"].mean, rel=1e-3)
    assert features["Jet_pt"][1:3] == ["jagged", "6"]
    assert features["HT"][1:3] == ["flat", "1"]
    assert features["Jet.mask"][1:] == ["mask", "6"]
    assert "Jet_phi" not in features
    assert lines[-1] == "input width: 34 columns"
    assert list((tmp_path / "cache" / "stats").glob("*.json"))

    code, out, _ = run(["stats", str(spec_path)], capsys)
    assert code == 0
    assert re.fullmatch(r"statistics of 4 files \(cache, \d+\.\d\d s\)", out.splitlines()[0])
    code, out, _ = run(["stats", str(spec_path), "--no-cache", "--workers", "2"], capsys)
    assert "(12000 events read," in out.splitlines()[0]


def test_stats_json(spec_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stats = compute_stats(DatasetSpec.from_file(spec_path), cache=False)
    code, out, _ = run(["stats", str(spec_path), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    events = [[row["splits"][s]["events"] for s in SPLITS] for row in data["classes"].values()]
    assert events == stats.events
    assert list(data["classes"]) == ["background", "signal"]
    assert data["events_read"] == 12000
    assert set(data["features"]) == set(stats.features)
    assert data["features"]["Jet_pt"]["lengths"] == stats.features["Jet_pt"].lengths
    assert data["features"]["MET_pt"]["mean"] == pytest.approx(stats.features["MET_pt"].mean)


def test_stream_json_limit(spec_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["stream", str(spec_path), "--json", "--limit", "500"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["events"] == 500
    assert summary["x_shape"] == [500, 34]
    assert summary["x_dtype"] == "float32"
    assert summary["batches"] == 1
    assert summary["split"] == "train"
    assert set(summary["classes"]) <= {"background", "signal"}  # see test_limit_mixes_classes
    assert sum(summary["classes"].values()) == 500
    code, out, _ = run(
        ["stream", str(spec_path), "--json", "--limit", "500", "--batch-size", "128"], capsys
    )
    summary = json.loads(out)
    assert summary["x_shape"] == [128, 34]
    assert summary["batches"] == 4


def test_stream_text(spec_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stats = compute_stats(DatasetSpec.from_file(spec_path), cache=False)
    code, out, _ = run(
        ["stream", str(spec_path), "--split", "validation", "--no-shuffle", "--batch-size", "300"],
        capsys,
    )
    assert code == 0
    lines = out.splitlines()
    total = sum(stats.split_events("validation"))
    assert lines[0] == f"{-(-total // 300)} batches of up to 300 events, x (300, 34) float32"
    background, signal = stats.split_events("validation")
    assert lines[1] == (
        f"events: {total} (12000 read), per class: "
        f"{{'background': {background}, 'signal': {signal}}}"
    )
    assert lines[2].startswith("throughput: ")
    assert lines[3].startswith("columns: MET_pt, MET_phi, nJet, Jet_pt[0], ")
    assert lines[3].endswith("Jet.mask[4], Jet.mask[5]")


@pytest.mark.parametrize("command", ["stats", "stream"])
def test_bad_spec_exit_code_2(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    data = yaml.safe_load(spec_path.read_text())
    data["normalisation"] = "zscore"
    bad = spec_path.parent / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    code, out, err = run([command, str(bad)], capsys)
    assert code == 2
    assert out == ""
    assert err == (
        f"mlaas {command}: error: dataset.normalisation: got 'zscore'; "
        "allowed values are minmax, none, standard\n"
    )
    data["normalisation"] = "none"
    data["jagged"] = {"Jet_*": {"length": "longest"}}
    bad.write_text(yaml.safe_dump(data))
    code, _, err = run([command, str(bad)], capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert err.startswith(f"mlaas {command}: error: dataset.jagged.Jet_*.length: got 'longest'")
    code, _, err = run([command, str(tmp_path / "missing.yaml")], capsys)
    assert code == 2
    assert "missing.yaml: cannot read the spec file" in err


def test_data_error_exit_code_2(spec_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(spec_path.read_text())
    data["cuts"] = ["nJet > 99"]
    path = spec_path.parent / "empty.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = run(["stats", str(path)], capsys)
    assert code == 2
    assert err == (
        "mlaas stats: error: no events left: 12000 events read, none passes the cuts "
        "['nJet > 99']\n"
    )
    data["cuts"] = ["nJets > 1"]
    path.write_text(yaml.safe_dump(data))
    code, _, err = run(["stream", str(path)], capsys)
    assert code == 2
    assert "in expression 'nJets > 1': unknown branch 'nJets'; did you mean nJet" in err
