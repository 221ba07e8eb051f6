"""`FeatureBuilder`: raw events to model matrices, exactly as the training pipeline built them.

Serving receives raw features (columns read from a file, JSON rows, TFaaS-style
``{"keys": [...], "values": [[...], ...]}``) and must turn them into the same
``(n, width)`` float32 vectors the model was trained on: new branches evaluated with
the same expressions, jagged branches sorted, clipped and padded, the same masks and
normalisation constants. The builder does that from a bundle manifest, on every event
(no cuts: every event gets a score).

Numbers given as Python values (lists, JSON) become ``float32`` when any of them is a
float (the precision of ROOT ``Float_t`` branches and of the model matrix) and
``int64`` when all are integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from ..errors import DataError
from ._feature_columns import _column
from ._feature_json import columns_from_keys_values, columns_from_rows
from .expressions import Expression, compile_expression, to_numpy_column
from .jagged import JaggedParts, jagged_parts
from .layout import FeatureLayout

__all__ = ["FeatureBuilder", "columns_from_keys_values", "columns_from_rows"]

KINDS = ("flat", "jagged", "fixed")


class FeatureBuilder:
    """Builds model matrices from raw input columns.

    Parameters
    ----------
    layout
        The feature layout of the model (columns, normalisation, jagged lengths).
    new_branches
        ``(name, expression)`` pairs in definition order, as in the dataset spec.
        Only those the layout needs (directly or through other new branches) are
        compiled and evaluated.
    inputs
        Raw branches an event must provide, with their kinds (``flat``, ``jagged``
        or ``fixed``).

    Raises
    ------
    DataError
        When an input kind is unknown or the layout needs a name that is neither an
        input nor a new branch.
    ExpressionError
        When a needed new-branch expression reads an unknown name.
    """

    def __init__(
        self,
        layout: FeatureLayout,
        new_branches: Sequence[tuple[str, str]],
        inputs: Mapping[str, str],
    ) -> None:
        self.layout = layout
        self.inputs: dict[str, str] = dict(inputs)
        bad = {name: kind for name, kind in self.inputs.items() if kind not in KINDS}
        if bad:
            raise DataError(f"unknown input kinds {bad}; allowed kinds are {', '.join(KINDS)}")
        defined = [str(name) for name, _ in new_branches]
        unknown = [n for n in layout.inputs if n not in self.inputs and n not in defined]
        if unknown:
            raise DataError(
                f"the layout needs {', '.join(unknown)}, which are neither inputs nor new branches"
            )
        needed = set(layout.inputs)
        chosen: list[tuple[str, Expression]] = []
        for index in reversed(range(len(new_branches))):
            name, text = new_branches[index]
            if name not in needed:
                continue
            expr = compile_expression(str(text), [*self.inputs, *defined[:index]])
            needed |= set(expr.names)
            chosen.append((str(name), expr))
        self.new_branches: list[tuple[str, Expression]] = chosen[::-1]
        self._kinds = {f.name: f.kind for f in layout.features}
        self._widths = {f.name: f.width for f in layout.features if f.kind == "fixed"}

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> FeatureBuilder:
        """The builder described by a bundle manifest (``layout``, ``new_branches``, ``inputs``)."""
        layout = FeatureLayout.from_dict(manifest["layout"])
        new_branches = [(str(name), str(text)) for name, text in manifest.get("new_branches", [])]
        inputs = {str(name): str(kind) for name, kind in dict(manifest["inputs"]).items()}
        return cls(layout, new_branches, inputs)

    @property
    def width(self) -> int:
        return self.layout.width

    def matrix(
        self, columns: Mapping[str, Any], strict: bool = True
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The ``(n, width)`` float32 matrix of the events in ``columns``.

        Parameters
        ----------
        columns
            One column per raw input: NumPy arrays, awkward arrays or lists (jagged
            inputs as lists of lists, fixed-size inputs as lists of equal-length lists).
        strict
            Reject names that are not inputs of the model (serving must not silently
            ignore features); with ``False`` they are ignored.

        Raises
        ------
        DataError
            Missing or (with ``strict``) unknown features, values of the wrong type
            (naming the feature and the row), or columns of different lengths.
        """
        missing = [name for name in self.inputs if name not in columns]
        if missing:
            raise DataError(
                f"missing input features: {', '.join(missing)} "
                f"(the model reads {', '.join(self.inputs)})"
            )
        if strict:
            extra = [str(name) for name in columns if name not in self.inputs]
            if extra:
                raise DataError(
                    f"unknown features: {', '.join(extra)} "
                    f"(the model reads {', '.join(self.inputs)})"
                )
        converted = {
            name: _column(name, kind, columns[name], self._widths.get(name))
            for name, kind in self.inputs.items()
        }
        lengths = {name: len(value) for name, value in converted.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"input columns have different lengths: {lengths}")
        n = next(iter(lengths.values()), 0)
        return self._fill(converted, n)

    def _fill(self, columns: dict[str, Any], n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        for name, expr in self.new_branches:
            value = expr.evaluate(columns)
            if isinstance(value, ak.Array):
                if value.ndim == 1:  # as the training pipeline does: flat -> NumPy, missing -> 0
                    value = np.asarray(to_numpy_column(value, expr))
            elif np.ndim(value) == 0:
                value = np.full(n, value)
            columns[name] = value
        flat: dict[str, np.ndarray[Any, Any]] = {}
        jagged: dict[str, JaggedParts] = {}
        for name in self.layout.inputs:
            value = columns[name]
            kind = self._kinds.get(name, self.inputs.get(name))
            if kind == "jagged" or (isinstance(value, ak.Array) and value.ndim > 1):
                jagged[name] = jagged_parts(value, name)
            else:
                flat[name] = np.asarray(value)
        return self.layout.fill(flat, jagged, np.arange(n))
