"""``preprocess.json``: a bundle's inputs in the form weaver writes and CMSSW reads.

weaver-core (``DataConfig.export_json``) writes, beside its ONNX model, a JSON file that
CMSSW's ONNX Runtime producers (``RecoBTag/FeatureTools`` ``ParticleNetConstructor`` and
``center_norm_pad``) read: ``input_names`` (the model's inputs, in order),
``output_names``, and per input group ``var_names``, ``var_infos`` (per variable
``median``, ``norm_factor``, ``replace_inf_value``, ``lower_bound``, ``upper_bound``,
``pad``) and ``var_length`` (or ``min_length``/``max_length``). CMSSW fills each group
``(n, vars, length)`` as ``clamp((x - median) * norm_factor, lower_bound, upper_bound)``
for the first ``length`` objects and ``pad`` for the rest: the pad value is written
after normalisation, exactly as :meth:`FeatureLayout.fill
<mlaas_jupyter.stream.layout.FeatureLayout.fill>` writes it (``layout._template``: pad
values are copied into the matrix as they are, only real values are normalised).

Groups of a bundle (:func:`input_groups`), in the order of their first column:
the flat variables as one group of length 1, each jagged collection (features sharing
``group``, length and sort) as one group of its length, each mask as its own group
(1 for a real object, 0 for padding; ``pad`` 0), each fixed-size array as its own group
of its width. CMSSW does not sort: the caller passes each collection's objects already
ordered by the group's ``sort_by`` (see the group's extra keys, which CMSSW ignores).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stream.layout import Feature, FeatureLayout

__all__ = ["InputGroup", "fill_groups", "groups_from_matrix", "input_groups", "preprocess_json"]

#: weaver's bounds when a variable is not clipped (``DataConfig.export_json``)
NO_BOUND = 1e32


@dataclass(frozen=True)
class InputGroup:
    """One named input ``(n, len(features), length)`` of ``model_preprocessed.onnx``."""

    name: str
    kind: str  # flat | jagged | mask | fixed
    features: tuple[Feature, ...]
    length: int
    sort_by: str | None = None
    descending: bool = True

    @property
    def var_names(self) -> list[str]:
        return [f.name for f in self.features]


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "input"


def collection_name(members: list[str]) -> str:
    """A collection's name from its branches: ``Jet_pt, Jet_eta`` -> ``Jet``."""
    # character-wise on purpose, as the layout names masks
    prefix = os.path.commonprefix(members).rstrip("_.") if len(members) > 1 else ""  # noqa: RUF071
    return prefix or members[0]


def input_groups(layout: FeatureLayout) -> list[InputGroup]:
    """The input groups of ``layout`` in the order of their first column."""
    keyed: dict[tuple[Any, ...], list[Feature]] = {}
    for f in layout.features:
        if f.kind == "flat":
            key: tuple[Any, ...] = ("flat",)
        elif f.kind == "jagged":
            key = ("jagged", f.group or f.name, f.width, f.sort_by, f.descending)
        else:
            key = (f.kind, f.name)
        keyed.setdefault(key, []).append(f)
    groups: list[InputGroup] = []
    used: set[str] = set()
    for key, features in keyed.items():
        kind = key[0]
        if kind == "flat":
            base = "flat_features"
        elif kind == "jagged":
            base = f"{_clean(collection_name([f.name for f in features]))}_features"
        elif kind == "mask":
            base = f"{_clean(features[0].name.removesuffix('.mask'))}_mask"
        else:
            base = _clean(features[0].name)
        name, i = base, 2
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        first = features[0]
        length = 1 if kind == "flat" else first.width
        sort = (first.sort_by, first.descending) if kind == "jagged" else (None, True)
        groups.append(InputGroup(name, kind, tuple(features), length, *sort))
    return groups


def output_names(task: str, classes: list[str], target: str | None) -> list[str]:
    """What the ``score`` output holds: one name per column (binary: the signal's
    probability, one column; multiclass: one per class; regression: the target)."""
    if task == "binary":
        return [classes[-1]]
    if task == "multiclass":
        return list(classes)
    return [target or "target"]


def preprocess_json(
    layout: FeatureLayout, task: str, classes: list[str], target: str | None = None
) -> dict[str, Any]:
    """The ``preprocess.json`` mapping of ``layout`` (see the module docstring)."""
    groups = input_groups(layout)
    data: dict[str, Any] = {
        "output_names": output_names(task, classes, target),
        "input_names": [g.name for g in groups],
    }
    for g in groups:
        infos = {}
        for f in g.features:
            infos[f.name] = {
                "median": float(f.shift),
                "norm_factor": float(f.scale),
                "replace_inf_value": 0,
                "lower_bound": -NO_BOUND,
                "upper_bound": NO_BOUND,
                "pad": float(f.pad_value) if f.kind == "jagged" else 0.0,
            }
        entry: dict[str, Any] = {"var_names": g.var_names, "var_infos": infos}
        entry["var_length"] = g.length
        # extra keys, ignored by CMSSW: how the caller must prepare the objects
        entry["kind"] = g.kind
        if g.kind == "jagged":
            entry["sort_by"] = g.sort_by
            entry["descending"] = g.descending
        if g.kind == "mask":
            entry["mask_of"] = list(g.features[0].mask_of)
        data[g.name] = entry
    data["mlaas"] = {
        "model": "model_preprocessed.onnx",
        "input_shapes": {g.name: ["n", len(g.features), g.length] for g in groups},
        "pad": "written after normalisation: padded slots hold 'pad' as it is",
        "mask": "mask groups hold 1 for each real object (before clipping) and 0 for padding",
        "sorting": "jagged groups: objects sorted by 'sort_by' (descending unless "
        "'descending' is false) before clipping to var_length; CMSSW does not sort",
    }
    return data


def groups_from_matrix(
    layout: FeatureLayout, groups: list[InputGroup], x: np.ndarray[Any, Any]
) -> dict[str, np.ndarray[Any, np.dtype[np.float32]]]:
    """The group tensors ``(n, vars, length)`` holding the columns of the model matrix ``x``."""
    out: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
    for g in groups:
        blocks = [x[:, f.offset : f.offset + f.width] for f in g.features]
        out[g.name] = np.ascontiguousarray(np.stack(blocks, axis=1), dtype=np.float32)
    return out


def fill_groups(
    preprocess: Mapping[str, Any],
    groups: list[InputGroup],
    values: Mapping[str, np.ndarray[Any, Any]],
    counts: Mapping[str, np.ndarray[Any, Any]],
) -> dict[str, np.ndarray[Any, np.dtype[np.float32]]]:
    """Fill the group tensors from raw values as CMSSW's ``center_norm_pad`` does,
    reading only ``preprocess`` (names, medians, norm factors, bounds, pads, lengths).

    ``values`` holds each variable's raw values: ``(n,)`` for flat ones, ``(n, width)``
    for fixed ones, ``(n, L)`` for jagged ones with their objects already sorted (the
    caller's job); ``counts`` holds each jagged or mask group's objects per event.
    Masks are made from the counts (1 for a real object).
    """
    out: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
    for g in groups:
        entry = preprocess[g.name]
        length = int(entry["var_length"])
        n = len(next(iter(counts.values()))) if counts else len(next(iter(values.values())))
        block = np.zeros((n, len(entry["var_names"]), length), dtype=np.float32)
        count = counts.get(g.name)
        for v, name in enumerate(entry["var_names"]):
            info = entry["var_infos"][name]
            if g.kind == "mask":
                raw = np.ones((n, length), dtype=np.float32)
            else:
                raw = np.asarray(values[name], dtype=np.float32).reshape(n, -1)[:, :length]
            raw = np.where(np.isfinite(raw), raw, np.float32(info["replace_inf_value"]))
            scaled = (raw - np.float32(info["median"])) * np.float32(info["norm_factor"])
            scaled = np.clip(scaled, info["lower_bound"], info["upper_bound"]).astype(np.float32)
            if count is not None:
                real = np.arange(scaled.shape[1]) < np.asarray(count).reshape(-1, 1)
                scaled = np.where(real, scaled, np.float32(info["pad"]))
            block[:, v, : scaled.shape[1]] = scaled
            block[:, v, scaled.shape[1] :] = np.float32(info["pad"])
        out[g.name] = block
    return out
