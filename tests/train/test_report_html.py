"""The training report as an HTML page and as terminal text (hand-written reports)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from report_examples import (
    binary_report,
    multiclass_report,
    regression_report,
    write_report_folder,
)

from mlaas_jupyter.specs.report import Report
from mlaas_jupyter.train.report_html import report_html, report_text


def test_the_examples_are_valid_reports() -> None:
    for report in (binary_report(), multiclass_report(), regression_report()):
        assert Report.parse(report).task == report["task"]


def test_binary_page_has_every_section_and_inlines_the_plots(tmp_path: Path) -> None:
    folder = write_report_folder(tmp_path / "run")
    page = report_html(binary_report(), folder)
    assert page.startswith("<!DOCTYPE html>")
    for heading in (
        "Summary",
        "Overtraining check",
        "Variable ranking",
        "Correlation matrices",
        "Efficiencies (signal vs the rest)",
    ):
        assert f"<h3>{heading}" in page
    assert "Confusion matrix" not in page
    assert "Regression" not in page
    assert "Folds" not in page
    # two plots, inlined as the bytes of their files: no other file is needed
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert [base64.b64decode(i) for i in images] == [
        (folder / "plots/report_overtraining.png").read_bytes(),
        (folder / "plots/report_ranking.png").read_bytes(),
    ]
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    # the efficiency table: background efficiencies as percentages, in order
    labels = re.findall(r"signal eff\. at bkg eff\. ([0-9.]+%)", page)
    assert labels == ["0.1%", "1%", "10%", "30%"]
    assert "<td>0.62</td>" in page
    assert "<td>0.87</td>" in page
    assert "<td>0.43</td>" in page


def test_the_flagged_class_is_marked_and_the_threshold_said() -> None:
    page = report_html(binary_report(), None)
    rows = re.findall(r"<tr( class=flagged)?><td class=name>(\w+)</td>", page)
    assert ("", "background") in rows
    assert (" class=flagged", "signal") in rows
    assert "flagged when the p-value is below 0.05" in page
    assert "<td>0.0012</td>" in page
    assert "<img" not in page  # no run folder: no plots


def test_every_string_is_escaped() -> None:
    report = binary_report()
    evil = "<script>alert('x')</script>"
    report["classes"] = ["background", evil]
    report["signal"] = evil
    report["overtraining"]["classes"][evil] = report["overtraining"]["classes"].pop("signal")
    report["overtraining"]["flagged"] = [evil]
    report["ranking"]["variables"][0]["name"] = "a<b & c"
    report["correlations"]["variables"] = ["x>0", '"quoted"']
    page = report_html(report, None)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "a&lt;b &amp; c" in page
    assert "x&gt;0" in page
    assert "&quot;quoted&quot;" in page


def test_plots_outside_the_plots_folder_are_not_read(tmp_path: Path) -> None:
    folder = write_report_folder(tmp_path / "run")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    report = binary_report()
    report["plots"] = {"overtraining": "../secret.png", "ranking": "plots/report_ranking.png"}
    page = report_html(report, folder)
    images = [base64.b64decode(i) for i in re.findall(r"base64,([^']+)'", page)]
    assert b"\x89PNG secret" not in images
    # the PNG named by no key still comes, under "Other plots"
    assert (folder / "plots/report_overtraining.png").read_bytes() in images


def test_multiclass_confusion_one_vs_rest_and_folds() -> None:
    page = report_html(multiclass_report(), None, page=False)
    assert page.startswith("<div class='mlaas-report'>")
    assert "<html" not in page
    assert "<h3>Confusion matrix" in page
    assert "<h3>One vs rest" in page
    assert "<h3>Folds" in page
    assert "<td class=name>higgs</td><td>0.95</td>" in page
    # fold table: one row per fold, a column per numeric metric
    assert "<th class=name>fold</th><th>auc</th><th>loss</th>" in page
    assert "<td class=name>1</td><td>0.88</td><td>0.42</td>" in page
    # the normalised matrix as a heat map: the diagonal in red
    assert "background:rgba(214,39,40,0.72)'>0.9<" in page


def test_regression_residual_table() -> None:
    page = report_html(regression_report(), None)
    assert "<h3>Regression" in page
    assert "bias and resolution by target" in page
    assert "<td class=name>0</td><td>50</td><td>60</td><td>0.02</td><td>0.2</td>" in page
    assert "native (BDT split gain)" in page
    assert "Efficiencies" not in page


def test_text_tables_are_aligned() -> None:
    text = report_text(binary_report())
    assert text.startswith("training report\n")
    lines = text.splitlines()
    over = lines.index("overtraining check (KS p-value < 0.05 is flagged)")
    assert lines[over + 1].split() == ["class", "KS", "stat", "p-value", "check"]
    assert lines[over + 3].split() == ["signal", "0.31", "0.0012", "overtrained?"]
    # numbers to the right, names to the left
    assert lines[over + 2].index("0.61") + 4 == lines[over + 3].index("0.0012") + 6
    assert lines[over + 2].index("ok") == lines[over + 3].index("overtrained?")
    assert "signal eff. at bkg eff. 1%" in text
    assert "ROC integral" in text
    multi = report_text(multiclass_report())
    assert "confusion matrix (true class by row, row fractions)" in multi
    assert "folds" in multi
    regression = report_text(regression_report())
    assert "bias and resolution by target" in regression
    assert "efficiencies" not in regression


def test_a_report_model_renders_as_its_dict() -> None:
    model = Report.parse(binary_report())
    assert report_text(model) == report_text(model.model_dump(mode="json"))
    assert "<h3>Overtraining check" in report_html(model, None)
