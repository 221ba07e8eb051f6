"""``mlaas compare`` on run folders: the text tables, ``--json``, ``--out``, and the
one-line errors with exit status 2 (job ids: tests/client/test_compare.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_folders import write_run_folder

from mlaas_jupyter.cli import main


@pytest.fixture
def folders(tmp_path: Path) -> list[str]:
    base = write_run_folder(tmp_path / "base", name="base")
    wide = write_run_folder(
        tmp_path / "wide",
        name="wide",
        model={"name": "mlp", "params": {"sizes": [64, 64]}},
        metrics={"auc": 0.9},
    )
    return [str(base), str(wide)]


def test_text_tables(folders: list[str], capsys: Any) -> None:
    assert main(["compare", *folders]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "metric                 base  wide",
        "auc                    0.8   0.9",
        "auc_weighted           0.79  0.79",
    ]
    assert "rejection_at_90        n/a   n/a" in lines
    assert "model.params.sizes  [16]  [64, 64]" in lines
    assert f"base  mlp (torch) sizes=[16]      {Path(folders[0]).resolve()}" in lines


def test_json_and_figure(folders: list[str], tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "compare.png"
    assert main(["compare", *folders, "--json", "--out", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in data["runs"]] == ["base", "wide"]
    assert data["differences"][0]["field"] == "model.params.sizes"
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_errors_are_one_line(folders: list[str], tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "empty").mkdir()
    cases = [
        ([folders[0]], "jobs: give at least 2 job ids or run folders to compare, got 1"),
        ([folders[0], str(tmp_path / "empty")], "not a run folder: it has no bundle/manifest"),
        ([*folders, "--out", "x.gif"], "path: 'x.gif': save as .png, .pdf, .svg"),
        ([folders[0], "not/a/dir"], "not/a/dir: no such run folder, nor a job id"),
    ]
    for argv, message in cases:
        assert main(["compare", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mlaas compare: error: ")
        assert message in err
        assert err.count("\n") == 1
