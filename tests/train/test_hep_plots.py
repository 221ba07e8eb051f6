"""The field's plots: rejection against efficiency on a log axis, score distributions
in expected events with stacked backgrounds, experiment labels, styles that do not leak."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from mlaas_jupyter.train._hep_plots import (
    EXPERIMENTS,
    draw_rejection,
    draw_yields,
    experiment_label,
    lumi_text,
    signal_scale,
)
from mlaas_jupyter.train.plots import new_figure, save_plots, styled

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EDGES = np.linspace(0.0, 1.0, 5).tolist()
YIELDS: dict[str, Any] = {
    "edges": EDGES,
    "classes": {
        "ttbar": [400.0, 300.0, 200.0, 100.0],
        "Wjets": [50.0, 40.0, 30.0, 20.0],
        "ttH": [0.1, 0.2, 0.3, 0.4],
    },
    "errors": {"ttbar": [20.0] * 4, "Wjets": [7.0] * 4, "ttH": [0.05] * 4},
    "signal": "ttH",
    "signal_scale": 1000.0,
    "title": "P(ttH)",
}
REJECTION = {
    "signal_efficiency": [0.1, 0.5, 0.9, 1.0],
    "background_rejection": [500.0, 40.0, 4.0, 1.0],
    "auc": 0.9234,
    "signal": "ttH",
}
ROC = {"curves": {"ttH": {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0], "auc": 0.9}}}
SCORES = {"edges": EDGES, "classes": {"ttbar": [0.4, 0.3, 0.2, 0.1], "ttH": [0.1, 0.2, 0.3, 0.4]}}


def test_rejection_is_log_scale_against_signal_efficiency() -> None:
    _, ax = new_figure()
    (line,) = draw_rejection(ax, REJECTION)
    assert ax.get_yscale() == "log"
    assert ax.get_xscale() == "linear"
    assert ax.get_xlabel().startswith("signal efficiency")
    assert ax.get_ylabel() == "background rejection $1/\\varepsilon_b$"
    assert line.get_xdata().tolist() == REJECTION["signal_efficiency"]
    assert line.get_ydata().tolist() == REJECTION["background_rejection"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ttH (AUC 0.923)"]


def test_yields_stack_the_backgrounds_and_draw_the_signal_scaled_on_top() -> None:
    _, ax = new_figure()
    drawn = draw_yields(ax, YIELDS)
    assert len(drawn["backgrounds"]) == 2  # one filled histogram per background
    assert len(drawn["signal"]) == 1
    stairs = {artist.stairs.get_label(): artist.stairs for artist in drawn["backgrounds"]}
    assert set(stairs) == {"ttbar", "Wjets"}
    assert all(patch.get_fill() for patch in stairs.values())
    np.testing.assert_allclose(stairs["ttbar"].get_data().baseline, 0.0)
    # stacked: Wjets sits on ttbar
    values, edges, baseline = stairs["Wjets"].get_data()
    np.testing.assert_allclose(baseline, YIELDS["classes"]["ttbar"])
    np.testing.assert_allclose(values, np.add(YIELDS["classes"]["ttbar"], [50, 40, 30, 20]))
    np.testing.assert_allclose(edges, EDGES)
    signal = drawn["signal"][0].stairs
    assert not signal.get_fill()
    np.testing.assert_allclose(signal.get_data()[0], [100.0, 200.0, 300.0, 400.0])  # x1000
    assert ax.get_ylabel() == "events / bin"
    assert ax.get_xlabel() == "P(ttH)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Wjets", "ttbar", "ttH $\\times$1000"]  # the top of the stack first
    assert ax.get_ylim()[1] >= 450.0 * 1.5  # room above the stack for the legend


def test_large_yields_name_their_power_of_ten_in_the_axis_label() -> None:
    _, ax = new_figure()
    large = {
        **YIELDS,
        "classes": {k: np.multiply(v, 1e5).tolist() for k, v in YIELDS["classes"].items()},
    }
    draw_yields(ax, large)
    assert ax.get_ylabel() == "$10^{7}$ events / bin"
    assert ax.yaxis.get_major_formatter()(2e7, 0) == "2"


@pytest.mark.parametrize("style", ["CMS", "ATLAS", "LHCb", "ALICE"])
def test_experiment_label_says_simulation_and_the_luminosity(style: str) -> None:
    with styled(style):
        figure, ax = new_figure(style)
        texts = [t.get_text() for t in experiment_label(ax, style, 138000.0)]
    assert texts[0] == style
    assert "Simulation" in texts
    assert "138 fb$^{-1}$" in texts
    assert figure.get_figwidth() * figure.get_dpi() == pytest.approx(600)


def test_plain_plots_state_simulation_and_luminosity_in_the_titles() -> None:
    _, ax = new_figure()
    experiment_label(ax, None, 36330.0)
    assert ax.get_title(loc="left") == "Simulation"
    assert ax.get_title(loc="right") == "36.3 fb$^{-1}$"
    _, ax = new_figure()
    experiment_label(ax, None, None)
    assert ax.get_title(loc="right") == ""


def test_luminosity_text_and_signal_scale() -> None:
    assert lumi_text(138000.0) == "138 fb$^{-1}$"
    assert lumi_text(300.0) == "0.3 fb$^{-1}$"
    assert lumi_text(3000000.0) == "3000 fb$^{-1}$"
    assert signal_scale(1.0, 1400.0) == 1000
    assert signal_scale(1.0, 30.0) == 20
    assert signal_scale(1.0, 7.0) == 5
    assert signal_scale(100.0, 300.0) == 1  # a visible signal is not scaled
    assert signal_scale(0.0, 300.0) == 1


@pytest.mark.parametrize("style", [None, *EXPERIMENTS])
def test_save_plots_writes_every_plot_without_warnings_or_leaking_the_style(
    tmp_path: Path, style: str | None
) -> None:
    before = dict(matplotlib.rcParams)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # font, layout or mplhep warnings would escape
        written = save_plots(
            tmp_path,
            [{"epoch": 1, "loss": 0.6, "val_loss": 0.7}, {"epoch": 2, "loss": 0.5}],
            ROC,
            SCORES,
            rejection=REJECTION,
            yields=YIELDS,
            style=style,
            luminosity=138000.0,
        )
    assert written == ["loss.png", "roc.png", "rejection.png", "scores.png"]
    for name in written:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    assert dict(matplotlib.rcParams) == before


def test_styled_applies_inside_only_and_refuses_unknown_styles() -> None:
    size = matplotlib.rcParams["font.size"]
    with styled("CMS"):
        assert matplotlib.rcParams["font.size"] == 26
        assert matplotlib.rcParams["figure.figsize"] == [10.0, 10.0]
    assert matplotlib.rcParams["font.size"] == size
    with pytest.raises(ValueError, match="style: no experiment style 'D0'"), styled("D0"):
        pass


def test_scores_fall_back_to_unit_area_without_yields(tmp_path: Path) -> None:
    assert save_plots(tmp_path, [], {"curves": {}}, SCORES) == ["scores.png"]
    assert (tmp_path / "scores.png").read_bytes()[:8] == PNG_MAGIC
    assert save_plots(tmp_path / "none", [], {"curves": {}}, {}) == []
