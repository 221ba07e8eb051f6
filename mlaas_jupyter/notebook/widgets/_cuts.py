"""``CutEditor``: new branches and cuts, validated as you type, with class histograms."""

from __future__ import annotations

import io
import threading
import tokenize
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w

from ...errors import MlaasError
from ...specs.histograms import HistogramRequest
from ...stream import DatasetSpec, inspect_file
from ...stream.expressions import compile_expression
from ...stream.histograms import compute_histograms
from ...stream.sources import resolve_files
from ._branches import BranchSelector

__all__ = ["CutEditor"]

_DEBOUNCE_S = 0.3


def _base_spec(
    spec: DatasetSpec | Mapping[str, Any] | BranchSelector | str | Path,
) -> dict[str, Any]:
    if isinstance(spec, BranchSelector):
        return spec.to_spec() if spec.selected else {**_files_spec(spec.files), "tree": spec.tree}
    if isinstance(spec, str | Path):
        path = Path(spec)
        if path.suffix in (".yaml", ".yml", ".json"):
            return DatasetSpec.from_file(path).to_dict()
        return _files_spec(resolve_files([str(spec)]))
    if isinstance(spec, DatasetSpec):
        return spec.to_dict()
    return DatasetSpec.from_dict(dict(spec), Path.cwd()).to_dict()


def _files_spec(files: list[str]) -> dict[str, Any]:
    return {"classes": {Path(f).stem: [f] for f in files}}


def _class_files(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """Class name -> file patterns, from any of the spec's ways of writing classes."""
    if "classes" not in spec:
        return {"all": [str(f) for f in spec["files"]]}
    out: dict[str, list[str]] = {}
    for name, value in spec["classes"].items():
        files = value["files"] if isinstance(value, Mapping) else value
        out[str(name)] = [str(files)] if isinstance(files, str) else [str(f) for f in files]
    return out


def _parse_definitions(text: str) -> tuple[dict[str, str], dict[int, str]]:
    """``name = expression`` lines -> (definitions, line number -> syntax problem)."""
    definitions: dict[str, str] = {}
    problems: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, expression = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not expression.strip():
            problems[number] = "write NAME = EXPRESSION"
        else:
            definitions[name] = expression.strip()
    return definitions, problems


def _inline(text: str, definitions: Mapping[str, str]) -> str:
    """``text`` with each new-branch name replaced by its (parenthesised) expression, so
    the histogram core, which reads file branches only, can evaluate it."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    parts = [
        (tok.type, f"({definitions[tok.string]})")
        if tok.type == tokenize.NAME and tok.string in definitions
        else (tok.type, tok.string)
        for tok in tokens
    ]
    return tokenize.untokenize(parts).strip()


class CutEditor(w.VBox):  # type: ignore[misc]
    """Edit new branches and cuts; see each class before and after the cuts.

    Parameters
    ----------
    spec
        A ``DatasetSpec`` (or its mapping, or a YAML file), a :class:`BranchSelector`,
        or files (one class per file).
    branch
        The branch or new branch to histogram first.
    max_events
        Events read per class for the histograms (kept small: updates stay interactive).
    """

    def __init__(
        self,
        spec: DatasetSpec | Mapping[str, Any] | BranchSelector | str | Path,
        branch: str | None = None,
        *,
        max_events: int = 50_000,
        bins: int = 40,
    ) -> None:
        self.base = _base_spec(spec)
        self.classes = _class_files(self.base)
        first = resolve_files(next(iter(self.classes.values())))[0]
        infos = inspect_file(first, self.base.get("tree"))
        self.tree: str = self.base.get("tree") or infos[0].name
        info = next(i for i in infos if i.name == self.tree)
        self.known = [b.name for b in info.branches if b.kind != "unsupported"]
        self.max_events, self.bins = max_events, bins
        self.errors: dict[str, str] = {}
        self.result: dict[str, Any] | None = None
        self._timer: threading.Timer | None = None
        new = dict(self.base.get("new_branches") or {})
        self.definitions_box = w.Textarea(
            "\n".join(f"{k} = {v}" for k, v in new.items()),
            placeholder="HT = sum(Jet_pt)",
            description="new branches",
            layout=w.Layout(width="100%", height="5em"),
        )
        self.cuts_box = w.Textarea(
            "\n".join(self.base.get("cuts") or []),
            placeholder="nJet >= 2",
            description="cuts",
            layout=w.Layout(width="100%", height="5em"),
        )
        self.branch_box = w.Combobox(
            value=branch or _first_match(self.base.get("branches") or ["*"], self.known),
            options=self.known,
            description="histogram",
            ensure_option=False,
        )
        self.messages = w.HTML()
        self.plot = w.Image(format="png", layout=w.Layout(max_width="640px"))
        self.efficiency_box = w.HTML()
        super().__init__(
            [
                self.definitions_box,
                self.cuts_box,
                self.messages,
                self.branch_box,
                self.plot,
                self.efficiency_box,
            ]
        )
        for box in (self.definitions_box, self.cuts_box, self.branch_box):
            box.observe(self._on_edit, names="value")
        self.refresh()

    # -- state -------------------------------------------------------------------------

    @property
    def new_branches(self) -> dict[str, str]:
        return _parse_definitions(self.definitions_box.value)[0]

    @property
    def cuts(self) -> list[str]:
        lines = self.cuts_box.value.splitlines()
        return [c.strip() for c in lines if c.strip() and not c.lstrip().startswith("#")]

    @property
    def branch(self) -> str:
        return str(self.branch_box.value).strip()

    @property
    def efficiency(self) -> dict[str, float | None]:
        """Fraction of each class's events passing the cuts (None before any read)."""
        if self.result is None:
            return {}
        return {k: v["efficiency"] for k, v in self.result["classes"].items()}

    def to_spec(self) -> dict[str, Any]:
        """The DatasetSpec mapping with these new branches and cuts (errors refused)."""
        problems = {k: v for k, v in self.validate().items() if k != "histogram"}
        if problems:
            where, message = next(iter(problems.items()))
            raise MlaasError(f"{where}: {message}")
        return {**self.base, "new_branches": self.new_branches, "cuts": self.cuts}

    # -- validation and histograms -----------------------------------------------------

    def validate(self) -> dict[str, str]:
        """Check every line; returns (and shows) ``{"cuts line 2": message, ...}``."""
        errors: dict[str, str] = {}
        definitions, problems = _parse_definitions(self.definitions_box.value)
        for number, problem in problems.items():
            errors[f"new branches line {number}"] = problem
        known = list(self.known)
        lines = self.definitions_box.value.splitlines()
        for number, line in enumerate(lines, 1):
            name, _, expression = line.partition("=")
            if name.strip() in definitions and number not in problems:
                try:
                    compile_expression(expression.strip(), known)
                except MlaasError as err:
                    errors[f"new branches line {number}"] = str(err)
                known.append(name.strip())
        for number, line in enumerate(self.cuts_box.value.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    compile_expression(line.strip(), known)
                except MlaasError as err:
                    errors[f"cuts line {number}"] = str(err)
        if self.branch not in known:
            errors["histogram"] = f"no branch or new branch {self.branch!r}"
        self.errors = errors
        self.messages.value = "".join(
            f"<div class='mlaas-error' style='color: var(--jp-error-color1)'>"
            f"{_escape(k)}: {_escape(v)}</div>"
            for k, v in errors.items()
        )
        return errors

    def refresh(self) -> None:
        """Validate, then (when valid) read and draw the histograms now."""
        if self._timer is not None:
            self._timer.cancel()
        if self.validate():
            return
        definitions = self.new_branches
        request = HistogramRequest(
            classes=self.classes,
            expression=_inline(self.branch, definitions),
            tree=self.tree,
            cuts=tuple(_inline(c, definitions) for c in self.cuts),
            bins=self.bins,
            max_events=self.max_events,
        )
        try:
            self.result = compute_histograms(request)
        except MlaasError as err:
            self.errors = {"histogram": str(err)}
            self.messages.value = f"<div class='mlaas-error'>{_escape(str(err))}</div>"
            return
        self.plot.value = _draw(self.result, self.branch)
        self.efficiency_box.value = "efficiency of the cuts: " + ", ".join(
            f"<b>{_escape(k)}</b> {v:.1%}" for k, v in self.efficiency.items() if v is not None
        )

    def _on_edit(self, _: dict[str, Any]) -> None:
        if self.validate():
            return  # errors show at once; histograms wait for valid input
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(_DEBOUNCE_S, self.refresh)
        self._timer.daemon = True
        self._timer.start()


def _first_match(patterns: list[str], known: list[str]) -> str:
    import fnmatch

    for pattern in patterns:
        matched = [name for name in known if fnmatch.fnmatchcase(name, pattern)]
        if matched:
            return matched[0]
    return known[0]


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _draw(result: Mapping[str, Any], label: str) -> bytes:
    """Overlaid step histograms per class, before (dashed) and after (solid) the cuts."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 3.4), dpi=90)
    axes = figure.subplots()
    edges = result["edges"]
    for index, (name, counts) in enumerate(result["classes"].items()):
        colour = f"C{index}"
        total_before = sum(counts["before"]) or 1.0
        before = [c / total_before for c in counts["before"]]
        after = [c / total_before for c in counts["after"]]
        axes.stairs(before, edges, color=colour, linestyle="--", label=f"{name} (all)")
        axes.stairs(after, edges, color=colour, label=f"{name} (after cuts)")
    axes.set_xlabel(label)
    axes.set_ylabel("fraction of events")
    axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
