"""``SamplesEditor``: cross-sections, luminosity and event weights; the classes' yields.

The studio's "samples" step. What it sets is the normalisation part of the dataset
spec (``luminosity``, each class's ``xsec``, ``weights`` and ``balance``); the spec's
own validation judges it, and "yields" asks the statistics pass for each class's
events and expected yield after the cuts.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ipywidgets as w

from ...client import Client
from .._yields import YieldTable

__all__ = ["NO_WEIGHTS", "SamplesEditor"]

#: the weights choice that means: every event weighs 1
NO_WEIGHTS = "(none: every event weighs 1)"
_STYLE = {"description_width": "12em"}


def _number(box: w.Text, where: str) -> float | None:
    """The float typed in ``box`` (None when empty); a clear error naming the field."""
    text = box.value.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None


class SamplesEditor(w.VBox):  # type: ignore[misc]
    """Normalise the classes to their expected yields, and see those yields.

    Parameters
    ----------
    classes
        The class names, in label order (one cross-section field each).
    weight_branches
        The branches that may hold per-event weights (a tree's flat branches).
    dataset
        Called with no argument, returns the dataset spec mapping whose yields the
        "yields" button asks for (the studio's, with this step's choices applied).
    client
        Who computes the yields (default: a :class:`Client` made at the first click,
        the Jupyter server when one answers, as Train's).
    """

    def __init__(
        self,
        classes: Iterable[str],
        weight_branches: Iterable[str],
        dataset: Callable[[], Mapping[str, Any]] | None = None,
        *,
        client: Client | None = None,
    ) -> None:
        self.luminosity_box = w.Text(
            placeholder="pb^-1; empty: not normalised", description="luminosity", style=_STYLE
        )
        self.xsec_boxes = {
            name: w.Text(placeholder="pb", description=f"xsec of {name}", style=_STYLE)
            for name in classes
        }
        branches = list(weight_branches)
        self.weights_box = w.Dropdown(
            options=[NO_WEIGHTS, *branches],
            value=NO_WEIGHTS,  # as today unless chosen: an unweighted spec stays so
            description="event weights",
            style=_STYLE,
        )
        self.sum_tree_box = w.Text(placeholder="Runs", description="sum_w from tree", style=_STYLE)
        self.sum_branch_box = w.Text(placeholder="genEventSumw", description="branch")
        self.negative_box = w.ToggleButtons(
            options=["keep", "abs", "zero"], value="keep", description="negative weights"
        )
        self.balance_box = w.Dropdown(
            options=[
                ("none: classes as they come", "none"),
                ("weights: equal yields", "weights"),
                ("sample: equal event counts", "sample"),
            ],
            value="none",
            description="balance",
            style=_STYLE,
        )
        self.yields_button = w.Button(description="yields", icon="calculator")
        self.messages = w.HTML()
        self.yields_box = w.HTML()
        self.table: YieldTable | None = None
        self.dataset = dataset
        self.client = client
        super().__init__(
            [
                self.luminosity_box,
                *self.xsec_boxes.values(),
                self.weights_box,
                w.HBox([self.sum_tree_box, self.sum_branch_box]),
                self.negative_box,
                self.balance_box,
                w.HBox([self.yields_button, self.messages]),
                self.yields_box,
            ]
        )
        self.weights_box.observe(lambda _: self._enable(), names="value")
        self.yields_button.on_click(lambda _: self.show_yields())
        self._enable()

    def _enable(self) -> None:
        weighted = self.weights_box.value != NO_WEIGHTS
        for box in (self.sum_tree_box, self.sum_branch_box, self.negative_box):
            box.disabled = not weighted

    # -- the spec ----------------------------------------------------------------------

    @property
    def luminosity(self) -> float | None:
        return _number(self.luminosity_box, "luminosity")

    @property
    def xsecs(self) -> dict[str, float]:
        """Class -> cross-section (pb), for the classes that have one typed."""
        out = {}
        for name, box in self.xsec_boxes.items():
            value = _number(box, f"classes.{name}.xsec")
            if value is not None:
                out[name] = value
        return out

    def weights(self) -> dict[str, Any] | None:
        """The ``weights:`` mapping (None without a weights branch)."""
        if self.weights_box.value == NO_WEIGHTS:
            return None
        out: dict[str, Any] = {"branch": self.weights_box.value}
        tree, branch = self.sum_tree_box.value.strip(), self.sum_branch_box.value.strip()
        if tree or branch:
            if not (tree and branch):
                raise ValueError("weights.sum: give both the tree and the branch of sum_w")
            out["sum"] = {"tree": tree, "branch": branch}
        out["negative"] = self.negative_box.value
        return out

    def apply(self, dataset: Mapping[str, Any]) -> dict[str, Any]:
        """``dataset`` (a DatasetSpec mapping) with this step's choices: nothing
        added while the fields are left at their defaults."""
        out = dict(dataset)
        xsecs = self.xsecs
        if xsecs:
            classes = dict(out["classes"])
            for name, xsec in xsecs.items():
                if name not in classes:
                    raise ValueError(f"classes.{name}: no such class in the dataset")
                entry = classes[name]
                # a list of files becomes {files, xsec}; a {files, weight} mapping keeps
                # its weight
                base = dict(entry) if isinstance(entry, Mapping) else {"files": entry}
                classes[name] = {**base, "xsec": xsec}
            out["classes"] = classes
        for key, value in (("luminosity", self.luminosity), ("weights", self.weights())):
            if value is not None:
                out[key] = value
        if self.balance_box.value != "none":
            out["balance"] = self.balance_box.value
        return out

    # -- the yields --------------------------------------------------------------------

    def show_yields(self) -> YieldTable | None:
        """What "yields" does: the statistics pass of the dataset, shown as a table."""
        self.messages.value = "computing the yields..."
        try:
            if self.dataset is None:
                raise ValueError("no dataset to compute the yields of")
            if self.client is None:
                # as Train does: the Jupyter server when one answers, else in process
                # (not the magics' client: the widgets must not import the magics)
                self.client = Client()
            self.table = YieldTable(self.client.dataset_stats(self.dataset()))
        except Exception as err:  # shown next to the button, as the studio shows errors
            self.messages.value = (
                f"<span class='mlaas-error' style='color: var(--jp-error-color1)'>"
                f"{html.escape(str(err))}</span>"
            )
            return None
        self.messages.value = ""
        self.yields_box.value = self.table._repr_html_()
        return self.table
