"""Ctrl-C during ``mlaas train``: one line, a resumable run, and ``--resume`` that finds it.

Issue 22, item 3. A real ``mlaas train`` runs in a subprocess with the process loader
(whose child used to print a ``KeyboardInterrupt`` traceback of its own) and gets
SIGINT after its first epoch event, sent to its whole process group as a terminal's
Ctrl-C is. It must say one line (how to resume), exit with 130 and leave its
checkpoint and no bundle; ``--resume`` then continues it, with ``--run-dir`` or by
finding the latest run of the same spec, and says when there is nothing to resume.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlaas_jupyter.cli import main
from mlaas_jupyter.examples import write_example_dataset

EPOCHS = 30  # many more than the first epoch: the run is still training when stopped
#: the exit of an interrupted run: 130, or death by SIGINT where the KeyboardInterrupt
#: came out of a nested interpreter call (``PyRun_String``, as pybind11's exec makes):
#: CPython then ends a ``python -m`` run with the signal, though the CLI caught it and
#: returned 130; a shell reports 130 for both
INTERRUPTED = (130, -signal.SIGINT)


def _write_spec(folder: Path) -> Path:
    dataset = write_example_dataset(folder / "data", events_per_file=600, files_per_class=1)
    training = {
        "dataset": yaml.safe_load(dataset.read_text()),
        "model": {"name": "mlp", "params": {"sizes": [8]}},
        "training": {
            "epochs": EPOCHS,
            "batch_size": 64,
            "loader": "process",
            "device": "cpu",
            "early_stopping": None,
            "epoch_cache_mb": 0,  # every epoch reads through the loader process
            "output": str(folder / "runs"),
        },
    }
    spec = folder / "data" / "train.yaml"
    spec.write_text(yaml.safe_dump(training))
    return spec


def _interrupted_run(spec: Path, *extra: str) -> tuple[int, str]:
    """Start ``mlaas train`` and press Ctrl-C after its first epoch: (exit code, stderr)."""
    env = {**os.environ, "MLAAS_CACHE_DIR": str(spec.parent.parent / "cache")}
    command = [sys.executable, "-m", "mlaas_jupyter", "train", str(spec), "--json", *extra]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # a process group of its own, as a terminal's job has
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:  # --json: the events, one per line
            if json.loads(line)["type"] == "epoch":
                break
        else:
            pytest.fail(f"the run ended before its first epoch: {process.communicate()}")
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _resume_arguments(line: str) -> list[str]:
    """The ``mlaas train ...`` command that the interrupted line gives, as main's argv."""
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[:2] == ["mlaas", "train"]
    return command[2:]


def _assert_resumable(line: str, spec: Path) -> Path:
    """The run folder named by an interrupted run's line: a checkpoint, no bundle."""
    assert line.startswith("mlaas train: interrupted after epoch "), line
    assert f" of {EPOCHS}, checkpointed in " in line
    arguments = _resume_arguments(line)
    assert arguments[0] == str(spec)
    assert arguments[-3] == "--run-dir"
    assert arguments[-1] == "--resume"
    run = Path(arguments[-2])
    progress = json.loads((run / "checkpoint" / "progress.json").read_text())
    assert 1 <= progress["epoch"] < EPOCHS
    assert line.startswith(f"mlaas train: interrupted after epoch {progress['epoch']} ")
    assert not (run / "bundle").exists()
    assert not list(run.glob(".bundle.partial-*"))
    assert json.loads((run / "run.json").read_text())["spec_key"]
    return run


@pytest.mark.slow
def test_ctrl_c_says_one_line_and_resume_continues_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLAAS_CACHE_DIR", str(tmp_path / "cache"))
    spec = _write_spec(tmp_path)

    code, stderr = _interrupted_run(spec)
    assert code in INTERRUPTED
    assert "Traceback" not in stderr, stderr
    assert "KeyboardInterrupt" not in stderr, stderr
    assert len(stderr.splitlines()) == 1, stderr
    first_line = stderr.strip()
    first = _assert_resumable(first_line, spec)

    code, stderr = _interrupted_run(spec)  # a second, later run of the same spec
    assert code in INTERRUPTED
    assert len(stderr.splitlines()) == 1, stderr
    second = _assert_resumable(stderr.strip(), spec)
    assert second != first

    # the command the line gives continues the first run, in its folder (trained to two
    # epochs more than it had, not to the end: --epochs does not change what is resumed)
    epoch = json.loads((first / "checkpoint" / "progress.json").read_text())["epoch"]
    command = [*_resume_arguments(first_line), "--epochs", str(epoch + 2), "--json"]
    assert main(["train", *command]) == 0
    events = _events(capsys.readouterr().out)
    notes = [e["message"] for e in events if e["type"] == "note"]
    assert f"resumed from the checkpoint of epoch {epoch}" in notes
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [epoch + 1, epoch + 2]
    assert (first / "bundle" / "manifest.json").is_file()

    # without --run-dir: the latest unfinished run of this spec, the second one
    epoch = json.loads((second / "checkpoint" / "progress.json").read_text())["epoch"]
    assert main(["train", str(spec), "--resume", "--epochs", str(epoch + 1), "--json"]) == 0
    events = _events(capsys.readouterr().out)
    assert events[0] == {**events[0], "type": "start", "run_dir": str(second)}
    notes = [e["message"] for e in events if e["type"] == "note"]
    assert notes[0] == f"resuming the latest run of this spec, {second}"
    assert (second / "bundle" / "manifest.json").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        [first.name, second.name]
    )  # no fresh run was started

    # and now the latest run has finished: nothing to resume, and no new run folder
    assert main(["train", str(spec), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"mlaas train: error: nothing to resume: the latest run of this spec, {second}, has "
        f"finished (its bundle is {second / 'bundle'}); train without --resume "
        "(training.resume) to start another\n"
    )
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_resume_with_nothing_to_resume_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _write_spec(tmp_path)
    assert main(["train", str(spec), "--resume"]) == 2
    runs = tmp_path / "runs"
    assert capsys.readouterr().err == (
        f"mlaas train: error: nothing to resume: no run of this spec under {runs}/ has a "
        "checkpoint (a run checkpoints after each epoch); train without --resume "
        "(training.resume) to start one\n"
    )
    assert not runs.exists() or list(runs.iterdir()) == []  # no run was started

    empty = tmp_path / "empty-run"
    assert main(["train", str(spec), "--run-dir", str(empty), "--resume"]) == 2
    assert capsys.readouterr().err == (
        f"mlaas train: error: nothing to resume in {empty}: it has no checkpoint "
        "(checkpoint/progress.json); train without --resume to start a run there\n"
    )
    assert not empty.exists()
