"""``%mlaas compare`` through IPython's own shell, on hand-written run folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from run_folders import write_run_folder

from mlaas_jupyter.client import Comparison


def test_compare_displays_the_comparison(shell: InteractiveShell, isolated: Path) -> None:
    write_run_folder(isolated / "base", name="base")
    write_run_folder(isolated / "ht", name="ht", dataset={"cuts": ["nJet >= 3"]})
    with capture_output() as captured:
        result = shell.run_line_magic("mlaas", "compare base ht --out both.svg")
    assert isinstance(result, Comparison)
    assert result.labels == ["base", "ht"]
    assert [d["field"] for d in result.differences] == ["dataset.cuts"]
    assert captured.stdout == "wrote both.svg\n"
    assert (isolated / "both.svg").read_bytes().lstrip().startswith(b"<?xml")
    shown, _ = shell.display_formatter.format(result)
    assert set(shown) >= {"text/plain", "text/html", "image/png"}
    assert "<td>dataset.cuts</td><td>[nJet &gt;= 2]</td>" in shown["text/html"]
    with capture_output() as captured:
        shell.run_line_magic("mlaas", "help")
    assert "  compare  finished runs side by side" in captured.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("compare", "%mlaas compare: the following arguments are required: ID"),
        ("compare base", "%mlaas compare: jobs: give at least 2 job ids or run folders"),
        ("compare base nothing", "%mlaas compare: no job with id 'nothing'"),
    ],
)
def test_compare_errors_are_one_line(
    shell: InteractiveShell, isolated: Path, line: str, message: str
) -> None:
    write_run_folder(isolated / "base", name="base")
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("mlaas", line)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
