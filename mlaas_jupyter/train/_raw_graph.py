"""ONNX graphs around a bundle's models: named input groups or raw values in, scores out.

:func:`preprocessed_model` takes the groups of ``preprocess.json`` (``(n, vars,
length)`` float32 each) and lays their columns out in the model's column order.
:func:`raw_model` takes raw physics values and does what :meth:`FeatureLayout.fill
<mlaas_jupyter.stream.layout.FeatureLayout.fill>` does, in the graph:

* a flat variable is an input ``(n,)`` float32; a fixed-size array ``(n, width)``;
* a jagged branch is an input ``(n, L)`` float32 with any ``L`` (the same for the
  branches of one collection); each collection has one more input, ``<collection>.count``
  ``(n,)`` int64, the number of real objects of each event (``<= L``): slots past it
  are ignored;
* objects are sorted by the key branch (``TopK`` + ``GatherElements``; ties keep
  their order, NaN keys go last), clipped or padded to the trained length, normalised
  as ``(x - shift) * scale``, and padded slots hold the pad value as it is; masks are
  1 for the real objects;
* new branches are inputs by their new names (the caller computes the expressions).

Both wrap a LIST of inner models (``model.onnx`` of each fold, input ``x``, output
``score``): with k > 1 models a last int64 input ``(n,)``, the fold key (the ``fold_by``
branch or the entry number), picks per event the model of fold ``key % k``.
Only ONNX operators whose signature is the same from opset 11 on are used, so the
graph takes the inner models' opset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stream.layout import Feature, FeatureLayout
from ._preprocess_json import InputGroup, collection_name

__all__ = ["RawInput", "preprocessed_model", "raw_inputs", "raw_model"]

FLOAT, INT64 = "float32", "int64"


@dataclass(frozen=True)
class RawInput:
    """One input of ``model_raw.onnx``."""

    name: str
    kind: str  # flat | fixed | jagged | count | fold_key
    shape: tuple[int | str, ...]
    dtype: str
    collection: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "shape": list(self.shape)}
        out["dtype"] = self.dtype
        if self.collection is not None:
            out["collection"] = self.collection
        return out


def _collections(layout: FeatureLayout) -> dict[str, tuple[str, str]]:
    """Per jagged input: (collection name, count input name); members share them."""
    members: dict[str, list[str]] = {}
    for f in layout.features:
        if f.kind == "jagged":
            names = members.setdefault(f.group or f.name, [])
            names += [n for n in (f.name, f.sort_by) if n is not None and n not in names]
    out: dict[str, tuple[str, str]] = {}
    used: set[str] = set()
    for names in members.values():
        base = collection_name([n for n in names if n in _feature_names(layout)] or names)
        name, i = base, 2
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        for n in names:
            out[n] = (name, f"{name}.count")
    return out


def _feature_names(layout: FeatureLayout) -> set[str]:
    return {f.name for f in layout.features}


def raw_inputs(layout: FeatureLayout, fold_key: str | None = None) -> list[RawInput]:
    """The inputs of :func:`raw_model` in order: the layout's inputs (features, then sort
    keys), each collection's count, the fold key (k-fold only)."""
    kinds = {f.name: f for f in layout.features}
    collections = _collections(layout)
    inputs: list[RawInput] = []
    for name in layout.inputs:
        if name in collections:
            inputs.append(RawInput(name, "jagged", ("n", "L"), FLOAT, collections[name][0]))
        elif kinds[name].kind == "fixed":
            inputs.append(RawInput(name, "fixed", ("n", kinds[name].width), FLOAT))
        else:
            inputs.append(RawInput(name, "flat", ("n",), FLOAT))
    for collection, count in dict(collections.values()).items():
        inputs.append(RawInput(count, "count", ("n",), INT64, collection))
    if fold_key is not None:
        inputs.append(RawInput(fold_key, "fold_key", ("n",), INT64))
    return inputs


class _Graph:
    """Nodes and constants of the graph being built, with unique names."""

    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0
        self._cache: dict[Any, Any] = {}

    def name(self, hint: str) -> str:
        self._count += 1
        return f"mlaas_{hint}_{self._count}"

    def const(self, value: Any, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        array = np.asarray(value, dtype=dtype)
        name = self.name("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> Any:
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, inputs, names, **attrs))
        return names[0] if outputs == 1 else names

    def normalise(self, value: str, f: Feature) -> str:
        if f.shift != 0.0:
            value = self.op("Sub", [value, self.const(f.shift)])
        if f.scale != 1.0:
            value = self.op("Mul", [value, self.const(f.scale)])
        return value


def preprocessed_model(
    inners: Sequence[Any],
    layout: FeatureLayout,
    groups: list[InputGroup],
    fold_key: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Any:
    """The inner models fed from the named group inputs of ``preprocess.json``."""
    from onnx import TensorProto, helper

    g = _Graph()
    where: dict[str, tuple[str, int]] = {}
    inputs = []
    for group in groups:
        shape = ["n", len(group.features), group.length]
        inputs.append(helper.make_tensor_value_info(group.name, TensorProto.FLOAT, shape))
        for v, f in enumerate(group.features):
            where[f.name] = (group.name, v)
    columns = []
    for f in layout.features:
        name, v = where[f.name]
        columns.append(g.op("Gather", [name, g.const(v, np.int64)], axis=1))
    x = g.op("Concat", columns, axis=1)
    return _compose(g, inputs, [x] * len(inners), inners, fold_key, metadata or {})


def raw_model(
    inners: Sequence[Any],
    layout: FeatureLayout | Sequence[FeatureLayout],
    fold_key: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Any:
    """The inner models fed from raw values (see the module docstring). ``layout`` is
    one layout, or one per inner model (k-fold: each fold normalised by its own
    statistics); all must read the same inputs, those of the first."""
    from onnx import TensorProto, helper

    layouts = [layout] * len(inners) if isinstance(layout, FeatureLayout) else list(layout)
    if len(layouts) != len(inners):
        raise ValueError(f"{len(layouts)} layouts for {len(inners)} models")
    spec = raw_inputs(layouts[0], fold_key)
    for other in layouts[1:]:
        if [i.name for i in raw_inputs(other, fold_key)] != [i.name for i in spec]:
            raise ValueError("the models read different inputs")
    g = _Graph()
    types = {FLOAT: TensorProto.FLOAT, INT64: TensorProto.INT64}
    inputs = [helper.make_tensor_value_info(i.name, types[i.dtype], list(i.shape)) for i in spec]
    built: dict[FeatureLayout, str] = {}
    xs = [built.get(one) or built.setdefault(one, _layout_columns(g, one)) for one in layouts]
    return _compose(g, inputs, xs, inners, fold_key, metadata or {})


def _layout_columns(g: _Graph, layout: FeatureLayout) -> str:
    """The ``(n, width)`` model matrix of ``layout`` from the raw inputs."""
    from onnx import TensorProto

    collections = _collections(layout)
    columns = []
    for f in layout.features:
        if f.kind == "flat":
            value = g.op("Reshape", [f.name, g.const([-1, 1], np.int64)])
            columns.append(g.normalise(value, f))
        elif f.kind == "fixed":
            columns.append(g.normalise(f.name, f))
        elif f.kind == "jagged":
            values = _jagged_values(g, f, collections)
            valid = _valid(g, collections[f.name][1], f.width)
            normalised = g.normalise(values, f)
            columns.append(g.op("Where", [valid, normalised, g.const(f.pad_value)]))
        else:  # mask: 1 for the real objects, which sorting puts first
            valid = _valid(g, collections[f.mask_of[0]][1], f.width)
            columns.append(g.op("Cast", [valid], to=TensorProto.FLOAT))
    return str(g.op("Concat", columns, axis=1) if len(columns) > 1 else columns[0])


def _count_column(g: _Graph, count: str) -> str:
    key = ("count", count)
    if key not in g._cache:
        g._cache[key] = g.op("Reshape", [count, g.const([-1, 1], np.int64)])
    return str(g._cache[key])


def _valid(g: _Graph, count: str, width: int) -> str:
    """``(n, width)`` bool: slot ``j < count`` (the real objects after sorting)."""
    key = ("valid", count, width)
    if key not in g._cache:
        slots = g.const(np.arange(width).reshape(1, width), np.int64)
        g._cache[key] = g.op("Less", [slots, _count_column(g, count)])
    return str(g._cache[key])


def _padded(g: _Graph, name: str, width: int) -> str:
    """``(n, L + width)``: the branch with ``width`` slots more, so any ``L`` holds ``width``."""
    key = ("padded", name, width)
    if key not in g._cache:
        pads = g.const([0, 0, 0, width], np.int64)
        g._cache[key] = g.op("Pad", [name, pads, g.const(0.0)], mode="constant")
    return str(g._cache[key])


def _jagged_values(g: _Graph, f: Feature, collections: dict[str, tuple[str, str]]) -> str:
    """``(n, width)``: the first ``width`` objects of ``f``, sorted by its key if any."""
    padded = _padded(g, f.name, f.width)
    if f.sort_by is None:
        ends = g.const([f.width], np.int64)
        return str(g.op("Slice", [padded, g.const([0], np.int64), ends, g.const([1], np.int64)]))
    key = ("order", f.sort_by, f.descending, f.width)
    if key not in g._cache:
        keys = _padded(g, f.sort_by, f.width)
        length = g.op("Gather", [g.op("Shape", [keys]), g.const(1, np.int64)], axis=0)
        slots = g.op("Range", [g.const(0, np.int64), length, g.const(1, np.int64)])
        row = g.op("Reshape", [slots, g.const([1, -1], np.int64)])
        count = _count_column(g, collections[f.sort_by][1])
        real = g.op("And", [g.op("Less", [row, count]), g.op("Not", [g.op("IsNaN", [keys])])])
        last = g.const(-np.inf if f.descending else np.inf)
        ranked = g.op("Where", [real, keys, last])
        k = g.const([f.width], np.int64)
        _, order = g.op("TopK", [ranked, k], 2, axis=1, largest=int(f.descending), sorted=1)
        g._cache[key] = order
    return str(g.op("GatherElements", [padded, g._cache[key]], axis=1))


def _compose(
    g: _Graph,
    inputs: list[Any],
    xs: list[str],
    inners: Sequence[Any],
    fold_key: str | None,
    metadata: dict[str, str],
) -> Any:
    """One model: the nodes of ``g`` making ``xs``, each inner model (names prefixed)
    reading its own, and ``score``: the only model's, or per event fold ``key % k``'s."""
    import onnx
    from onnx import compose, helper

    if not inners:
        raise ValueError("no inner model")
    if len(inners) > 1 and fold_key is None:
        raise ValueError("several inner models need a fold key input")
    scores, functions, value_info = [], [], []
    opsets: dict[str, int] = {}
    for i, inner in enumerate(inners):
        model = compose.add_prefix(inner, f"fold{i}/")
        graph = model.graph
        constants = {t.name for t in graph.initializer}
        (inner_x,) = [v.name for v in graph.input if v.name not in constants]
        outputs = [v for v in graph.output if v.name.endswith("/score")] or list(graph.output)
        g.nodes.append(helper.make_node("Identity", [xs[i]], [inner_x]))
        g.nodes.extend(graph.node)
        g.initializers.extend(graph.initializer)
        value_info.extend(graph.value_info)
        functions.extend(model.functions)
        scores.append(outputs[0])
        for opset in model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    if opsets.setdefault("", 13) < 11:
        raise ValueError(f"the model's opset {opsets['']} is older than 11")
    result = scores[-1].name
    if len(inners) > 1 and fold_key is not None:
        rank = len(scores[0].type.tensor_type.shape.dim) or 1
        fold = g.op("Mod", [fold_key, g.const(len(inners), np.int64)])
        fold = g.op("Reshape", [fold, g.const([-1] + [1] * (rank - 1), np.int64)])
        for i in reversed(range(len(inners) - 1)):
            chosen = g.op("Equal", [fold, g.const(i, np.int64)])
            result = g.op("Where", [chosen, scores[i].name, result])
    g.nodes.append(helper.make_node("Identity", [result], ["score"]))
    output = onnx.ValueInfoProto()
    output.CopyFrom(scores[0])
    output.name = "score"
    graph = helper.make_graph(
        g.nodes, "mlaas_jupyter", inputs, [output], initializer=g.initializers
    )
    graph.value_info.extend(value_info)
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="mlaas-jupyter",
    )
    proto.ir_version = max(m.ir_version for m in inners)
    proto.functions.extend(functions)
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    return proto
