"""RNTuples (``ROOT::RNTuple``, ROOT >= 6.34; what uproot >= 5.7 writes for
``file[name] = {...}``) read as trees with uproot, through the :class:`TreeSource` protocol.

Fields become branches by their awkward form, not their C++ type name (uproot reports
``double`` for the ``pt`` of a ``std::vector<Jet>``):

- a number is ``flat``, a ``std::array`` of numbers ``fixed``, a vector of numbers
  ``jagged``;
- the fields of a record are branches named ``parent.field`` (``MET.pt``, flat); the
  fields of a collection of records are jagged (``Jet.pt`` of ``std::vector<Jet>``); the
  record itself is listed as ``unsupported``, naming the branches it holds;
- strings, optional values, variants and nested containers are ``unsupported``.

Entry ranges read with ``align=True`` end on cluster boundaries, so no cluster is
decompressed twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from ..errors import SourceError
from ._root_io import cause, decompression_executor
from ._uproot_source import UprootSource
from .schema import BranchInfo

__all__ = ["RNTupleSource", "describe_fields", "index_subfields"]

_STRINGS = ("string", "bytestring")
_SHOWN_CHILDREN = 4


def index_subfields(ntuple: Any) -> None:
    """Fill uproot's cache of each field's subfields in one pass over the field records.

    uproot 5.7 finds the subfields of each field by scanning every field record, so the
    first ``keys()`` or ``arrays()`` of a 1,500-field RNTuple (NanoAOD) takes seconds
    per opened file; this gives the same lists (anonymous fields replaced by their
    subfields, in record order) in one pass (about 0.15 s for 1,500 fields). Without
    the private attributes it relies on (another uproot version) it does nothing and
    uproot finds them itself.
    """
    fields = getattr(ntuple, "all_fields", None)
    related = getattr(ntuple, "_related_ids", None)
    if not isinstance(fields, list) or not isinstance(related, Mapping):
        return
    if not all(hasattr(field, "_fields") for field in fields):
        return

    def subfields(field_id: int) -> list[Any]:
        found: list[Any] = []
        for child in related.get(field_id, ()):
            field = fields[child]
            found.extend(subfields(child) if field.is_anonymous else [field])
        return found

    for field in fields:
        if field._fields is None:
            field._fields = subfields(field.field_id)


def _number(form: Any) -> str | None:
    """The dtype name of a form holding one number (or bool) per item."""
    if isinstance(form, ak.forms.NumpyForm) and not form.inner_shape:
        dtype = np.dtype(form.primitive)
        if dtype.kind in "biuf":
            return str(dtype.name)
    return None


def _fixed(form: Any) -> tuple[str, int] | None:
    """(dtype, width) of nested fixed-size arrays of numbers (``std::array``)."""
    width = 1
    if not isinstance(form, ak.forms.RegularForm):
        return None
    while isinstance(form, ak.forms.RegularForm):
        width *= int(form.size)
        form = form.content
    dtype = _number(form)
    return (dtype, width) if dtype is not None else None


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_CHILDREN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN_CHILDREN else "")


def _describe(
    name: str, form: Any, typenames: Mapping[str, str], within: str | None
) -> list[BranchInfo]:
    """The branches of the field ``name`` (its own first, then its subfields');
    ``within`` names the collection of records it belongs to (then it is jagged)."""
    typename = typenames.get(name) or ""
    if within is not None:
        typename = f"{typename or _short(str(form.type))} (per {within} item)"
    elif not typename:
        typename = _short(str(form.type))
    dtype = _number(form)
    if dtype is not None:
        return [BranchInfo(name, typename, "jagged" if within else "flat", dtype)]
    fixed = _fixed(form)
    if fixed is not None and within is None:
        return [BranchInfo(name, typename, "fixed", fixed[0], fixed[1])]
    reason = "objects or nested containers"
    if isinstance(form, ak.forms.ListOffsetForm | ak.forms.ListForm):
        content = form.content
        if form.parameter("__array__") in _STRINGS:
            reason = "strings are not numbers"
        elif within is None and _number(content) is not None:
            return [BranchInfo(name, typename, "jagged", _number(content))]
        elif within is None and isinstance(content, ak.forms.RecordForm) and not content.is_tuple:
            return _record(name, typename, content, typenames, name, "a collection of records")
    elif isinstance(form, ak.forms.RecordForm):
        if form.is_tuple:
            reason = "tuples (std::pair, std::tuple) are not read"
        else:
            return _record(name, typename, form, typenames, within, "a record")
    elif form.is_option or form.is_union:
        reason = "optional values or variants"
    return [BranchInfo(name, typename, "unsupported", reason=reason)]


def _record(
    name: str,
    typename: str,
    form: Any,
    typenames: Mapping[str, str],
    within: str | None,
    what: str,
) -> list[BranchInfo]:
    children = [
        info
        for field, content in zip(form.fields, form.contents, strict=True)
        for info in _describe(f"{name}.{field}", content, typenames, within)
    ]
    usable = [c.name for c in children if c.kind != "unsupported"]
    reason = f"{what}: its fields are branches ({_listing(usable)})" if usable else what
    return [BranchInfo(name, typename, "unsupported", reason=reason), *children]


def describe_fields(ntuple: Any) -> dict[str, BranchInfo]:
    """The branches of an uproot RNTuple, in field order (see the module docstring)."""
    index_subfields(ntuple)
    typenames = {str(path): str(field.typename) for path, field in ntuple.iteritems()}
    branches: dict[str, BranchInfo] = {}
    for field in ntuple.fields:
        # the form of one top-level field at a time: uproot builds it from that field's
        # records only (the RNTuple's whole form compares every key with every field)
        form = field.to_akform()[0].contents[0]
        for info in _describe(str(field.name), form, typenames, None):
            branches[info.name] = info
    return branches


def _column(arrays: Mapping[str, Any], name: str) -> Any:
    # uproot hands subfields back inside their parents: "Jet.pt" is arrays["Jet"]["pt"]
    parts = name.split(".")
    value = arrays[parts[0]]
    for part in parts[1:]:
        value = value[part]
    return value


def _column_groups(columns: Sequence[str], workers: int) -> list[list[str]]:
    """``columns`` dealt into at most ``workers`` groups; the fields of one record
    (``Jet.pt``, ``Jet.eta``) stay together, since uproot reads them as one field."""
    by_field: dict[str, list[str]] = {}
    for column in columns:
        by_field.setdefault(column.split(".", 1)[0], []).append(column)
    groups: list[list[str]] = [[] for _ in range(max(1, min(workers, len(by_field))))]
    for index, members in enumerate(by_field.values()):
        groups[index % len(groups)].extend(members)
    return groups


class RNTupleSource(UprootSource):
    """An RNTuple of a ROOT file, read with uproot (``handle`` is closed with it)."""

    format = "RNTuple"
    noun = "RNTuple"

    def __init__(self, path: str, name: str, handle: Any) -> None:
        self.path, self.name, self._file = path, name, handle
        try:
            self._object = handle[name]
            self._branches = describe_fields(self._object)
            self._clusters = [int(c.num_first_entry) for c in self._object.cluster_summaries]
        except Exception as err:
            self.close()
            raise SourceError(path, f"cannot read RNTuple {name!r} ({cause(err)})") from err

    def _boundaries(self) -> Sequence[int]:
        return self._clusters

    def _read(self, columns: Sequence[str], start: int, end: int) -> dict[str, Any]:
        """The fields of ``columns`` for entries ``start:end``, one group per thread.

        uproot 5.7 decompresses an RNTuple's pages in the calling thread (it ignores a
        decompression executor), so columns are read in parallel here: zlib, lz4 and
        zstd release the GIL, and two threads read the benchmark's columns ~1.7x faster.
        """

        def read(group: list[str]) -> dict[str, Any]:
            return dict(self._object.arrays(group, entry_start=start, entry_stop=end, how=dict))

        pool = decompression_executor()
        groups = _column_groups(columns, pool.num_workers)
        others = [pool.submit(read, group) for group in groups[1:]]
        arrays = read(groups[0])
        for future in others:
            arrays.update(future.result())
        # uproot hands subfields back inside their parents: "Jet.pt" is arrays["Jet"]["pt"]
        return {c: _column(arrays, c) for c in columns}
