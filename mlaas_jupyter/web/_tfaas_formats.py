"""TFaaS's request and reply formats, translated to and from the core's.

TFaaS (github.com/vkuznet/TFaaS) scores one event per request: a ``Row`` of feature
names and values, ``{"keys": [...], "values": [...], "model": "<name>"}``, answered by
the model's output vector for that event (``[0.87]`` for one sigmoid output). Its
``GET /models`` lists each model's ``params.json`` (``TFParams``). These functions do
the translation only; the web handlers of :mod:`._tfaas` call the core with the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import SpecError

__all__ = ["TFaaSRow", "output_labels", "output_vectors", "parse_row", "tfaas_model"]

_ROW = '{"keys": ["x1", ...], "values": [1.5, ...], "model": "<name>"}'


class TFaaSRow:
    """One TFaaS request: the model it names (None: the default), keys and values."""

    def __init__(self, model: str | None, keys: list[str], values: list[Any]) -> None:
        self.model, self.keys, self.values = model, keys, values

    @property
    def one_event(self) -> bool:
        """True for TFaaS's own form, one event's values as a flat list (a list of
        lists holds several events: ours, answered by one vector per event)."""
        return any(not isinstance(v, list | dict) for v in self.values)

    def payload(self) -> dict[str, Any]:
        """The payload of the core's predictions (TFaaS keys/values)."""
        return {"keys": self.keys, "values": self.values}


def parse_row(body: Any) -> TFaaSRow:
    """The row of a ``POST /json`` body (``name`` is accepted for ``model``).

    Raises
    ------
    SpecError
        Naming the field that is missing, unknown or of the wrong type.
    """
    if not isinstance(body, Mapping):
        raise SpecError("body", f"send one TFaaS row as a JSON object: {_ROW}")
    unknown = sorted(set(body) - {"keys", "values", "model", "name"})
    if unknown:
        raise SpecError(unknown[0], f"unknown field; a TFaaS row is {_ROW}")
    keys, values = body.get("keys"), body.get("values")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise SpecError("keys", "must be a non-empty list of feature names")
    if not isinstance(values, list) or not values:
        raise SpecError("values", "must be a non-empty list: one event's values, in keys' order")
    named = [body[k] for k in ("model", "name") if body.get(k) not in (None, "")]
    if any(not isinstance(n, str) for n in named):
        raise SpecError("model", "must be the name of a served model (a string)")
    if len(set(named)) > 1:
        raise SpecError("name", f"names another model than 'model' ({named[1]!r} vs {named[0]!r})")
    return TFaaSRow(named[0] if named else None, keys, values)


def output_vectors(scores: Any, one_event: bool) -> list[Any]:
    """The model outputs as TFaaS replies them: one event's vector (``[p]`` for a
    binary model, the class probabilities of a multi-class one), or a list of them."""
    array = np.asarray(scores, dtype=np.float64)
    vectors = [np.atleast_1d(event).tolist() for event in array]
    if one_event:
        return vectors[0] if vectors else []
    return vectors


def output_labels(classes: list[str], width: int) -> list[str]:
    """The label of each output of a model (TFaaS's ``Class.label``): the class names
    of a multi-class model, the signal class of a binary one, else empty."""
    if len(classes) == width:
        return list(classes)
    if width == 1 and len(classes) == 2:
        return [classes[1]]
    return [""] * width


def tfaas_model(info: Mapping[str, Any]) -> dict[str, Any]:
    """A model of ours as an entry of TFaaS's ``GET /models`` (its ``TFParams`` fields,
    TensorFlow's graph-node fields empty, plus ours: version, task, classes, inputs)."""
    onnx = info["engine"] == "onnxruntime"
    return {
        "name": info["name"],
        "model": "model.onnx" if onnx else f"{info['backend']} model",
        "labels": ",".join(info["classes"]),
        "op": "",
        "input_name": "",
        "output_name": "",
        "img_channels": 0,
        "options": None,
        "input_node": "",
        "output_node": "",
        "description": f"{info['task']} {info['backend']} model, version {info['version']}",
        "timestamp": info["registered"] or info["created"],
        "version": info["version"],
        "task": info["task"],
        "classes": info["classes"],
        "inputs": list(info["inputs"]),
    }
