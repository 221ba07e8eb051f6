"""Jagged helpers against naive pure-Python references: jagged_parts, PadPlan/pad_clip,
sort_order/apply_order, on every awkward layout the stream can meet."""

from __future__ import annotations

import math
from typing import Any

import awkward as ak
import numpy as np
import pytest

from mlaas_jupyter.errors import DataError
from mlaas_jupyter.stream.jagged import (
    JaggedParts,
    PadPlan,
    apply_order,
    jagged_parts,
    pad_clip,
    sort_order,
)


def random_lists(seed: int, n: int = 200, dtype: Any = np.float32) -> list[list[Any]]:
    """Lists with many empty ones and some much longer than the pad lengths used."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.5, n)
    counts[rng.random(n) < 0.2] = 0
    counts[rng.random(n) < 0.05] = 12
    if np.dtype(dtype).kind == "i":
        return [rng.integers(-50, 50, c).astype(dtype).tolist() for c in counts]
    return [(rng.normal(30.0, 20.0, c)).astype(dtype).tolist() for c in counts]


def naive_pad(
    lists: list[list[float]], length: int, pad: float, shift: float = 0.0, scale: float = 1.0
) -> np.ndarray[Any, Any]:
    out = np.full((len(lists), length), pad, dtype=np.float64)
    for i, values in enumerate(lists):
        for j, value in enumerate(values[:length]):
            out[i, j] = (value - shift) * scale
    return out


def naive_mask(lists: list[list[float]], length: int) -> np.ndarray[Any, Any]:
    return np.array([[j < len(values) for j in range(length)] for values in lists], dtype=bool)


def variants(seed: int, dtype: Any = np.float32) -> dict[str, tuple[ak.Array, list[list[Any]]]]:
    """The same kind of data in the layouts awkward produces: offsets from zero, offsets
    not starting at zero (slices), ListArray (fancy-indexed), regular."""
    lists = random_lists(seed, dtype=dtype)
    array = ak.values_astype(ak.Array(lists), dtype)
    order = np.random.default_rng(seed + 100).permutation(len(lists))
    return {
        "offsets": (array, lists),
        "sliced": (array[3:], lists[3:]),
        "sliced_twice": (array[3:][5:-7], lists[8:-7]),
        "listarray": (array[order], [lists[i] for i in order]),
        "listarray_sliced": (array[[2, 0, 1]], [lists[2], lists[0], lists[1]]),
    }


def as_lists(parts: JaggedParts) -> list[list[Any]]:
    return [
        parts.content[s : s + c].tolist() for s, c in zip(parts.starts, parts.counts, strict=True)
    ]


# -- jagged_parts --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_jagged_parts_matches_lists_for_every_layout(dtype: Any) -> None:
    for name, (array, lists) in variants(1, dtype).items():
        parts = jagged_parts(array, name)
        assert as_lists(parts) == lists, name
        assert parts.content.dtype == np.dtype(dtype)
        assert parts.starts.dtype == np.int64
        assert parts.counts.dtype == np.int64
        assert len(parts) == len(lists)
        assert np.array_equal(parts.counts, [len(x) for x in lists])
    sliced = jagged_parts(variants(1, dtype)["sliced"][0], "x")
    assert sliced.starts[0] > 0 or sliced.counts[0] == 0  # buffers are not copied
    assert as_lists(sliced.compact()) == variants(1, dtype)["sliced"][1]
    assert sliced.compact().starts[0] == 0
    assert sliced.compact().contiguous


def test_jagged_parts_regular_and_option_content() -> None:
    regular = jagged_parts(ak.to_regular(ak.Array([[1, 2], [3, 4], [5, 6]])), "r")
    assert as_lists(regular) == [[1, 2], [3, 4], [5, 6]]
    filled = jagged_parts(ak.Array([[1.5, None], [], [None]]), "o", fill=-1.0)
    assert as_lists(filled) == [[1.5, -1.0], [], [-1.0]]
    default = jagged_parts(ak.Array([[None, 2.0]]), "o")
    assert as_lists(default) == [[0.0, 2.0]]


@pytest.mark.parametrize("how", ["indexed_option", "byte_masked"])
def test_jagged_parts_missing_lists_become_empty(how: str) -> None:
    base = ak.Array([[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]])
    array = ak.Array([[1.0, 2.0], None, [4.0, 5.0, 6.0]])
    if how == "byte_masked":
        array = ak.mask(base, [True, False, True])
    assert str(array.type).startswith("3 * option[var")
    parts = jagged_parts(array, "opt")
    assert as_lists(parts) == [[1.0, 2.0], [], [4.0, 5.0, 6.0]]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (ak.Array([1.0, 2.0]), "branch 'b' has type 2 * float64: only one level of nesting"),
        (ak.Array([[[1.0]], []]), "only one level of nesting is supported"),
        (ak.Array([[{"a": 1}]]), "expected a list of numbers per event"),
        (ak.Array([["text"]]), "expected a list of numbers per event"),
    ],
)
def test_jagged_parts_rejects_other_types(array: ak.Array, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("*", r"\*")):
        jagged_parts(array, "b")


def test_take_content_of_rows() -> None:
    array, lists = variants(2)["sliced"]
    parts = jagged_parts(array, "x")
    rows = np.array([0, 4, 5, 9, 30, 31, 100], dtype=np.int64)
    expected = [v for r in rows for v in lists[r]]
    assert parts.take_content(rows).tolist() == expected
    everything = parts.take_content(np.arange(len(lists)))
    assert everything.tolist() == [v for x in lists for v in x]
    empty_rows = np.array([i for i, x in enumerate(lists) if not x][:3], dtype=np.int64)
    assert parts.take_content(empty_rows).tolist() == []
    listarray, ll = variants(2)["listarray"]
    lparts = jagged_parts(listarray, "x")
    assert not lparts.contiguous
    assert lparts.take_content(np.arange(len(ll))).tolist() == [v for x in ll for v in x]


def test_take_content_with_repeated_rows() -> None:
    parts = jagged_parts(ak.Array([[1.0, 2.0], [3.0], [4.0, 5.0]]), "x")
    assert parts.take_content(np.array([0, 0, 1])).tolist() == [1.0, 2.0, 1.0, 2.0, 3.0]


# -- PadPlan and pad_clip -----------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["offsets", "sliced", "sliced_twice", "listarray"])
@pytest.mark.parametrize(
    ("length", "pad", "shift", "scale"),
    [(1, 0.0, 0.0, 1.0), (4, -9.0, 0.0, 1.0), (13, 0.0, 30.0, 0.05), (3, float("nan"), -2, 3)],
)
def test_pad_clip_against_naive(
    layout: str, length: int, pad: float, shift: float, scale: float
) -> None:
    array, lists = variants(3)[layout]
    parts = jagged_parts(array, "x")
    rows = np.arange(len(lists), dtype=np.int64)
    plan = PadPlan.build(parts, rows, length)
    out = np.empty((len(rows), length), dtype=np.float32)
    pad_clip(parts, plan, pad, out, shift=shift, scale=scale)
    expected = naive_pad(lists, length, pad, shift, scale)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4, equal_nan=True)
    assert np.array_equal(~plan.padded, naive_mask(lists, length))
    assert np.array_equal(plan.counts, [len(x) for x in lists])
    assert plan.index.shape == (len(rows), length)
    assert (plan.index[plan.padded] == -1).all()


def test_pad_clip_subset_of_rows_into_a_strided_block() -> None:
    array, lists = variants(4)["sliced"]
    parts = jagged_parts(array, "x")
    rows = np.array([5, 1, 1, 40, 0, 77], dtype=np.int64)
    plan = PadPlan.build(parts, rows, 5)
    matrix = np.full((len(rows), 9), 123.0, dtype=np.float32)
    pad_clip(parts, plan, -1.0, matrix[:, 2:7])
    chosen = [lists[r] for r in rows]
    np.testing.assert_allclose(matrix[:, 2:7], naive_pad(chosen, 5, -1.0), rtol=1e-6)
    assert (matrix[:, :2] == 123.0).all()
    assert (matrix[:, 7:] == 123.0).all()
    assert plan.fits(parts, rows)
    assert not plan.fits(parts, rows[::-1])
    assert not plan.fits(parts.compact(), rows) or parts.contiguous


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
def test_pad_clip_int_and_double_content(dtype: Any) -> None:
    array, lists = variants(5, dtype)["listarray"]
    parts = jagged_parts(array, "x")
    rows = np.arange(len(lists), dtype=np.int64)
    out = np.empty((len(rows), 6), dtype=np.float32)
    pad_clip(parts, PadPlan.build(parts, rows, 6), 7.0, out, shift=1.0, scale=0.5)
    np.testing.assert_allclose(out, naive_pad(lists, 6, 7.0, 1.0, 0.5), rtol=1e-6)
    assert out.dtype == np.float32


def test_pad_plan_of_empty_selection_and_all_empty_lists() -> None:
    parts = jagged_parts(ak.unflatten(np.zeros(0, np.float32), [0, 0, 0]), "x")
    plan = PadPlan.build(parts, np.arange(3), 2)
    out = np.zeros((3, 2), dtype=np.float32)
    pad_clip(parts, plan, 4.0, out)
    assert (out == 4.0).all()
    assert plan.padded.all()
    none = PadPlan.build(parts, np.array([], dtype=np.int64), 2)
    assert none.index.shape == (0, 2)


# -- sort_order and apply_order -----------------------------------------------------------------
def naive_sorted(values: list[float], descending: bool) -> list[float]:
    real = sorted((v for v in values if not math.isnan(v)), reverse=descending)
    return real + [v for v in values if math.isnan(v)]


def with_nans(seed: int) -> list[list[float]]:
    lists = random_lists(seed)
    rng = np.random.default_rng(seed)
    for values in lists:
        for j in range(len(values)):
            if rng.random() < 0.1:
                values[j] = float("nan")
            elif rng.random() < 0.03:
                values[j] = float("-inf") if rng.random() < 0.5 else float("inf")
    return lists


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("layout", ["offsets", "sliced", "listarray"])
def test_sort_order_sorts_each_list_nan_last(descending: bool, layout: str) -> None:
    lists = with_nans(6)
    base = ak.values_astype(ak.Array(lists), np.float32)
    # a second branch of the same collection: each value tagged by its key's position
    tags = ak.Array([[10.0 * i + j for j in range(len(x))] for i, x in enumerate(lists)])
    picks = {
        "offsets": slice(None),
        "sliced": slice(3, None),
        "listarray": np.arange(len(lists))[::-1].copy(),
    }
    pick = picks[layout]
    key_lists = lists[pick] if isinstance(pick, slice) else [lists[i] for i in pick]
    tag_lists = tags.tolist()[pick] if isinstance(pick, slice) else [tags.tolist()[i] for i in pick]
    key = jagged_parts(base[pick], "Jet_pt")
    other = jagged_parts(tags[pick], "Jet_tag")
    order = sort_order(key, descending)
    assert order.dtype == np.int64
    assert sorted(order.tolist()) == list(range(key.counts.sum()))
    sorted_key = apply_order(key, order, key, "Jet_pt", "Jet_pt")
    for got, values in zip(as_lists(sorted_key), key_lists, strict=True):
        assert same(got, naive_sorted(values, descending))
    sorted_tags = apply_order(other, order, key, "Jet_tag", "Jet_pt")
    for got_tags, got_keys, values, tag in zip(
        as_lists(sorted_tags), as_lists(sorted_key), key_lists, tag_lists, strict=True
    ):
        # each tag still sits next to its own key value
        assert same(got_keys, [values[tag.index(t)] for t in got_tags])
    assert np.array_equal(sorted_tags.counts, key.counts)
    assert sorted_tags.starts[0] == 0
    assert sorted_tags.contiguous


def test_sort_order_small_example() -> None:
    key = jagged_parts(ak.Array([[1.0, float("nan"), 3.0, -np.inf], [], [2.0, 5.0]])[0:], "k")
    down = apply_order(key, sort_order(key, True), key, "k", "k")
    up = apply_order(key, sort_order(key, False), key, "k", "k")
    assert same(as_lists(down)[0], [3.0, 1.0, -np.inf, float("nan")])
    assert same(as_lists(up)[0], [-np.inf, 1.0, 3.0, float("nan")])
    assert as_lists(down)[1:] == [[], [5.0, 2.0]]
    assert as_lists(up)[1:] == [[], [2.0, 5.0]]


def test_apply_order_with_mismatching_lengths() -> None:
    key = jagged_parts(ak.Array([[1.0, 2.0], [3.0]]), "Jet_pt")
    other = jagged_parts(ak.Array([[1.0], [3.0, 4.0]]), "Muon_pt")
    with pytest.raises(DataError) as info:
        apply_order(other, sort_order(key, True), key, "Muon_pt", "Jet_pt")
    assert str(info.value) == (
        "cannot sort 'Muon_pt' by 'Jet_pt': their lists have different lengths "
        "(sort_by must name a branch of the same collection)"
    )


def test_sort_then_pad_matches_naive() -> None:
    lists = random_lists(8)
    parts = jagged_parts(ak.values_astype(ak.Array(lists), np.float32)[[5, 2, 9, 1]], "x")
    chosen = [lists[i] for i in (5, 2, 9, 1)]
    ordered = apply_order(parts, sort_order(parts, True), parts, "x", "x")
    out = np.empty((4, 3), dtype=np.float32)
    rows = np.arange(4, dtype=np.int64)
    pad_clip(ordered, PadPlan.build(ordered, rows, 3), 0.0, out)
    expected = naive_pad([sorted(x, reverse=True) for x in chosen], 3, 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
