"""``mlaas sweep`` and ``mlaas sweeps``: a sweep of BDT jobs through the in-process core."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlaas_jupyter.cli import main
from mlaas_jupyter.cli.sweep import parse_params
from mlaas_jupyter.client import Client
from mlaas_jupyter.errors import SpecError
from mlaas_jupyter.examples import write_example_dataset

SPEC = """dataset:
  tree: Events
  classes: {background: [data/background_*.root], signal: [data/signal_*.root]}
  branches: [MET_pt, nJet]
model: {name: bdt}
training: {epochs: 1}
"""


@pytest.fixture
def workspace(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_example_dataset(isolated / "data", events_per_file=1000, files_per_class=1)
    (isolated / "train.yaml").write_text(SPEC)
    monkeypatch.chdir(isolated)
    return isolated


def test_param_options() -> None:
    assert parse_params(["a.b=1,2", " c = loguniform:1e-4:1e-2 "]) == {
        "a.b": "1,2",
        "c": "loguniform:1e-4:1e-2",
    }
    for bad, message in (
        (["a.b"], r"^--param: expected PATH=FORM"),
        (["=1,2"], r"^--param: expected PATH=FORM"),
        (["a=1", "a=2"], r"^--param: a is given twice"),
    ):
        with pytest.raises(SpecError, match=message):
            parse_params(bad)


@pytest.mark.slow
def test_sweep_then_list_show_delete(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "train.yaml", "--param", "model.params.max_depth=2,3", "--parallel", "2"]
    try:
        assert main([*argv, "--sampler", "grid", "--name", "cli-sweep", "--no-prune"]) == 0
        said = capsys.readouterr().out.splitlines()
        assert said[0].startswith("sweep ")
        assert "(cli-sweep): 2 trials, 2 at a time, grid sampler, maximize val_auc" in said[0]
        trials = [line for line in said if line.startswith("trial ")]
        assert len(trials) == 2
        assert all(": succeeded  val_auc 0." in line for line in trials)
        assert {line.rsplit(" ", 1)[-1] for line in trials} == {
            "model.params.max_depth=2",
            "model.params.max_depth=3",
        }
        assert any(
            line.startswith("best: trial ") and "-> model cli-sweep v1" in line for line in said
        )
        assert main(["sweeps", "list", "--json"]) == 0
        (record,) = json.loads(capsys.readouterr().out)
        assert (record["name"], record["state"], record["counts"]["done"]) == (
            "cli-sweep",
            "succeeded",
            2,
        )
        assert main(["sweeps", "show", record["id"]]) == 0
        table = capsys.readouterr().out
        assert "model.params.max_depth" in table
        assert "succeeded" in table
        assert main(["sweeps", "delete", record["id"]]) == 0
        assert json.loads(capsys.readouterr().out)["deleted"] is True
        assert main(["sweeps", "list"]) == 0
        assert capsys.readouterr().out == "no sweeps\n"
        assert main(["sweep", "train.yaml", "--param", "model.hiden=1,2"]) == 2
        assert "params.model.params.hiden: the bdt model has no" in capsys.readouterr().err
    finally:
        Client(transport="in-process").close()
