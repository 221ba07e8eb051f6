"""MLaaS4HEP's ``preproc.json``: new branches, flat and jagged cuts, branches to remove.

Upstream (uproot) expressions are rewritten into this package's syntax: names stay as
they are and chained comparisons are split so that they work element-wise on arrays;
jagged cuts become ``any(...)`` / ``all(...)``. :mod:`.compat` puts the result into
the dataset spec.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ._mlaas4hep_files import _check_keys, _flag, _is_cut_key, _mapping, _names, _read_json


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
    for name, entry in _mapping("preproc.new_branch", data.get("new_branch", {})).items():
        where = f"preproc.new_branch.{name}"
        entry = _mapping(where, entry)
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
        for name, entry in _mapping(f"preproc.{section}", data.get(section, {})).items():
            where = f"preproc.{section}.{name}"
            entry = _mapping(where, entry)
            _check_keys(where, entry, ("remove",), cuts=True)
            cuts += _cuts(where, entry, jagged=section == "jagged_cut")
            if _flag(f"{where}.remove", entry.get("remove", "False")):
                remove.append(str(name))
    return new, cuts, remove
