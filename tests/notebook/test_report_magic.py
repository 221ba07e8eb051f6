"""``%mlaas report`` through IPython's own shell, on hand-written run folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from report_examples import multiclass_report, write_report_folder

from mlaas_jupyter.client import Report


def test_report_displays_the_report(shell: InteractiveShell, isolated: Path) -> None:
    write_report_folder(isolated / "run", multiclass_report())
    with capture_output() as captured:
        result = shell.run_line_magic("mlaas", "report run --html page.html")
    assert isinstance(result, Report)
    assert result.task == "multiclass"
    assert captured.stdout == "wrote page.html\n"
    assert (isolated / "page.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    shown, _ = shell.display_formatter.format(result)
    assert set(shown) >= {"text/plain", "text/html"}
    assert shown["text/plain"].startswith("training report\n")
    html = shown["text/html"]
    assert html.startswith("<div class='mlaas-report'>")
    assert "<tr class=flagged><td class=name>signal</td>" in html
    assert html.count("data:image/png;base64,") == 2
    with capture_output() as captured:
        shell.run_line_magic("mlaas", "help")
    assert "  report   a finished run's training report" in captured.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("report", "%mlaas report: the following arguments are required: ID_OR_RUN_DIR"),
        ("report old", "%mlaas report: old/report.json: no training report here"),
        ("report nothing", "%mlaas report: no job with id 'nothing'"),
        ("report no/where", "%mlaas report: no/where: no such run folder, nor a job id"),
    ],
)
def test_report_errors_are_one_line(
    shell: InteractiveShell, isolated: Path, line: str, message: str
) -> None:
    (isolated / "old").mkdir()
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("mlaas", line)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
