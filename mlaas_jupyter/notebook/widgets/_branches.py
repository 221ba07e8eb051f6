"""``BranchSelector``: pick the branches of a tree to train on.

Sized for NanoAOD (~1,500 branches): the branches are grouped by collection
(``Jet_pt``, ``Jet_eta`` -> ``Jet``; RNTuple fields ``Jet.pt`` likewise), a filter
takes several comma-separated patterns, and the front-end draws only the rows of the
groups that are open.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ...errors import SourceError
from ...stream import inspect_file
from ...stream.sources import resolve_files

__all__ = ["OTHER", "BranchSelector", "collection_of", "group_branches", "matches_filter"]

_STATIC = Path(__file__).parent / "static"
#: the group of the branches that belong to no collection (``run``, ``event``...)
OTHER = "(other)"
_SEPARATOR = re.compile(r"[_.]")
_GLOB = re.compile(r"[*?\[]")
KINDS = ("flat", "jagged", "fixed", "unsupported")


def collection_of(branch: str) -> str:
    """``Jet_pt`` -> ``Jet`` (NanoAOD's naming), ``Jet.pt`` -> ``Jet`` (RNTuple fields)."""
    return _SEPARATOR.split(branch, maxsplit=1)[0]


def group_branches(names: Iterable[str]) -> dict[str, list[str]]:
    """Collection -> its branches, the collections sorted by name, :data:`OTHER` last.

    A name without a separator joins the collection it names, or whose counter it is
    (NanoAOD's ``nJet`` counts ``Jet``); the rest (``run``, ``event``) form
    :data:`OTHER`.
    """
    names = list(names)
    collections = {collection_of(n) for n in names if _SEPARATOR.search(n)}
    groups: dict[str, list[str]] = {}
    for name in names:
        if _SEPARATOR.search(name) or name in collections:
            group = collection_of(name)
        elif name.startswith("n") and name[1:] in collections:
            group = name[1:]
        else:
            group = OTHER
        groups.setdefault(group, []).append(name)
    order = sorted((g for g in groups if g != OTHER), key=lambda g: (g.lower(), g))
    return {g: groups[g] for g in [*order, *([OTHER] if OTHER in groups else [])]}


def matches_filter(name: str, query: str) -> bool:
    """Whether ``name`` passes the filter box's ``query`` (what the front-end does too).

    ``query`` is comma-separated terms, any of which may match, case-insensitively: a
    term with ``*``, ``?`` or ``[`` is a glob of the whole name (``Jet_*``), any other
    term a substring (``pt``). An empty query passes everything.
    """
    terms = [t.strip().lower() for t in query.split(",") if t.strip()]
    if not terms:
        return True
    lowered = name.lower()
    return any(
        fnmatch.fnmatchcase(lowered, term) if _GLOB.search(term) else term in lowered
        for term in terms
    )


def _as_list(files: str | Path | Iterable[str | Path]) -> list[str]:
    if isinstance(files, str | Path):
        return [str(files)]
    return [str(f) for f in files]


class BranchSelector(anywidget.AnyWidget):
    """A filterable list of the branches of a tree, grouped by collection, to tick.

    Parameters
    ----------
    files
        A ROOT file, a glob, a folder, or a list of them; the first file is described.
    tree
        The tree to show; found automatically when the file has exactly one.
    jagged_length
        Padded length assumed for every jagged branch in the width estimate and the spec.
    mask
        Whether jagged collections get a mask (one column per padded object).

    Examples
    --------
    >>> selector = BranchSelector("nano_*.root")        # doctest: +SKIP
    >>> selector.select("Jet_*", "MET_pt"); selector.width   # doctest: +SKIP
    >>> selector.query = "HLT_Iso*"; len(selector.shown)     # doctest: +SKIP
    """

    _esm = _STATIC / "branches.js"
    _css = _STATIC / "widgets.css"

    files = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tree = traitlets.Unicode().tag(sync=True)
    trees = traitlets.List(traitlets.Unicode()).tag(sync=True)
    entries = traitlets.Int(0).tag(sync=True)
    #: each branch's description, plus ``group``: its collection in the list
    branches = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: the filter box (see :func:`matches_filter`); the front-end sets it as one types
    query = traitlets.Unicode("").tag(sync=True)
    jagged_length = traitlets.Int(8).tag(sync=True)
    mask = traitlets.Bool(True).tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    features = traitlets.Int(0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    _by_name_cache: tuple[list[dict[str, Any]], dict[str, dict[str, Any]]] | None = None

    def __init__(
        self,
        files: str | Path | Iterable[str | Path],
        tree: str | None = None,
        *,
        jagged_length: int = 8,
        mask: bool = True,
        **kwargs: Any,
    ) -> None:
        resolved = resolve_files(_as_list(files))
        if not resolved:
            raise SourceError(str(files), "no files match")
        infos = inspect_file(resolved[0])
        names = [info.name for info in infos]
        if tree is None:
            if len(names) != 1:
                raise SourceError(
                    resolved[0], f"has {len(names)} trees; choose one with tree=: {names}"
                )
            tree = names[0]
        elif tree not in names:
            raise SourceError(resolved[0], f"has no tree {tree!r}; its trees: {names}")
        info = next(i for i in infos if i.name == tree)
        described = [b.to_dict() for b in info.branches]
        group = {n: g for g, ns in group_branches(b["name"] for b in described).items() for n in ns}
        super().__init__(
            files=resolved,
            tree=tree,
            trees=names,
            entries=info.entries,
            branches=[{**b, "group": group[b["name"]]} for b in described],
            jagged_length=jagged_length,
            mask=mask,
            **kwargs,
        )
        self._update_width()

    @property
    def kinds(self) -> dict[str, str]:
        """Branch name -> kind (flat, jagged, fixed, unsupported)."""
        return {name: b["kind"] for name, b in self._by_name.items()}

    @property
    def groups(self) -> dict[str, list[str]]:
        """Collection -> its branches, as the front-end groups and orders them."""
        return group_branches(b["name"] for b in self.branches)

    @property
    def counts(self) -> dict[str, int]:
        """Branches per kind (``flat``, ``jagged``, ``fixed``, ``unsupported``)."""
        found = Counter(b["kind"] for b in self.branches)
        return {kind: found.get(kind, 0) for kind in KINDS}

    @property
    def shown(self) -> list[str]:
        """The branches the filter box (:attr:`query`) lets through."""
        return [b["name"] for b in self.branches if matches_filter(b["name"], self.query)]

    @property
    def _by_name(self) -> dict[str, dict[str, Any]]:
        # cached per list of branches: a NanoAOD selection is checked against 1,500
        cached = self._by_name_cache
        if cached is None or cached[0] is not self.branches:
            cached = (self.branches, {b["name"]: b for b in self.branches})
            self._by_name_cache = cached
        return cached[1]

    @traitlets.validate("selected")
    def _only_usable(self, proposal: dict[str, Any]) -> list[str]:
        kinds = self.kinds
        wanted = list(dict.fromkeys(proposal["value"]))
        unknown = [n for n in wanted if n not in kinds]
        if unknown:
            raise traitlets.TraitError(f"no branch {unknown[0]!r} in tree {self.tree!r}")
        return [n for n in wanted if kinds[n] != "unsupported"]

    @traitlets.observe("selected", "jagged_length", "mask")
    def _on_change(self, _: dict[str, Any]) -> None:
        self._update_width()

    def _update_width(self) -> None:
        by_name, width = self._by_name, 0
        collections: set[str] = set()
        for name in self.selected:
            kind = by_name[name]["kind"]
            if kind == "jagged":
                width += self.jagged_length
                collections.add(collection_of(name))
            elif kind == "fixed":
                width += int(by_name[name].get("width") or 1)
            else:
                width += 1
        if self.mask:
            width += self.jagged_length * len(collections)
        self.features = len(self.selected)
        self.width = width

    def _add(self, names: Iterable[str]) -> list[str]:
        kinds = self.kinds
        added = [n for n in names if kinds[n] != "unsupported"]
        self.selected = [*self.selected, *added]
        return added

    def select(self, *patterns: str) -> list[str]:
        """Add the usable branches matching any of the glob ``patterns``; returns them."""
        return self._add(
            b["name"]
            for b in self.branches
            if any(fnmatch.fnmatchcase(b["name"], p) for p in patterns)
        )

    def deselect(self, *patterns: str) -> list[str]:
        """Remove the selected branches matching any of ``patterns``; returns them."""
        dropped = [n for n in self.selected if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        self.selected = [n for n in self.selected if n not in dropped]
        return dropped

    def select_shown(self) -> list[str]:
        """Add the usable branches the filter box shows (its "select shown")."""
        return self._add(self.shown)

    def select_group(self, group: str, *, on: bool = True) -> list[str]:
        """Tick (``on=False``: untick) the shown branches of collection ``group``, as
        its checkbox does; returns the branches added or removed."""
        groups = self.groups
        if group not in groups:
            raise KeyError(f"no collection {group!r} in tree {self.tree!r}; see .groups")
        members = [n for n in groups[group] if matches_filter(n, self.query)]
        if on:
            return self._add(members)
        dropped = [n for n in self.selected if n in set(members)]
        self.selected = [n for n in self.selected if n not in set(dropped)]
        return dropped

    def to_spec(self, classes: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """A DatasetSpec mapping with the selection (``classes``: name -> files; by
        default one class per file, which suits a signal file and a background file)."""
        if not self.selected:
            raise SourceError(self.files[0], "no branch is selected")
        if classes is None:
            classes = {Path(f).stem: [f] for f in self.files}
        kinds = self.kinds
        jagged = [n for n in self.selected if kinds[n] == "jagged"]
        spec: dict[str, Any] = {
            "tree": self.tree,
            "classes": {k: list(v) for k, v in classes.items()},
            "branches": list(self.selected),
        }
        if jagged:
            spec["jagged"] = {"*": {"length": self.jagged_length, "mask": self.mask}}
        return spec
