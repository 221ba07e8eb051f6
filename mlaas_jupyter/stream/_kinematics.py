"""The kinematic functions of the expression language, computed by ``vector``.

Each function zips its arguments into ``vector`` records (``Vector2D``, ``Momentum4D``,
...) with ``vector``'s awkward behaviours and asks them for the quantity, so the physics
(angle wrapping, the four-vector sum, the mass of a space-like vector) is ``vector``'s,
not ours. Arguments are flat NumPy arrays (one value per event), awkward arrays (one
list per event, or one possibly missing value per event) or Python numbers; they
broadcast like the elementwise functions (a per-event value meets every object of a
list). Flat NumPy arguments give a NumPy result; anything awkward gives an awkward one,
where missing values stay None.

Arguments the function cannot combine raise :class:`KinematicsError`; the compiler turns
it into an :class:`~mlaas_jupyter.errors.ExpressionError` quoting the call.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["KINEMATICS", "Kinematic", "KinematicsError"]

_NEAREST_HINT = (
    "; for each object's nearest object of another collection use "
    "min_delta_r(eta1, phi1, eta2, phi2)"
)


class KinematicsError(ValueError):
    """Arguments a kinematic function cannot combine (the message names them)."""


@dataclass(frozen=True)
class Kinematic:
    """One kinematic function: its argument names (the contract) and implementation."""

    params: tuple[str, ...]
    fn: Callable[..., Any]
    takes_n: bool = False

    def usage(self, name: str) -> str:
        """``"inv_mass() takes pt, eta, phi, mass and optionally n=<int>"``."""
        optional = " and optionally n=<int>" if self.takes_n else ""
        return f"{name}() takes {', '.join(self.params)}{optional}"


def _ndim(value: Any) -> int:
    return int(getattr(value, "ndim", 0))


@functools.cache
def _behavior() -> Any:
    # imported on first use: ``import vector`` also imports sympy (~0.15 s), which every
    # ``mlaas`` command would pay otherwise
    import vector

    return vector.backends.awkward.behavior


def _vectors(with_name: str, **fields: Any) -> ak.Array:
    """``fields`` broadcast against each other as ``vector`` records named ``with_name``."""
    # passed to ak.zip rather than registered globally (vector.register_awkward), so other
    # awkward users in the process see no change
    return ak.zip(fields, with_name=with_name, behavior=_behavior())


def _check_objects(name: str, params: tuple[str, ...], values: tuple[Any, ...]) -> None:
    """Raise when two jagged arguments have different numbers of objects in an event."""
    jagged = [(p, v) for p, v in zip(params, values, strict=True) if _ndim(v) >= 2]
    if len(jagged) < 2:
        return
    first, counts = jagged[0][0], ak.num(jagged[0][1], axis=1)
    for param, value in jagged[1:]:
        # a missing list broadcasts to missing, so it is no mismatch
        differ = np.asarray(ak.fill_none(counts != ak.num(value, axis=1), False), dtype=bool)
        if differ.any():
            event = int(np.flatnonzero(differ)[0])
            numbers = f"{counts[event]} and {ak.num(value, axis=1)[event]}"
            hint = _NEAREST_HINT if name == "delta_r" else ""
            raise KinematicsError(
                f"{name}(): {first} and {param} have different numbers of objects "
                f"per event (event {event} of the chunk: {numbers}){hint}"
            )


def _plain(value: Any) -> ak.Array:
    # the numbers vector returns carry its behaviours; later operations need none of them
    return ak.Array(value.layout) if isinstance(value, ak.Array) else value


def _elementwise(name: str, params: str, compute: Callable[..., Any]) -> Kinematic:
    """A function of ``params`` that maps each object (or event) to one number."""
    names = tuple(params.split())

    def run(*values: Any) -> Any:
        if all(_ndim(v) == 0 for v in values):  # constants only: one number
            arrays = tuple(np.asarray([v], dtype=np.float64) for v in values)
            return float(np.asarray(compute(*arrays))[0])
        _check_objects(name, names, values)
        result = _plain(compute(*values))
        if any(isinstance(v, ak.Array) for v in values):
            return result
        return np.asarray(ak.to_numpy(result))

    return Kinematic(names, run)


def _delta_phi(phi1: Any, phi2: Any) -> Any:
    return _vectors("Vector2D", rho=1.0, phi=phi1).deltaphi(_vectors("Vector2D", rho=1.0, phi=phi2))


def _directions(eta: Any, phi: Any) -> ak.Array:
    # delta R needs only the direction; unit transverse length stands in for pt
    return _vectors("Vector3D", rho=1.0, phi=phi, eta=eta)


def _delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> Any:
    return _directions(eta1, phi1).deltaR(_directions(eta2, phi2))


def _inv_mass(pt: Any, eta: Any, phi: Any, mass: Any, n: int | None = None) -> ak.Array:
    """Mass of the sum of each event's first ``n`` objects (all with ``n`` None).

    Events with fewer than ``n`` objects (with no object when ``n`` is None) are missing.
    """
    values = (pt, eta, phi, mass)
    if max(_ndim(v) for v in values) < 2:
        raise KinematicsError(
            "inv_mass() needs a collection (a list per event, e.g. Jet_pt), but all its "
            "arguments have one value per event"
        )
    _check_objects("inv_mass", INV_MASS_PARAMS, values)
    objects = _vectors("Momentum4D", pt=pt, eta=eta, phi=phi, mass=mass)
    if n is not None:
        objects = objects[:, : min(n, np.iinfo(np.int64).max)]
    enough = ak.fill_none(ak.num(objects, axis=1) >= (n or 1), False)
    return ak.mask(_plain(ak.sum(objects, axis=1).mass), enough)


def _min_delta_r(eta1: Any, phi1: Any, eta2: Any, phi2: Any) -> ak.Array:
    """Per object of collection 1 (or per event, when it is flat), the smallest delta R
    to the objects of collection 2 in the same event; +inf when collection 2 is empty."""
    if max(_ndim(eta2), _ndim(phi2)) < 2:
        raise KinematicsError(
            "min_delta_r(): eta2 and phi2 must be a collection (a list per event, e.g. "
            "Muon_eta), but they have one value per event"
        )
    if max(_ndim(eta1), _ndim(phi1)) == 0:
        raise KinematicsError("min_delta_r(): eta1 and phi1 must be branches, not numbers")
    _check_objects("min_delta_r", ("eta1", "phi1"), (eta1, phi1))
    _check_objects("min_delta_r", ("eta2", "phi2"), (eta2, phi2))
    first, second = _directions(eta1, phi1), _directions(eta2, phi2)
    if first.ndim >= 2:  # every object of 1 against every object of 2, one list each
        first, second = first[:, :, np.newaxis], second[:, np.newaxis, :]
    else:  # one object per event against its list
        first = first[:, np.newaxis]
    # the nearest of no object is infinitely far (isolated): min's identity, +inf
    nearest = ak.min(first.deltaR(second), axis=-1, mask_identity=False)
    # ... but an object of collection 1 that is missing (Jet_eta[:, 0]) stays missing
    missing = [ak.is_none(v, axis=-1) for v in (eta1, phi1) if _ndim(v) >= 1]
    hidden = functools.reduce(operator.or_, missing)
    if ak.any(hidden, axis=None):
        nearest = ak.mask(nearest, ~hidden)
    return _plain(nearest)


INV_MASS_PARAMS = ("pt", "eta", "phi", "mass")

KINEMATICS: dict[str, Kinematic] = {
    "delta_phi": _elementwise("delta_phi", "phi1 phi2", _delta_phi),
    "delta_r": _elementwise("delta_r", "eta1 phi1 eta2 phi2", _delta_r),
    "inv_mass": Kinematic(INV_MASS_PARAMS, _inv_mass, takes_n=True),
    "min_delta_r": Kinematic(("eta1", "phi1", "eta2", "phi2"), _min_delta_r),
    "px": _elementwise("px", "pt phi", lambda pt, phi: _vectors("Momentum2D", pt=pt, phi=phi).px),
    "py": _elementwise("py", "pt phi", lambda pt, phi: _vectors("Momentum2D", pt=pt, phi=phi).py),
    # pz does not depend on phi; any azimuth completes the vector
    "pz": _elementwise(
        "pz", "pt eta", lambda pt, eta: _vectors("Momentum3D", pt=pt, phi=0.0, eta=eta).pz
    ),
    "energy": _elementwise(
        "energy",
        "pt eta phi mass",
        lambda pt, eta, phi, mass: (
            _vectors("Momentum4D", pt=pt, eta=eta, phi=phi, mass=mass).energy
        ),
    ),
    "pt": _elementwise("pt", "px py", lambda px, py: _vectors("Momentum2D", px=px, py=py).pt),
    "eta": _elementwise(
        "eta", "px py pz", lambda px, py, pz: _vectors("Momentum3D", px=px, py=py, pz=pz).eta
    ),
    "phi": _elementwise("phi", "px py", lambda px, py: _vectors("Momentum2D", px=px, py=py).phi),
    "mass": _elementwise(
        "mass",
        "px py pz energy",
        lambda px, py, pz, energy: _vectors("Momentum4D", px=px, py=py, pz=pz, energy=energy).mass,
    ),
}
