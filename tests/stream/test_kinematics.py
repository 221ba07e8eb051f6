"""Kinematic functions of the expression language, checked against ``vector`` directly.

Every value is compared with ``vector`` computed on the same arrays (and a few with hand
arithmetic), on flat NumPy and jagged awkward inputs, with short and empty events; then
the rejections; then new branches and cuts end-to-end through ``BatchStream`` on a
ROOT file written by uproot.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot
import vector

from mlaas_jupyter.errors import ExpressionError
from mlaas_jupyter.stream import BatchStream, DatasetSpec
from mlaas_jupyter.stream.expressions import compile_expression, cut_mask, to_numpy_column

JET = ("Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass")
KNOWN = [*JET, "Muon_eta", "Muon_phi", "MET_pt", "MET_phi", "pt", "phi", "px", "py", "pz", "E"]
M_JJ = "inv_mass(Jet_pt, Jet_eta, Jet_phi, Jet_mass, n=2)"
JET_MU = "min_delta_r(Jet_eta, Jet_phi, Muon_eta, Muon_phi)"


def random_events(n: int, seed: int = 0, dtype: Any = np.float64) -> dict[str, Any]:
    """Jets (Poisson 3, events 0 and 1 with none, event 2 with one) and muons (Poisson 1)."""
    rng = np.random.default_rng(seed)
    jets, muons = rng.poisson(3.0, n), rng.poisson(1.0, n)
    jets[:3] = [0, 0, 1]

    def jagged(values: np.ndarray[Any, Any], counts: np.ndarray[Any, Any]) -> ak.Array:
        return ak.unflatten(values.astype(dtype), counts)

    nj, nm = int(jets.sum()), int(muons.sum())
    return {
        "Jet_pt": jagged(20.0 + rng.exponential(40.0, nj), jets),
        "Jet_eta": jagged(rng.normal(0.0, 1.5, nj), jets),
        "Jet_phi": jagged(rng.uniform(-np.pi, np.pi, nj), jets),
        "Jet_mass": jagged(rng.exponential(8.0, nj), jets),
        "Muon_eta": jagged(rng.normal(0.0, 1.2, nm), muons),
        "Muon_phi": jagged(rng.uniform(-np.pi, np.pi, nm), muons),
        "MET_pt": rng.exponential(50.0, n).astype(dtype),
        "MET_phi": rng.uniform(-np.pi, np.pi, n).astype(dtype),
        "event_id": np.arange(n, dtype=np.int64),
        "label": (rng.uniform(size=n) > 0.5).astype(np.int32),
    }


@pytest.fixture
def events() -> dict[str, Any]:
    return random_events(300)


def run(text: str, columns: dict[str, Any]) -> Any:
    return compile_expression(text, KNOWN).evaluate(columns)


def jets_of(c: dict[str, Any]) -> ak.Array:
    return vector.zip(
        {"pt": c["Jet_pt"], "eta": c["Jet_eta"], "phi": c["Jet_phi"], "mass": c["Jet_mass"]}
    )


def muons_of(c: dict[str, Any]) -> ak.Array:
    return vector.zip(
        {"pt": ak.ones_like(c["Muon_eta"]), "eta": c["Muon_eta"], "phi": c["Muon_phi"]}
    )


def same(got: Any, want: Any) -> None:
    """Equal structure (lists and missing values) and values to float precision."""
    assert ak.to_list(ak.is_none(got, axis=-1)) == ak.to_list(ak.is_none(want, axis=-1))
    if isinstance(want, ak.Array) and want.ndim > 1:
        assert ak.to_list(ak.num(got, axis=1)) == ak.to_list(ak.num(want, axis=1))
        got, want = ak.flatten(got), ak.flatten(want)
    got, want = ak.drop_none(ak.Array(got)), ak.drop_none(ak.Array(want))
    np.testing.assert_allclose(ak.to_numpy(got), ak.to_numpy(want), rtol=1e-6, atol=1e-9)


def test_delta_phi_wraps_flat_and_jagged(events: dict[str, Any]) -> None:
    phi1, phi2 = events["MET_phi"], events["MET_phi"][::-1].copy()
    flat = run("delta_phi(MET_phi, phi)", {"MET_phi": phi1, "phi": phi2})
    assert isinstance(flat, np.ndarray)
    ones = np.ones_like(phi1)
    first: Any = vector.array({"rho": ones, "phi": phi1})
    want = first.deltaphi(vector.array({"rho": ones, "phi": phi2}))
    np.testing.assert_allclose(flat, want)
    np.testing.assert_allclose(flat, (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi, atol=1e-12)
    assert (flat >= -np.pi).all()
    assert (flat < np.pi).all()
    assert run("delta_phi(3, -3)", events)[0] == pytest.approx(6 - 2 * np.pi)
    jagged = run("delta_phi(Jet_phi, MET_phi)", events)
    met = ak.broadcast_arrays(ak.Array(events["MET_phi"]), events["Jet_phi"])[0]
    jets = vector.zip({"rho": ak.ones_like(met), "phi": events["Jet_phi"]})
    same(jagged, jets.deltaphi(vector.zip({"rho": ak.ones_like(met), "phi": met})))


def test_delta_r_of_objects_and_of_leading_jets(events: dict[str, Any]) -> None:
    jets = jets_of(events)
    same(
        run("delta_r(Jet_eta, Jet_phi, Jet_eta[:, 0], Jet_phi[:, 0])", events),
        jets.deltaR(ak.firsts(jets)),
    )
    lead = run("delta_r(Jet_eta[:, 0], Jet_phi[:, 0], Jet_eta[:, 1], Jet_phi[:, 1])", events)
    enough = ak.num(jets) >= 2
    assert ak.to_list(ak.is_none(lead)) == ak.to_list(~enough)
    two = jets[enough]
    same(ak.drop_none(lead), two[:, 0].deltaR(two[:, 1]))
    flat = {
        "Jet_eta": np.array([0.0, 1.0]),
        "Jet_phi": np.array([0.0, 3.0]),
        "MET_phi": np.array([0.0, -3.0]),
    }
    value = compile_expression("delta_r(Jet_eta, Jet_phi, 0, MET_phi)", KNOWN).evaluate(flat)
    assert isinstance(value, np.ndarray)
    np.testing.assert_allclose(value, [0.0, math.hypot(1.0, 6.0 - 2 * np.pi)])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_inv_mass_of_leading_objects(events: dict[str, Any], n: int) -> None:
    value = run(f"inv_mass(Jet_pt, Jet_eta, Jet_phi, Jet_mass, n={n})", events)
    jets = jets_of(events)
    want = ak.mask(ak.sum(jets[:, :n], axis=1).mass, ak.num(jets) >= n)
    same(value, want)
    assert ak.to_list(ak.is_none(value)) == ak.to_list(ak.num(jets) < n)
    for event in range(3, 23):  # the sum one four-vector at a time, vector's objects
        objects = [vector.obj(pt=j.pt, eta=j.eta, phi=j.phi, mass=j.mass) for j in jets[event]]
        if len(objects) >= n:
            total: Any = objects[0]
            for other in objects[1:n]:
                total = total + other
            assert value[event] == pytest.approx(total.mass, rel=1e-9)


def test_inv_mass_of_all_objects_and_hand_values(events: dict[str, Any]) -> None:
    jets = jets_of(events)
    value = run("inv_mass(Jet_pt, Jet_eta, Jet_phi, Jet_mass)", events)
    same(value, ak.mask(ak.sum(jets, axis=1).mass, ak.num(jets) >= 1))
    assert value[0] is None
    assert value[1] is None
    assert value[2] == pytest.approx(events["Jet_mass"][2][0])  # one jet: its own mass
    # two massless back-to-back jets of 50 GeV: 100 GeV; positional n = keyword n
    pair = {"Jet_pt": ak.Array([[50.0, 50.0, 9.0]]), "Jet_eta": ak.Array([[0.0, 0.0, 2.0]])}
    pair["Jet_phi"] = ak.Array([[0.0, np.pi, 1.0]])
    for text in (
        "inv_mass(Jet_pt, Jet_eta, Jet_phi, 0, n=2)",
        "inv_mass(Jet_pt, Jet_eta, Jet_phi, 0, 2)",
    ):
        assert run(text, pair)[0] == pytest.approx(100.0)


def test_missing_masses_become_pad_and_fail_cuts(events: dict[str, Any]) -> None:
    expression = compile_expression(M_JJ, KNOWN)
    value = expression.evaluate(events)
    column = to_numpy_column(value, expression)
    assert isinstance(column, np.ndarray)
    assert column.dtype == np.float32
    assert (column[:3] == 0.0).all()
    assert np.isfinite(column).all()
    cut = compile_expression(f"{M_JJ} > 0", KNOWN)
    np.testing.assert_array_equal(
        cut_mask(cut.evaluate(events), cut), ak.num(events["Jet_pt"]) >= 2
    )


def test_min_delta_r_against_cartesian(events: dict[str, Any]) -> None:
    value = run(JET_MU, events)
    jets, muons = jets_of(events), muons_of(events)
    one, other = ak.unzip(ak.cartesian([jets, muons], nested=True))
    nearest = ak.min(one.deltaR(other), axis=-1)  # None where there is no muon
    same(value, ak.fill_none(nearest, np.inf))
    no_muon = ak.num(muons) == 0
    assert ak.all(value[no_muon & (ak.num(jets) > 0)] == np.inf)
    assert ak.to_list(ak.num(value)) == ak.to_list(ak.num(jets))
    # one value per event for one object (the leading jet): missing without a jet
    lead = run("min_delta_r(Jet_eta[:, 0], Jet_phi[:, 0], Muon_eta, Muon_phi)", events)
    assert lead.ndim == 1
    assert ak.to_list(ak.is_none(lead)) == ak.to_list(ak.num(jets) == 0)
    same(ak.drop_none(lead), ak.firsts(ak.fill_none(nearest, np.inf))[ak.num(jets) > 0])
    isolated = run(f"Jet_pt[{JET_MU} > 0.4]", events)
    same(isolated, events["Jet_pt"][ak.fill_none(nearest, np.inf) > 0.4])


def test_empty_collections_and_empty_chunks(events: dict[str, Any]) -> None:
    no_jets = {k: events[k][:2] for k in KNOWN if k in events}  # events 0 and 1: no jet
    assert ak.to_list(run(M_JJ, no_jets)) == [None, None]
    assert ak.to_list(run("inv_mass(Jet_pt, Jet_eta, Jet_phi, Jet_mass)", no_jets)) == [None] * 2
    assert ak.to_list(run(JET_MU, no_jets)) == [[], []]
    assert ak.to_list(run("delta_phi(Jet_phi, MET_phi)", no_jets)) == [[], []]
    no_muons = {**events, "Muon_eta": ak.Array([[]] * 300), "Muon_phi": ak.Array([[]] * 300)}
    nearest = run(JET_MU, no_muons)
    assert ak.to_list(ak.num(nearest)) == ak.to_list(ak.num(events["Jet_pt"]))
    assert ak.all(nearest == np.inf)
    zero = {k: v[:0] for k, v in events.items()}
    for text in (M_JJ, JET_MU, "delta_r(Jet_eta, Jet_phi, MET_pt, MET_phi)", "px(MET_pt, MET_phi)"):
        assert len(run(text, zero)) == 0


def test_conversions_both_ways(events: dict[str, Any]) -> None:
    jets = jets_of(events)
    for text, want in [
        ("px(Jet_pt, Jet_phi)", jets.px), ("py(Jet_pt, Jet_phi)", jets.py),
        ("pz(Jet_pt, Jet_eta)", jets.pz),
        ("energy(Jet_pt, Jet_eta, Jet_phi, Jet_mass)", jets.energy),
    ]:  # fmt: skip
        same(run(text, events), want)
    cartesian = {"px": ak.flatten(jets.px).to_numpy(), "py": ak.flatten(jets.py).to_numpy()}
    cartesian |= {"pz": ak.flatten(jets.pz).to_numpy(), "E": ak.flatten(jets.energy).to_numpy()}
    back: Any = vector.array(
        {"px": cartesian["px"], "py": cartesian["py"], "pz": cartesian["pz"], "E": cartesian["E"]}
    )
    for text, want in [
        ("pt(px, py)", back.pt), ("eta(px, py, pz)", back.eta), ("phi(px, py)", back.phi),
        ("mass(px, py, pz, E)", back.mass),
    ]:  # fmt: skip
        value = compile_expression(text, KNOWN).evaluate(cartesian)
        assert isinstance(value, np.ndarray)
        np.testing.assert_allclose(value, want, rtol=1e-9)
    round_trip = compile_expression("mass(px, py, pz, E)", KNOWN).evaluate(cartesian)
    np.testing.assert_allclose(round_trip, ak.flatten(events["Jet_mass"]), rtol=1e-6, atol=1e-6)
    assert run("px(10, pi)", events)[0] == pytest.approx(-10.0)


def test_branch_and_function_of_the_same_name() -> None:
    columns = {"pt": np.array([3.0, 5.0]), "phi": np.array([0.5, -2.0])}
    value = compile_expression("pt(px(pt, phi), py(pt, phi)) - pt", KNOWN)
    assert value.names == {"pt", "phi"}
    np.testing.assert_allclose(value.evaluate(columns), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(compile_expression("phi", KNOWN).evaluate(columns), columns["phi"])
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(value)).evaluate(columns), [0.0, 0.0], atol=1e-12
    )


def error_of(text: str, columns: dict[str, Any] | None = None, known: list[str] = KNOWN) -> str:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, known).evaluate(columns or {})
    assert str(info.value).startswith(f"in expression {text!r}: ")
    return str(info.value).removeprefix(f"in expression {text!r}: ")


USAGE = "inv_mass() takes pt, eta, phi, mass and optionally n=<int>"
JETS = "Jet_pt, Jet_eta, Jet_phi, Jet_mass"
REJECTED = [
    ("inv_mass(Jet_pt, Jet_phi)", f"{USAGE}: 'inv_mass(Jet_pt, Jet_phi)' has 2 arguments"),
    (f"inv_mass({JETS}, m=1)", f"{USAGE}: keyword argument 'm=1' is not allowed in"),
    (f"inv_mass({JETS}, n=MET_pt)", f"{USAGE}: n must be an integer literal >= 1, e.g. n=2"),
    (f"inv_mass({JETS}, n=0)", "n must be an integer literal >= 1, e.g. n=2, not '0' in"),
    (f"inv_mass({JETS}, n=MET_pt)", ", e.g. n=2, not 'MET_pt' in"),
    (f"inv_mass({JETS}, n=2.0)", "not '2.0'"),
    (f"inv_mass({JETS}, n=True)", "not 'True'"),
    (f"inv_mass({JETS}, 2, n=2)", "has 5 arguments"),
    (f"inv_mass({JETS}, **MET_pt)", "keyword argument '**MET_pt' is not allowed"),
    ("delta_r(Jet_eta, Jet_phi, 0, n=1)", "delta_r() takes eta1, phi1, eta2, phi2: keyword arg"),
    ("delta_phi(Jet_phi)", "delta_phi() takes phi1, phi2: 'delta_phi(Jet_phi)' has 1 argument"),
    ("min_delta_r(Jet_eta, Jet_phi)", "min_delta_r() takes eta1, phi1, eta2, phi2: "),
    ("energy(Jet_pt, Jet_eta, Jet_phi)", "energy() takes pt, eta, phi, mass: "),
    ("mass(px, py, pz)", "mass() takes px, py, pz, energy: 'mass(px, py, pz)' has 3 arguments"),
    ("pz(Jet_pt)", "pz() takes pt, eta: "),
    ("inv_mass.n", "attribute access 'inv_mass.n' is not allowed"),
    ("vector.obj(px=1)", "attribute access 'vector.obj' is not allowed"),
    ("lorentz(Jet_pt)", "function 'lorentz' is not allowed; the functions are"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), REJECTED)
def test_rejected_calls(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_function_names_must_be_called() -> None:
    known = ["Jet_eta", "Muon_eta"]
    message = error_of("eta > 1", known=known)
    assert message.startswith("'eta' is a function and must be called, e.g. eta(px, py, pz)")
    assert "no branch is named 'eta'" in message


def test_mismatched_collections_name_the_arguments(events: dict[str, Any]) -> None:
    text = "delta_r(Jet_eta, Jet_phi, Muon_eta, Muon_phi)"
    message = error_of(text, events)
    assert message.startswith(
        "delta_r(): eta1 and eta2 have different numbers of objects per event"
    )
    assert "use min_delta_r(eta1, phi1, eta2, phi2)" in message
    assert message.endswith(f": {text!r}")
    assert "pt and mass have different numbers" in error_of(
        "inv_mass(Jet_pt, Jet_eta, Jet_phi, Muon_eta)", events
    )
    flat = error_of("inv_mass(MET_pt, MET_phi, MET_phi, 0)", events)
    assert flat.startswith("inv_mass() needs a collection (a list per event, e.g. Jet_pt)")
    assert "eta2 and phi2 must be a collection" in error_of(
        "min_delta_r(Jet_eta, Jet_phi, MET_phi, MET_phi)", events
    )
    assert "eta1 and phi1 must be branches" in error_of(
        "min_delta_r(0, 0, Muon_eta, Muon_phi)", events
    )


# -- end to end: a TTree written by uproot, read by BatchStream ----------------------------------


@pytest.fixture
def jet_file(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    arrays = random_events(600, seed=4, dtype=np.float32)
    jets = ak.zip({k.removeprefix("Jet_"): arrays[k] for k in JET})
    muons = ak.zip({"eta": arrays["Muon_eta"], "phi": arrays["Muon_phi"]})
    flat = {k: arrays[k] for k in ("MET_pt", "MET_phi", "event_id", "label")}
    path = str(tmp_path / "jets.root")
    types = {k: v.dtype for k, v in flat.items()}
    with uproot.recreate(path) as handle:
        # Jet and Muon records: branches Jet_pt, ... with counters nJet, nMuon, as NanoAOD
        tree = handle.mktree(
            "Events", {**types, "Jet": jets.type.content, "Muon": muons.type.content}
        )
        for part in (slice(0, 300), slice(300, None)):  # two baskets
            tree.extend(
                {**{k: v[part] for k, v in flat.items()}, "Jet": jets[part], "Muon": muons[part]}
            )
    return path, arrays


def stream_columns(path: str, **changes: Any) -> dict[str, np.ndarray[Any, Any]]:
    """Every event after cuts (all three splits), by feature name, ordered by event_id."""
    spec = DatasetSpec.from_dict({
        "tree": "Events", "files": [path], "label_branch": "label", "branches": ["event_id"],
        "normalisation": "none", **changes,
    })  # fmt: skip
    rows, layout = [], None
    for split in ("train", "validation", "test"):
        stream = BatchStream(spec, split, 256, shuffle=False, cache=False)
        layout = stream.layout
        rows += [batch.x for batch in stream]
    assert layout is not None
    x = np.concatenate(rows)
    x = x[np.argsort(x[:, layout.feature("event_id").offset])]
    return {f.name: x[:, f.offset] for f in layout.features}


def test_new_branches_and_cuts_through_batch_stream(jet_file: tuple[str, dict[str, Any]]) -> None:
    path, arrays = jet_file
    jets, muons = jets_of(arrays), muons_of(arrays)
    new = {
        "m_jj": M_JJ,
        "dr_j1j2": "delta_r(Jet_eta[:, 0], Jet_phi[:, 0], Jet_eta[:, 1], Jet_phi[:, 1])",
        "iso_j1": "minimum(min_delta_r(Jet_eta[:, 0], Jet_phi[:, 0], Muon_eta, Muon_phi), 5)",
    }
    plain = stream_columns(path, new_branches=new)
    np.testing.assert_array_equal(plain["event_id"], np.arange(600))
    two = ak.to_numpy(ak.num(jets) >= 2)
    m_jj = ak.to_numpy(ak.fill_none(ak.mask(ak.sum(jets[:, :2], axis=1).mass, two), 0.0))
    np.testing.assert_allclose(plain["m_jj"], m_jj, rtol=1e-5)
    assert (plain["m_jj"][~two] == 0.0).all()  # too few jets: the pad value
    lead = ak.pad_none(jets, 2)
    dr = ak.to_numpy(ak.fill_none(lead[:, 0].deltaR(lead[:, 1]), 0.0))
    np.testing.assert_allclose(plain["dr_j1j2"], dr, rtol=1e-5, atol=1e-6)
    one, other = ak.unzip(ak.cartesian([jets[:, :1], muons], nested=True))
    iso = ak.firsts(ak.fill_none(ak.min(one.deltaR(other), axis=-1), np.inf))
    iso = ak.to_numpy(ak.fill_none(np.minimum(iso, 5.0), 0.0))
    np.testing.assert_allclose(plain["iso_j1"], iso, rtol=1e-5)
    cuts = [f"{M_JJ} > 80", f"all({JET_MU} > 0.4)"]
    cut = stream_columns(path, new_branches={"m_jj": M_JJ}, cuts=cuts)
    one, other = ak.unzip(ak.cartesian([jets, muons], nested=True))
    nearest = ak.fill_none(ak.min(one.deltaR(other), axis=-1), np.inf)
    keep = two & (m_jj > 80) & ak.to_numpy(ak.all(nearest > 0.4, axis=1))
    assert 0 < keep.sum() < 600
    np.testing.assert_array_equal(cut["event_id"], np.flatnonzero(keep))
    np.testing.assert_allclose(cut["m_jj"], m_jj[keep], rtol=1e-5)
