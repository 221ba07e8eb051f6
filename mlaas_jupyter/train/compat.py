"""MLaaS4HEP workflow inputs (files.txt, labels.txt, model, params.json, preproc.json) as a
:class:`TrainSpec`. Keys without a counterpart are named in warnings; keys MLaaS4HEP never
had are :class:`SpecError`. Migration guide: ``docs/mlaas4hep.md``.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..stream._validate import as_mapping
from ..stream.spec import ClassGroup, DatasetSpec, JaggedSpec, Split
from .spec import ModelSpec, TrainConfig, TrainSpec

__all__ = ["DEFAULT_IDENTIFIER", "DEFAULT_REDIRECTOR", "MLAAS4HEP_SPLIT", "from_mlaas4hep"]

#: MLaaS4HEP's default XRootD redirector (used when ``params.json`` has no ``redirector``).
DEFAULT_REDIRECTOR = "root://cms-xrd-global.cern.ch"
#: Branches MLaaS4HEP never used as features when ``identifier`` is empty or absent.
DEFAULT_IDENTIFIER = ("run", "event", "luminosityBlock")
#: MLaaS4HEP held out 20 % for test, then 20 % of the rest for validation.
MLAAS4HEP_SPLIT = Split(train=0.64, validation=0.16, test=0.2)

_MAPPED = (
    "batch_size",
    "branch",
    "chunk_size",
    "epochs",
    "exclude_branches",
    "identifier",
    "nevts",
    "redirector",
    "selected_branches",
    "shuffle",
)
_IGNORED = {
    "verbose": "has no effect here (logging and progress are not set by the spec)",
    "hist": "has no effect (MLaaS4HEP's workflow did not read it either); no input "
    "histograms are written",
    "nan": "has no effect (MLaaS4HEP's training replaced NaN by 0 anyway); padded jagged "
    "slots are 0 here",
    "split": "has no effect (MLaaS4HEP's workflow did not use it either); the split is "
    "train 0.64 / validation 0.16 / test 0.2, as MLaaS4HEP's hard-coded one",
    "drop": "(legacy, columns dropped by the JSON/CSV readers) is not supported; list the "
    "columns in exclude_branches",
}


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as err:
        raise SpecError(str(path), f"cannot read the MLaaS4HEP {what} ({err.strerror})") from err


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-empty lines that are not ``#`` comments (as MLaaS4HEP skipped), numbered from 1."""
    rows = [(n, line.strip()) for n, line in enumerate(_read_text(path, what).splitlines(), 1)]
    return [(n, text) for n, text in rows if text and not text.startswith("#")]


def _read_json(path: Path, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(_read_text(path, what))
    except json.JSONDecodeError as err:
        raise SpecError(str(path), f"not valid JSON: {err}") from err
    if not isinstance(data, Mapping):
        raise SpecError(str(path), f"expected a JSON object, got {type(data).__name__}")
    return data


def _check_keys(where: str, data: Mapping[str, Any], allowed: tuple[str, ...], cuts: bool) -> None:
    for key in data:
        if not (key in allowed or (cuts and _is_cut_key(key))):
            known = ", ".join(sorted(allowed) + (["cut", "cut_<i>"] if cuts else []))
            raise SpecError(f"{where}.{key}", f"not an MLaaS4HEP field; known fields are {known}")


def _is_cut_key(key: str) -> bool:
    return key == "cut" or key.startswith("cut_")  # cut, cut_1, cut_2, ...: all ANDed


def _pattern(name: str) -> str:
    """An fnmatch pattern matching exactly ``name`` (MLaaS4HEP took names, not patterns)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _names(field: str, value: Any, base: Path) -> list[str]:
    """Branch names from a list, a comma-separated string, or a file with one per line."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        for candidate in (base / value, Path(value)):
            if candidate.is_file():
                return [text for _, text in _lines(candidate, "branch list")]
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    raise SpecError(field, f"expected a list of names or a comma-separated string, got {value!r}")


def _int(field: str, value: Any, allow_all: bool = False) -> int:
    """A positive integer (or -1, MLaaS4HEP's "all", when ``allow_all``)."""
    integer = isinstance(value, int) and not isinstance(value, bool)
    if integer and (value >= 1 or (allow_all and value == -1)):
        return int(value)
    hint = " (or -1 for all)" if allow_all else ""
    raise SpecError(field, f"expected a positive integer{hint}, got {value!r}")


def _flag(field: str, value: Any) -> bool:
    """MLaaS4HEP wrote ``"remove": "True"``; JSON ``true`` is accepted as well."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SpecError(field, f'expected "True" or "False", got {value!r}')


class _SplitChains(ast.NodeTransformer):
    """``0 <= n <= 2`` becomes ``(0 <= n) & (n <= 2)``: element-wise on arrays."""

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) == 1:
            return node
        lefts = [node.left, *node.comparators[:-1]]
        pairs = zip(lefts, node.ops, node.comparators, strict=True)
        parts = [ast.Compare(a, [op], [b]) for a, op, b in pairs]
        result: ast.expr = parts[0]
        for part in parts[1:]:
            result = ast.BinOp(result, ast.BitAnd(), part)
        return result


def _expression(field: str, text: Any) -> str:
    """An MLaaS4HEP (uproot) expression in our syntax: names as they are, chains split."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(field, f"expected an expression string, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise SpecError(field, f"not a valid expression {text!r}: {err.msg}") from err
    return ast.unparse(ast.fix_missing_locations(_SplitChains().visit(tree)))


def _cuts(where: str, entry: Mapping[str, Any], jagged: bool) -> list[str]:
    """The ``cut`` / ``cut_<i>`` entries of one branch: each is one more ANDed cut."""
    out = []
    for key, value in entry.items():
        if not _is_cut_key(key):
            continue
        field = f"{where}.{key}"
        if not jagged:
            out.append(_expression(field, value))
            continue
        pair = isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)
        mode = value[1].strip().lower() if pair else None
        if mode not in ("any", "all"):
            raise SpecError(field, f'expected ["<expression>", "any" or "all"], got {value!r}')
        out.append(f"{mode}({_expression(field, value[0])})")
    return out


def _preproc(path: Path) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """``preproc.json`` as (new branches, cuts, names to exclude)."""
    if path.suffix == ".py":
        raise SpecError(
            str(path),
            "a Python preprocessing function (MLaaS4HEP's JSON/CSV readers) "
            "is not supported; write new_branches and cuts instead",
        )
    data = _read_json(path, "preprocessing file")
    _check_keys("preproc", data, ("flat_cut", "jagged_cut", "new_branch"), cuts=False)
    new: list[tuple[str, str]] = []
    cuts: list[str] = []
    remove: list[str] = []
    for name, entry in as_mapping("preproc.new_branch", data.get("new_branch", {})).items():
        where = f"preproc.new_branch.{name}"
        entry = as_mapping(where, entry)
        _check_keys(where, entry, ("def", "keys_to_remove", "remove", "type"), cuts=True)
        if "def" not in entry:
            raise SpecError(f"{where}.def", "missing: the expression that defines the branch")
        kind = entry.get("type")
        if kind not in ("flat", "jagged"):
            raise SpecError(f"{where}.type", f"got {kind!r}; allowed values are flat, jagged")
        new.append((str(name), _expression(f"{where}.def", entry["def"])))
        cuts += _cuts(where, entry, jagged=kind == "jagged")
        if _flag(f"{where}.remove", entry.get("remove", "False")):
            remove.append(str(name))
        remove += _names(f"{where}.keys_to_remove", entry.get("keys_to_remove") or [], path.parent)
    for section in ("flat_cut", "jagged_cut"):
        for name, entry in as_mapping(f"preproc.{section}", data.get(section, {})).items():
            where = f"preproc.{section}.{name}"
            entry = as_mapping(where, entry)
            _check_keys(where, entry, ("remove",), cuts=True)
            cuts += _cuts(where, entry, jagged=section == "jagged_cut")
            if _flag(f"{where}.remove", entry.get("remove", "False")):
                remove.append(str(name))
    return new, cuts, remove


def _locate(entry: str, redirector: str, base: Path) -> str:
    """MLaaS4HEP's ``xfile``: a file that is not local gets ``redirector + "/" + name``."""
    if "://" in entry or (redirector and entry.startswith(redirector)):
        return entry
    for candidate in (base / entry, Path(entry)):
        if candidate.exists():
            return str(candidate.resolve())
    return f"{redirector}/{entry}" if redirector else str(base / entry)


def _classes(
    files: Path, labels: Path, redirector: str, notes: list[str]
) -> tuple[ClassGroup, ...]:
    names = _lines(files, "files list")
    if not names:
        raise SpecError(str(files), "lists no files")
    values = []
    for lineno, text in _lines(labels, "labels list"):
        try:
            values.append(int(text))
        except ValueError:
            raise SpecError(
                f"{labels}:{lineno}",
                f"label {text!r} is not an integer; write one integer label (0, 1, ...) per line",
            ) from None
    if len(values) != len(names):
        raise SpecError(
            str(labels),
            f"has {len(values)} labels but {files} lists {len(names)} "
            "files; give one label per file, in the same order",
        )
    by_label: dict[int, list[str]] = {}
    seen: dict[str, int] = {}
    for (_, name), label in zip(names, values, strict=True):
        path = _locate(name, redirector, files.parent)
        if path in seen:
            if seen[path] != label:
                message = f"{name} is listed twice, with labels {seen[path]} and {label}"
                raise SpecError(str(labels), message)
            notes.append(f"{name} is listed twice in {files}; its events are read once")
            continue
        seen[path] = label
        by_label.setdefault(label, []).append(path)
    ordered = sorted(by_label)
    if len(ordered) < 2:
        message = f"every file has label {ordered[0]}; a classifier needs two or more labels"
        raise SpecError(str(labels), message)
    if ordered != list(range(len(ordered))):
        order = ", ".join(f"{v} -> {i}" for i, v in enumerate(ordered))
        notes.append(f"labels {ordered} are not 0..{len(ordered) - 1}; class indices are ({order})")
    return tuple(ClassGroup(f"label_{v}", tuple(by_label[v]), i) for i, v in enumerate(ordered))


def from_mlaas4hep(
    files: str | Path,
    labels: str | Path,
    model: str | Path,
    params: str | Path,
    preproc: str | Path | None = None,
) -> tuple[TrainSpec, list[str]]:
    """Translate MLaaS4HEP workflow inputs into a :class:`TrainSpec`.

    Parameters
    ----------
    files
        ``files.txt``: one file per line (``#`` lines skipped). A name that is not a
        local file becomes ``redirector + "/" + name``, as MLaaS4HEP did.
    labels
        ``labels.txt``: one integer label per line, one per file, in the same order.
        Files are grouped into classes ``label_<value>`` in increasing label order.
    model
        A Python file defining ``model(idim)``; kept as a user model file.
    params
        ``params.json`` (MLaaS4HEP's keys only).
    preproc
        Optional ``preproc.json`` (``new_branch``, ``flat_cut``, ``jagged_cut``).

    Returns
    -------
    tuple[TrainSpec, list[str]]
        The spec and the warnings (also issued as :class:`UserWarning`).

    Raises
    ------
    SpecError
        A file is missing or malformed, a key is unknown, or a value is invalid.
    """
    notes: list[str] = []
    params_path = Path(params)
    raw = _read_json(params_path, "parameters file")
    _check_keys("params", raw, (*_MAPPED, *_IGNORED), cuts=False)
    for key, reason in _IGNORED.items():
        if key in raw:
            notes.append(f"params.json key '{key}' {reason}")
    redirector = raw.get("redirector", DEFAULT_REDIRECTOR)
    if not isinstance(redirector, str):
        raise SpecError("params.redirector", f"expected a string, got {redirector!r}")
    classes = _classes(Path(files), Path(labels), redirector.strip(), notes)
    base = params_path.parent
    selected = _names("params.selected_branches", raw.get("selected_branches"), base)
    excluded = _names("params.exclude_branches", raw.get("exclude_branches"), base)
    if selected and excluded:
        notes.append(
            "params.json key 'exclude_branches' is ignored because selected_branches is "
            "set (MLaaS4HEP ignored it too)"
        )
        excluded = []
    identifier = _names("params.identifier", raw.get("identifier"), base)
    identifier = identifier or list(DEFAULT_IDENTIFIER)
    new, cuts, removed = _preproc(Path(preproc)) if preproc is not None else ([], [], [])
    exclude = list(dict.fromkeys(identifier + excluded + removed))
    branches: tuple[str, ...] = ("*",)
    if selected:
        kept = dict.fromkeys(selected + [name for name, _ in new if name not in removed])
        branches = tuple(_pattern(name) for name in kept)
    tree = raw.get("branch", "Events")
    if not isinstance(tree, str) or not tree.strip():
        raise SpecError("params.branch", f"expected the tree name, got {tree!r}")
    nevts = _int("params.nevts", raw.get("nevts", -1), allow_all=True)
    if nevts != -1:
        notes.append(
            f"params.json key 'nevts' ({nevts}) is not supported: MLaaS4HEP read at most "
            f"{nevts} events in total, shared among the files in proportion to their "
            "entries; here every event that passes the cuts is used"
        )
    chunk = _int("params.chunk_size", raw.get("chunk_size", 1000), allow_all=True)
    step: str | int = DatasetSpec.step_size
    if chunk == -1:
        notes.append(
            "params.json key 'chunk_size' (-1, whole files at once) has no effect; "
            f"files are read in steps of {step}"
        )
    else:
        step = chunk
    shuffle = raw.get("shuffle", True)
    if not isinstance(shuffle, bool | int):
        raise SpecError("params.shuffle", f"expected true or false, got {shuffle!r}")
    if not shuffle:
        notes.append(
            "params.json key 'shuffle' (false) is not supported: training events are "
            "always shuffled (within shuffle_buffer)"
        )
    model_path = Path(model)
    if not model_path.is_file():
        raise SpecError(str(model_path), "cannot read the MLaaS4HEP model file (not found)")
    dataset = DatasetSpec(
        classes=classes,
        tree=tree.strip(),
        branches=branches,
        exclude=tuple(_pattern(name) for name in exclude),
        new_branches=tuple(new),
        cuts=tuple(cuts),
        jagged=(("*", JaggedSpec(length="max", pad_value=0.0, mask=False)),),
        normalisation="minmax",
        split=MLAAS4HEP_SPLIT,
        step_size=step,
    )
    training = TrainConfig(
        epochs=_int("params.epochs", raw.get("epochs", 10)),
        batch_size=_int("params.batch_size", raw.get("batch_size", 50)),
        early_stopping=None,
    )
    spec = TrainSpec(dataset, ModelSpec(name=None, file=str(model_path.resolve())), training)
    for message in notes:
        warnings.warn(message, UserWarning, stacklevel=2)
    return spec, notes
