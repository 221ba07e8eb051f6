"""``mlaas report`` on run folders: the text tables, ``--html``, ``--json``, and the
one-line errors with exit status 2 (jobs: tests/client/test_report_client.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from report_examples import regression_report, write_report_folder

from mlaas_jupyter.cli import main


def test_text(tmp_path: Path, capsys: Any) -> None:
    folder = write_report_folder(tmp_path / "run")
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "training report"
    assert lines[1].split() == ["task", "binary"]
    assert "overtraining check (KS p-value < 0.05 is flagged)" in lines
    signal = next(line for line in lines if line.endswith("overtrained?"))
    assert signal.split() == ["signal", "0.31", "0.0012", "overtrained?"]
    assert "signal eff. at bkg eff. 0.1%  0.05" in lines


def test_html_and_json(tmp_path: Path, capsys: Any) -> None:
    folder = write_report_folder(tmp_path / "run", regression_report())
    page = tmp_path / "out" / "report.html"
    page.parent.mkdir()
    assert main(["report", str(folder), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"wrote {page}")
    assert "bias and resolution by target" in out
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<h3>Regression" in text

    assert main(["report", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == regression_report()


def test_errors_are_one_line_with_status_2(tmp_path: Path, capsys: Any, isolated: Path) -> None:
    old = tmp_path / "old-run"
    old.mkdir()
    assert main(["report", str(old)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"mlaas report: error: {old}/report.json: no training report here")

    folder = write_report_folder(tmp_path / "run")
    assert main(["report", str(folder), "--html", str(tmp_path / "report.pdf")]) == 2
    assert "save the report as .html" in capsys.readouterr().err
    assert not (tmp_path / "report.pdf").exists()

    broken = write_report_folder(tmp_path / "broken")
    (broken / "report.json").write_text("{not json")
    assert main(["report", str(broken)]) == 2
    assert "the training report is not valid JSON" in capsys.readouterr().err

    assert main(["report", "no/such/folder"]) == 2
    assert capsys.readouterr().err == (
        "mlaas report: error: no/such/folder: no such run folder, nor a job id\n"
    )
    assert main(["report", "abc123def456"]) == 2  # the core in this process: no such job
    err = capsys.readouterr().err
    assert err.startswith("mlaas report: error: ")
    assert "abc123def456" in err
