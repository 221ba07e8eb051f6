"""The safe expression evaluator: values on NumPy and awkward columns, and every rejection."""

from __future__ import annotations

import pickle
from typing import Any

import awkward as ak
import numpy as np
import pytest
import skhep_testdata
import uproot

from mlaas_jupyter.errors import ExpressionError
from mlaas_jupyter.stream.expressions import (
    Expression,
    compile_expression,
    cut_mask,
    to_numpy_column,
)

KNOWN = ["MET_pt", "nJet", "Jet_pt", "Jet_eta", "Muon_Px", "Muon_pt"]


@pytest.fixture
def columns() -> dict[str, Any]:
    """Three events; the second has no jets."""
    return {
        "MET_pt": np.array([10.0, 20.0, 30.0], dtype=np.float32),
        "nJet": np.array([2, 0, 1], dtype=np.int32),
        "Jet_pt": ak.Array([[1.0, 2.0], [], [3.0]]),
        "Jet_eta": ak.Array([[0.5, 3.0], [], [-2.5]]),
        "Muon_pt": ak.Array([[5.0], [6.0], [7.0, 8.0]]),
    }


def run(text: str, columns: dict[str, Any]) -> Any:
    return compile_expression(text, KNOWN).evaluate(columns)


def message(text: str, columns: dict[str, Any] | None = None) -> str:
    """The message of the ExpressionError that ``text`` raises (when compiled or run)."""
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, KNOWN).evaluate(columns or {})
    assert str(info.value).startswith(f"in expression {text!r}: ")
    return str(info.value)


def test_arithmetic_on_numpy_stays_numpy(columns: dict[str, Any]) -> None:
    met = columns["MET_pt"]
    value = run("MET_pt * 2 + nJet ** 2 - 1 / MET_pt", columns)
    assert isinstance(value, np.ndarray)
    np.testing.assert_allclose(value, met * 2 + columns["nJet"] ** 2 - 1 / met, rtol=1e-6)
    np.testing.assert_allclose(
        run("sqrt(MET_pt) + abs(-nJet)", columns), np.sqrt(met) + np.array([2, 0, 1])
    )
    np.testing.assert_array_equal(run("MET_pt // 7 % 2", columns), met // 7 % 2)
    np.testing.assert_array_equal(run("round(MET_pt / 20)", columns), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(run("maximum(MET_pt, 15)", columns), [15.0, 20.0, 30.0])
    np.testing.assert_array_equal(run("where(nJet > 0, MET_pt, -1)", columns), [10.0, -1.0, 30.0])
    np.testing.assert_array_equal(run("MET_pt if nJet > 0 else -1", columns), [10.0, -1.0, 30.0])
    np.testing.assert_array_equal(run("nJet & 1 | 4 ^ 1", columns), (columns["nJet"] & 1) | 5)


def test_constants_and_broadcast(columns: dict[str, Any]) -> None:
    np.testing.assert_allclose(run("MET_pt * 0 + pi", columns), np.full(3, np.pi), rtol=1e-6)
    assert run("2 * e", columns).tolist() == [2 * np.e] * 3
    expression = compile_expression("True", KNOWN)
    assert expression.names == frozenset()
    assert cut_mask(expression.evaluate(columns), expression).tolist() == [True] * 3


def test_log_of_zero_is_inf_without_warning(columns: dict[str, Any]) -> None:
    with np.errstate(all="raise"):
        value = run("log(nJet)", columns)
    assert value[1] == -np.inf


def test_huge_integer_power_fails_fast(columns: dict[str, Any]) -> None:
    assert "cannot evaluate" in message("MET_pt + 9 ** 9 ** 9", columns)
    assert run("nJet ** 2 + 2 ** 3", columns).tolist() == [12, 8, 9]


def test_names() -> None:
    expression = compile_expression("sqrt(Muon_Px**2) + sum(Jet_pt) * pi", KNOWN)
    assert expression.names == frozenset({"Muon_Px", "Jet_pt"})
    assert expression.text == "sqrt(Muon_Px**2) + sum(Jet_pt) * pi"


def test_comparisons_and_logic(columns: dict[str, Any]) -> None:
    assert run("15 < MET_pt <= 30", columns).tolist() == [False, True, True]
    assert run("0 <= nJet < 2 < MET_pt", columns).tolist() == [False, True, True]
    assert run("MET_pt > 15 and nJet > 0", columns).tolist() == [False, False, True]
    assert run("MET_pt < 15 or not nJet", columns).tolist() == [True, True, False]
    assert run("~(nJet == 0) & (MET_pt != 10)", columns).tolist() == [False, False, True]


def test_jagged_reductions_with_an_empty_event(columns: dict[str, Any]) -> None:
    assert run("num(Jet_pt)", columns).tolist() == [2, 0, 1]
    assert run("sum(Jet_pt * 2)", columns).tolist() == [6.0, 0.0, 6.0]
    assert run("max(Jet_pt)", columns).tolist() == [2.0, None, 3.0]
    assert run("min(Jet_pt)", columns).tolist() == [1.0, None, 3.0]
    assert run("mean(Jet_pt)", columns).tolist() == [1.5, None, 3.0]
    assert run("count(Jet_pt > 1.5)", columns).tolist() == [1, 0, 1]
    assert run("any(Jet_pt > 2.5)", columns).tolist() == [False, False, True]
    assert run("all(Jet_pt > 1.5)", columns).tolist() == [False, True, True]
    assert run("argmax(Jet_pt)", columns).tolist() == [1, None, 0]

    cut = compile_expression("max(Jet_pt) > 1.5", KNOWN)
    assert cut_mask(cut.evaluate(columns), cut).tolist() == [True, False, True]
    branch = compile_expression("max(Jet_pt)", KNOWN)
    column = to_numpy_column(branch.evaluate(columns), branch, fill=-1.0)
    assert isinstance(column, np.ndarray)
    assert column.dtype == np.float32
    assert column.tolist() == [2.0, -1.0, 3.0]


def test_ufuncs_on_jagged(columns: dict[str, Any]) -> None:
    value = run("sqrt(Jet_pt * 4) + minimum(Jet_eta, 1) + MET_pt", columns)
    expected = [
        [2.0 + 0.5 + 10.0, 2 * np.sqrt(2.0) + 1.0 + 10.0],
        [],
        [2 * np.sqrt(3.0) - 2.5 + 30],
    ]
    for got, want in zip(value.tolist(), expected, strict=True):
        np.testing.assert_allclose(got, want)
    assert run("where(Jet_pt > 1.5, Jet_pt, 0)", columns).tolist() == [[0.0, 2.0], [], [3.0]]


def test_object_index_with_missing_objects(columns: dict[str, Any]) -> None:
    assert run("Jet_pt[:, 0]", columns).tolist() == [1.0, None, 3.0]
    assert run("Jet_pt[:, -1]", columns).tolist() == [2.0, None, 3.0]
    assert run("Jet_pt[:, 1]", columns).tolist() == [2.0, None, None]
    assert run("Jet_pt[:, :1]", columns).tolist() == [[1.0], [], [3.0]]
    assert run("Jet_pt[:, 1:]", columns).tolist() == [[2.0], [], []]
    assert run("(Jet_pt * 10)[:, ::-1]", columns).tolist() == [[20.0, 10.0], [], [30.0]]

    expression = compile_expression("Jet_pt[:, 0] > 2", KNOWN)
    assert cut_mask(expression.evaluate(columns), expression).tolist() == [False, False, True]
    leading = compile_expression("Jet_pt[:, 0]", KNOWN)
    column = to_numpy_column(leading.evaluate(columns), leading, fill=-5.0)
    assert column.tolist() == [1.0, -5.0, 3.0]


def test_boolean_masking(columns: dict[str, Any]) -> None:
    assert run("Jet_pt[Jet_eta > 2]", columns).tolist() == [[2.0], [], []]
    assert run("Jet_pt[abs(Jet_eta) < 2.4]", columns).tolist() == [[1.0], [], []]
    assert run("num(Jet_pt[Jet_pt > 1.5])", columns).tolist() == [1, 0, 1]
    assert run("Jet_pt[~(Jet_eta > 2)]", columns).tolist() == [[1.0], [], [3.0]]
    assert run("Jet_pt[not Jet_eta < 0]", columns).tolist() == [[1.0, 2.0], [], []]


def test_cut_mask(columns: dict[str, Any]) -> None:
    expression = compile_expression("MET_pt > 15", KNOWN)
    mask = cut_mask(expression.evaluate(columns), expression)
    assert mask.dtype == np.bool_
    assert mask.tolist() == [False, True, True]
    counter = compile_expression("nJet", KNOWN)
    assert cut_mask(counter.evaluate(columns), counter).tolist() == [True, False, True]

    jagged = compile_expression("Jet_pt > 1", KNOWN)
    with pytest.raises(ExpressionError, match=r"any\(") as info:
        cut_mask(jagged.evaluate(columns), jagged)
    assert "all(" in str(info.value)
    assert "any(Jet_pt > 1)" in str(info.value)


def test_to_numpy_column(columns: dict[str, Any]) -> None:
    flat = compile_expression("MET_pt > 15", KNOWN)
    column = to_numpy_column(flat.evaluate(columns), flat)
    assert isinstance(column, np.ndarray)
    assert column.dtype == np.float32
    assert column.tolist() == [0.0, 1.0, 1.0]

    jagged = compile_expression("Jet_pt * 2", KNOWN)
    lists = to_numpy_column(jagged.evaluate(columns), jagged)
    assert isinstance(lists, ak.Array)
    assert str(lists.type) == "3 * var * float32"
    assert lists.tolist() == [[2.0, 4.0], [], [6.0]]

    with_none = ak.Array([[1.0, None], [], [None]])
    expression = compile_expression("Jet_pt", KNOWN)
    filled = to_numpy_column(with_none, expression, fill=-1.0)
    assert str(filled.type) == "3 * var * float32"
    assert filled.tolist() == [[1.0, -1.0], [], [-1.0]]


def test_evaluation_errors(columns: dict[str, Any]) -> None:
    assert "cannot broadcast" in message("Jet_pt + Muon_pt", columns)
    assert "'Jet_eta' is missing" in message("Jet_eta * 2", {"Jet_pt": columns["Jet_pt"]})


def test_jagged_functions_need_a_jagged_branch(columns: dict[str, Any]) -> None:
    for function in ("num", "sum", "max", "min", "mean", "any", "all", "count"):
        text = message(f"{function}(MET_pt)", columns)
        assert f"{function}() needs a jagged branch" in text
        assert "'MET_pt'" in text
    assert "'MET_pt[:, 0]' needs a jagged value" in message("MET_pt[:, 0]", columns)
    assert "must be per object" in message("Jet_pt[MET_pt > 15]", columns)


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("__import__('os').system('x')", "attribute access \"__import__('os').system\""),
        ("__import__('os')", "function '__import__' is not allowed"),
        ("MET_pt.real", "attribute access 'MET_pt.real'"),
        ("lambda x: x", "lambda 'lambda x: x'"),
        ("(lambda: 1)()", "calling 'lambda: 1'"),
        ("[x for x in MET_pt]", "comprehension '[x for x in MET_pt]'"),
        ("sum(x for x in Jet_pt)", "generator '(x for x in Jet_pt)'"),
        ("sqrt(MET_pt, out=MET_pt)", "keyword argument 'out=MET_pt'"),
        ("sqrt(*MET_pt)", "starred argument '*MET_pt'"),
        ("open(MET_pt)", "function 'open' is not allowed"),
        ("'abc'", "string \"'abc'\""),
        ("b'abc'", "bytes literal \"b'abc'\""),
        ("f'{MET_pt}'", "f-string \"f'{MET_pt}'\""),
        ("{1: MET_pt}", "dict literal '{1: MET_pt}'"),
        ("[MET_pt]", "list literal '[MET_pt]'"),
        ("{MET_pt}", "set literal '{MET_pt}'"),
        ("(MET_pt, nJet)", "tuple literal '(MET_pt, nJet)'"),
        ("(x := MET_pt)", "assignment (:=) 'x := MET_pt'"),
        ("MET_pt = 1", "invalid syntax at column"),
        ("MET_pt + * 2", "invalid syntax at column 10 near '* 2'"),
        ("sqrt(MET_pt", "'(' was never closed"),
        ("_secret", "names starting with '_' are not allowed: '_secret'"),
        ("MET_pt.__class__", "attribute access 'MET_pt.__class__'"),
        ("MET_pt is None", "operator 'is' in 'MET_pt is None'"),
        ("nJet in MET_pt", "operator 'in' in 'nJet in MET_pt'"),
        ("MET_pt @ nJet", "operator '@' in 'MET_pt @ nJet'"),
        ("MET_pt * 1j", "complex number '1j'"),
        ("sqrt", "function 'sqrt' must be called"),
        ("max(MET_pt, nJet)", "maximum(a, b)"),
        ("hypot(MET_pt)", "hypot() takes 2 arguments, not 1"),
        ("MET_pt[0]", "not 'MET_pt[0]'"),
        ("Jet_pt[-1]", "not 'Jet_pt[-1]'"),
        ("Jet_pt[1:2]", "not 'Jet_pt[1:2]'"),
        ("Jet_pt[:, nJet]", "integer literals: 'Jet_pt[:, nJet]'"),
        ("Jet_pt[:, 0, 1]", "not 'Jet_pt[:, 0, 1]'"),
    ],
)
def test_rejected(text: str, part: str) -> None:
    assert part in message(text)


def test_empty_and_oversized() -> None:
    assert "empty" in message("")
    assert "empty" in message("   ")
    with pytest.raises(ExpressionError, match="longer than 2000"):
        compile_expression("MET_pt + " * 300 + "1", KNOWN)
    assert "nested more than 50" in message(" + ".join(["MET_pt"] * 60))
    assert "nested more than 50" in message("-" * 100 + "MET_pt")


def test_unknown_names_are_suggested() -> None:
    assert "unknown branch 'Muon_PX'; did you mean Muon_Px?" in message("Muon_PX * 2")
    assert "did you mean Jet_pt" in message("sum(Jet_ptt)")
    assert message("Banana").endswith("unknown branch 'Banana'")


def test_pickle_recompiles(columns: dict[str, Any]) -> None:
    expression = compile_expression("sum(Jet_pt) + MET_pt", KNOWN)
    copy = pickle.loads(pickle.dumps(expression))
    assert isinstance(copy, Expression)
    assert copy.names == expression.names
    assert copy.evaluate(columns).tolist() == [13.0, 20.0, 33.0]


def test_hzz_file() -> None:
    tree = uproot.open(skhep_testdata.data_path("uproot-HZZ.root"))["events"]
    cols = tree.arrays(["Muon_Px", "Muon_Py", "NMuon"], how=dict)
    known = list(cols)

    pt = compile_expression("sqrt(Muon_Px**2 + Muon_Py**2)", known)
    assert pt.names == frozenset({"Muon_Px", "Muon_Py"})
    value = pt.evaluate(cols)
    expected = np.sqrt(cols["Muon_Px"] ** 2 + cols["Muon_Py"] ** 2)
    assert ak.all(ak.num(value) == ak.num(expected))
    np.testing.assert_allclose(ak.flatten(value).to_numpy(), ak.flatten(expected).to_numpy())

    cut = compile_expression("NMuon >= 2", known)
    mask = cut_mask(cut.evaluate(cols), cut)
    assert mask.shape == (len(cols["NMuon"]),)
    assert mask.sum() == np.count_nonzero(ak.to_numpy(cols["NMuon"]) >= 2)

    leading = compile_expression("max(sqrt(Muon_Px**2 + Muon_Py**2)) > 20", known)
    n_leading = cut_mask(leading.evaluate(cols), leading).sum()
    px, py = (ak.to_numpy(ak.flatten(cols[name])) for name in ("Muon_Px", "Muon_Py"))
    event = np.repeat(np.arange(len(mask)), ak.to_numpy(ak.num(cols["Muon_Px"])))
    assert n_leading == len(np.unique(event[np.hypot(px, py) > 20])) > 0


def test_dotted_names_are_rntuple_fields_not_attributes() -> None:
    known = ["Jet.pt", "MET.pt", "x"]
    expr = compile_expression("max(Jet.pt) + MET.pt", known)
    assert expr.names == {"Jet.pt", "MET.pt"}
    columns = {"Jet.pt": ak.Array([[1.0, 2.0], [3.0]]), "MET.pt": np.array([1.0, 10.0])}
    assert ak.to_list(expr.evaluate(columns)) == [3.0, 13.0]
    with pytest.raises(ExpressionError, match=r"unknown branch 'Jet.ptt'; did you mean Jet.pt"):
        compile_expression("Jet.ptt", known)
    for text in ("x.real", "x.__class__", "(x + 1).imag"):
        with pytest.raises(ExpressionError, match=r"attribute access .* is not allowed"):
            compile_expression(text, known)
