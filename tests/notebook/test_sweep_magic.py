"""``%mlaas sweep`` and ``%mlaas sweeps`` through IPython's own shell (BDT trials)."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from mlaas_jupyter.client._sweep_table import SweepTable
from mlaas_jupyter.examples import write_example_dataset
from mlaas_jupyter.notebook import SweepView, magics
from mlaas_jupyter.notebook._magic_args import parse

SPEC = """dataset:
  tree: Events
  classes: {background: [data/background_*.root], signal: [data/signal_*.root]}
  branches: [MET_pt, nJet]
model: {name: bdt}
"""


def test_the_sweep_grammar_is_the_cli_s() -> None:
    line = (
        "sweep train.yaml --param model.params.max_depth=2,3 "
        "--param training.learning_rate=loguniform:1e-4:1e-2 --trials 12 --parallel 2"
    )
    command, args = parse(line)
    assert command == "sweep"
    assert args.param == [
        "model.params.max_depth=2,3",
        "training.learning_rate=loguniform:1e-4:1e-2",
    ]
    assert (args.trials, args.parallel, args.sampler, args.no_prune) == (12, 2, "tpe", False)
    for bad, message in (
        ("sweep train.yaml", "the following arguments are required: --param"),
        ("sweep missing.yaml --param a=1,2", "%mlaas sweep: no spec file 'missing.yaml'"),
        ("sweep train.yaml --param a=1 --sampler cmaes", "invalid choice: 'cmaes'"),
        ("sweeps --cancel", "%mlaas sweeps --cancel: give the sweep's ID"),
    ):
        with pytest.raises(UsageError, match=message):
            magics.MlaasMagics().mlaas(bad)


@pytest.mark.slow
def test_sweep_magic_returns_the_record(shell: InteractiveShell, isolated: Path) -> None:
    write_example_dataset(isolated / "data", events_per_file=1000, files_per_class=1)
    (isolated / "train.yaml").write_text(SPEC)
    line = "sweep train.yaml --param model.params.max_depth=2,3 --parallel 2 --name nb --wait"
    with capture_output() as captured:
        table = shell.run_line_magic("mlaas", line)
    assert isinstance(table, SweepView)
    assert captured.stdout.startswith(f"sweep {table.record['id']} (nb) submitted to ")
    record = table.record
    assert (record["state"], record["counts"]["done"], record["best"]["model"]) == (
        "succeeded",
        2,
        "nb",
    )
    text = repr(SweepTable(record))
    assert text.startswith(f"sweep {record['id']} (nb): succeeded, 2/2 trials (2 done)")
    assert "model.params.max_depth" in text
    assert "best: trial " in text
    page = table._repr_mimebundle_()["text/html"]
    assert "<table class='mlaas-sweep-trials'>" in page
    assert "<th>model.params.max_depth</th>" in page
    with capture_output():
        listed = shell.run_line_magic("mlaas", "sweeps")
        shown = shell.run_line_magic("mlaas", f"sweeps {record['id']}")
    assert listed == [text.splitlines()[0]]
    assert shown.record["id"] == record["id"]
    with pytest.raises(UsageError, match="has already ended"):
        shell.run_line_magic("mlaas", f"sweeps {record['id']} --cancel")
