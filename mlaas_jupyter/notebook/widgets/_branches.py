"""``BranchSelector``: pick the branches of a tree to train on."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ...errors import SourceError
from ...stream import inspect_file
from ...stream.sources import resolve_files

__all__ = ["BranchSelector", "collection_of"]

_STATIC = Path(__file__).parent / "static"


def collection_of(branch: str) -> str:
    """``Jet_pt`` -> ``Jet``: NanoAOD's naming of the branches of one collection."""
    return branch.split("_", 1)[0] if "_" in branch else branch


def _as_list(files: str | Path | Iterable[str | Path]) -> list[str]:
    if isinstance(files, str | Path):
        return [str(files)]
    return [str(f) for f in files]


class BranchSelector(anywidget.AnyWidget):
    """A searchable table of the branches of a tree, with checkboxes.

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
    >>> selector = BranchSelector("data/*.root")        # doctest: +SKIP
    >>> selector.select("Jet_*"); selector.width       # doctest: +SKIP
    """

    _esm = _STATIC / "branches.js"
    _css = _STATIC / "widgets.css"

    files = traitlets.List(traitlets.Unicode()).tag(sync=True)
    tree = traitlets.Unicode().tag(sync=True)
    trees = traitlets.List(traitlets.Unicode()).tag(sync=True)
    entries = traitlets.Int(0).tag(sync=True)
    branches = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    jagged_length = traitlets.Int(8).tag(sync=True)
    mask = traitlets.Bool(True).tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    features = traitlets.Int(0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

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
        super().__init__(
            files=resolved,
            tree=tree,
            trees=names,
            entries=info.entries,
            branches=[b.to_dict() for b in info.branches],
            jagged_length=jagged_length,
            mask=mask,
            **kwargs,
        )
        self._update_width()

    @property
    def kinds(self) -> dict[str, str]:
        """Branch name -> kind (flat, jagged, fixed, unsupported)."""
        return {b["name"]: b["kind"] for b in self.branches}

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
        kinds, width = self.kinds, 0
        collections: set[str] = set()
        for name in self.selected:
            if kinds[name] == "jagged":
                width += self.jagged_length
                collections.add(collection_of(name))
            elif kinds[name] == "fixed":
                info = next(b for b in self.branches if b["name"] == name)
                width += int(info.get("width") or 1)
            else:
                width += 1
        if self.mask:
            width += self.jagged_length * len(collections)
        self.features = len(self.selected)
        self.width = width

    def select(self, pattern: str) -> list[str]:
        """Add the usable branches matching the glob ``pattern``; returns them."""
        matched = [
            b["name"]
            for b in self.branches
            if fnmatch.fnmatchcase(b["name"], pattern) and b["kind"] != "unsupported"
        ]
        self.selected = [*self.selected, *matched]
        return matched

    def deselect(self, pattern: str) -> list[str]:
        """Remove the selected branches matching ``pattern``; returns them."""
        dropped = [n for n in self.selected if fnmatch.fnmatchcase(n, pattern)]
        self.selected = [n for n in self.selected if n not in dropped]
        return dropped

    def to_spec(self, classes: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """A DatasetSpec mapping with the selection (``classes``: name -> files; by
        default one class per file, which suits a signal file and a background file)."""
        if not self.selected:
            raise SourceError(self.files[0], "no branch is selected")
        if classes is None:
            classes = {Path(f).stem: [f] for f in self.files}
        jagged = [n for n in self.selected if self.kinds[n] == "jagged"]
        spec: dict[str, Any] = {
            "tree": self.tree,
            "classes": {k: list(v) for k, v in classes.items()},
            "branches": list(self.selected),
        }
        if jagged:
            spec["jagged"] = {"*": {"length": self.jagged_length, "mask": self.mask}}
        return spec
