"""Reading MLaaS4HEP's input files and checking the values they hold.

Text files (``files.txt``, ``labels.txt``, branch lists) are read as MLaaS4HEP read
them, skipping ``#`` comments; JSON files (``params.json``, ``preproc.json``) must hold
an object whose keys MLaaS4HEP knew. Files and labels become the spec's
:class:`ClassGroup` objects, a name that is not local getting the XRootD redirector.
Every problem is a :class:`SpecError` naming the file or field; :mod:`.compat` does the
translation into a :class:`TrainSpec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..specs import nearest
from ..specs.dataset import ClassGroup


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


def _mapping(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(field, f"expected a mapping, got {type(value).__name__} {value!r}")
    return value


def _check_keys(where: str, data: Mapping[str, Any], allowed: tuple[str, ...], cuts: bool) -> None:
    for key in data:
        if not (key in allowed or (cuts and _is_cut_key(key))):
            known = sorted(allowed) + (["cut", "cut_<i>"] if cuts else [])
            guess = nearest(key, known)
            hint = f"did you mean {guess}? " if guess is not None else ""
            raise SpecError(
                f"{where}.{key}",
                f"not an MLaaS4HEP field; {hint}known fields are {', '.join(known)}",
            )


def _is_cut_key(key: str) -> bool:
    return key == "cut" or key.startswith("cut_")  # cut, cut_1, cut_2, ...: all ANDed


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
    return tuple(
        ClassGroup(name=f"label_{v}", files=tuple(by_label[v]), label=i)
        for i, v in enumerate(ordered)
    )
