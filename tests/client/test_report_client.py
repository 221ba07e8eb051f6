"""`Client.report` and `Job.report`: a real training run's report in process and from
its run folder (no server, no core); the errors of an unknown job and an old run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from report_examples import multiclass_report, write_report_folder

from mlaas_jupyter.client import Client, Job, Report
from mlaas_jupyter.client._report import report
from mlaas_jupyter.errors import NotFound, SourceError, SpecError
from mlaas_jupyter.examples import write_example_dataset


def _spec(folder: Path) -> dict[str, Any]:
    path = write_example_dataset(folder, events_per_file=1500, files_per_class=1)
    dataset = yaml.safe_load(path.read_text())
    dataset["classes"] = {
        k: [str(path.parent / g) for g in v] for k, v in dataset["classes"].items()
    }
    # a small report: the permutation ranking predicts (variables x repeats) times
    small = {"ranking_events": 300, "repeats": 1, "max_events": 2000}
    return {
        "dataset": dataset,
        "model": {"name": "bdt"},
        "training": {"epochs": 1, "report": small},
    }


@pytest.mark.slow
def test_the_report_of_a_finished_job_and_of_its_run_folder(isolated: Path) -> None:
    client = Client(transport="in-process")
    try:
        job = Job.submit(_spec(isolated / "data"), name="reported", client=client)
        job.wait(timeout=300, check=True)
        found = job.report
        assert isinstance(found, Report)
        run_dir = Path(job.info["run_dir"])
        written = json.loads((run_dir / "report.json").read_text())
        assert found.data == written  # report.json as training wrote it
        assert found.task == "binary"
        assert found.flagged == written["overtraining"]["flagged"]
        text = repr(found)
        assert text.startswith("training report\n")
        assert "overtraining check (KS p-value < 0.05 is flagged)" in text
        assert "signal eff. at bkg eff. 10%" in text
        # the page comes from the core, its plots inlined
        page = found.html()
        assert page.startswith("<!DOCTYPE html>")
        plots = sorted(p.name for p in (run_dir / "plots").glob("report_*.png"))
        assert plots
        assert len(re.findall(r"data:image/png;base64,", page)) == len(plots)

        with pytest.raises(NotFound, match="nosuchjob"):
            client.report("nosuchjob")
    finally:
        client.close()

    # the run folder alone: read here, the same report, the same page
    local = report(None, run_dir)
    assert local.data == written
    assert local.html() == page
    assert "<div class='mlaas-report'>" in local._repr_html_()
    saved = local.save(isolated / "report.html")
    assert saved.read_text(encoding="utf-8") == page


def test_a_run_folder_without_report(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    with pytest.raises(SourceError, match=r"old/report\.json: no training report here"):
        report(None, tmp_path / "old")
    with pytest.raises(SourceError, match="no such run folder, nor a job id"):
        report(None, "not/a folder")
    with pytest.raises(SpecError, match="job ids need a client"):
        report(None, "abc123")


def test_a_hand_written_report_as_text_html_and_file(tmp_path: Path) -> None:
    folder = write_report_folder(tmp_path / "run", multiclass_report())
    shown = report(None, str(folder))
    assert shown.task == "multiclass"
    assert shown.flagged == ["signal"]
    assert "confusion matrix" in shown.text()
    assert shown._repr_html_().count("data:image/png;base64,") == 2
    printed: list[str] = []

    class Printer:
        def text(self, value: str) -> None:
            printed.append(value)

    shown._repr_pretty_(Printer(), cycle=False)
    assert printed == [shown.text()]
    with pytest.raises(SpecError, match=r"save the report as \.html"):
        shown.save(tmp_path / "report.png")
    data = shown.data
    data["task"] = "changed"
    assert shown.task == "multiclass"  # data is a copy
