"""The model registry: versions, the bounded cache, and uploads that try to escape."""

from __future__ import annotations

import io
import json
import shutil
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlaas_jupyter.errors import MlaasError
from mlaas_jupyter.inference import load_bundle
from mlaas_jupyter.inference.archive import ArchiveLimits
from mlaas_jupyter.inference.registry import ModelNotFound, ModelRegistry

Entry = tuple[str, bytes]


def bundle_files(folder: Path, prefix: str = "") -> list[Entry]:
    return [(prefix + p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


def tar_bytes(
    entries: list[Entry], gz: bool = False, extra: tuple[tarfile.TarInfo, ...] = ()
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as archive:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info)
    return buffer.getvalue()


def zip_bytes(entries: list[Entry], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models", max_cached=2)


def leftovers(registry: ModelRegistry) -> list[str]:
    return sorted(p.name for p in registry.directory.iterdir())


def test_register_list_get_delete(registry: ModelRegistry, toy_bundles: dict[str, Path]) -> None:
    first = registry.register(toy_bundles["flat"])
    assert (first.name, first.version, first.task, first.engine) == (
        "toy-flat",
        1,
        "binary",
        "onnxruntime",
    )
    assert first.classes == ["background", "signal"]
    assert first.inputs == {f"f{i}": "flat" for i in range(28)}
    assert first.metrics == {"test": {"auc": 0.75}}
    assert first.created == "2026-01-01T00:00:00Z"
    assert first.registered.endswith("Z")
    assert first.size > 0
    assert registry.register(toy_bundles["flat"]).version == 2
    other = registry.register(toy_bundles["multiclass"] / "manifest.json", name="other.v2")
    assert (other.name, other.version, other.task) == ("other.v2", 1, "multiclass")
    assert [(i.name, i.version) for i in registry.list()] == [
        ("other.v2", 1),
        ("toy-flat", 1),
        ("toy-flat", 2),
    ]
    assert registry.names() == ["other.v2", "toy-flat"]
    assert registry.versions("toy-flat") == [1, 2]
    assert registry.get("toy-flat").path.name == "2"
    assert registry.get("toy-flat", 1).path.name == "1"
    assert registry.get("toy-flat") is registry.get("toy-flat", 2)  # cached
    x = np.random.default_rng(0).normal(size=(5, 28)).astype(np.float32)
    np.testing.assert_allclose(
        registry.get("toy-flat").predict_matrix(x),
        load_bundle(toy_bundles["flat"]).predict_matrix(x),
        atol=1e-7,
    )
    assert registry.delete("toy-flat", 1) == [1]
    assert registry.versions("toy-flat") == [2]
    with pytest.raises(ModelNotFound, match="has no version 1"):
        registry.get("toy-flat", 1)
    assert registry.delete("toy-flat") == [2]
    assert registry.names() == ["other.v2"]
    for call in (lambda: registry.get("toy-flat"), lambda: registry.delete("nope")):
        with pytest.raises(ModelNotFound, match="no model named"):
            call()
    with pytest.raises(ModelNotFound):
        registry.info("../models")
    assert leftovers(registry) == ["other.v2"]
    assert ModelNotFound.status == 404


def test_bad_names_and_sources(registry: ModelRegistry, toy_bundles: dict[str, Path]) -> None:
    for name in ("../x", "a/b", ".hidden", "", "x" * 101, "sp ace"):
        with pytest.raises(MlaasError, match="model name"):
            registry.register(toy_bundles["flat"], name=name)
    with pytest.raises(MlaasError, match="no such bundle"):
        registry.register(registry.directory / "missing")
    assert leftovers(registry) == []


def test_cache_is_bounded_and_fresh(
    registry: ModelRegistry, toy_bundles: dict[str, Path], tmp_path: Path
) -> None:
    for key in ("flat", "multiclass", "regression"):
        registry.register(toy_bundles[key], name=key)
    a, _ = registry.get("flat"), registry.get("multiclass")
    registry.get("flat")  # most recently used
    registry.get("regression")
    assert registry.cached() == [("flat", 1), ("regression", 1)]  # multiclass dropped
    assert registry.get("flat") is a
    # a version deleted and registered again (same number) is not served from the cache
    registry.delete("flat")
    registry.register(toy_bundles["regression"], name="flat")
    assert registry.get("flat").task == "regression"
    small = ModelRegistry(registry.directory, max_cached=10, max_cached_bytes=1)
    small.get("multiclass")
    small.get("regression")
    assert small.cached() == [("regression", 1)]  # byte bound: only the latest kept


def test_concurrent_gets_share_one_bundle(
    registry: ModelRegistry, toy_bundles: dict[str, Path]
) -> None:
    registry.register(toy_bundles["flat"])
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(registry.get("toy-flat"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8
    assert all(bundle is registry.get("toy-flat") for bundle in got)


def test_good_archives(registry: ModelRegistry, toy_bundles: dict[str, Path]) -> None:
    files = bundle_files(toy_bundles["flat"])
    flat = registry.register_archive(zip_bytes(files), "flat.zip")
    assert (flat.name, flat.version) == ("toy-flat", 1)
    nested = tar_bytes(bundle_files(toy_bundles["jagged"], "run/bundle/"), gz=True)
    jagged = registry.register_archive(nested, "jagged.tar.gz", name="jets")
    assert (jagged.name, jagged.version, jagged.inputs["Jet_pt"]) == ("jets", 1, "jagged")
    plain = registry.register_archive(tar_bytes(files), "flat.tar")
    assert plain.version == 2
    macos = zip_bytes([*files, ("__MACOSX/._model.onnx", b"junk")])
    assert registry.register_archive(macos, "mac.zip").version == 3
    assert sorted(p.name for p in (registry.directory / "jets" / "1").iterdir()) == [
        "manifest.json",
        "model.onnx",
        "registered.json",
    ]
    assert leftovers(registry) == ["jets", "toy-flat"]


def _hostile(files: list[Entry], manifest: bytes) -> dict[str, tuple[bytes, str]]:
    """name -> (archive, expected message)."""
    other = [(f"b/{n}", d) for n, d in files]
    return {
        "absolute tar": (tar_bytes([*files, ("/etc/cron.d/x", b"x")]), "absolute path"),
        "absolute zip": (zip_bytes([("/abs/manifest.json", manifest)]), "absolute path"),
        "dotdot tar": (tar_bytes([*files, ("../x", b"x")]), r"member '\.\./x' escapes"),
        "dotdot zip": (zip_bytes([*files, ("a/../../x", b"x")]), "escapes the archive"),
        "symlink tar": (
            tar_bytes(files, extra=(special("link", tarfile.SYMTYPE, "/etc/passwd"),)),
            "member 'link' is a symlink",
        ),
        "symlink zip": (zip_bytes(files, symlink="link"), "member 'link' is a symlink"),
        "hardlink": (
            tar_bytes(files, extra=(special("hard", tarfile.LNKTYPE, "manifest.json"),)),
            "member 'hard' is a hardlink",
        ),
        "device": (
            tar_bytes(files, extra=(special("dev", tarfile.CHRTYPE),)),
            "device, FIFO or special file",
        ),
        "backslash": (zip_bytes([*files, ("..\\x", b"x")]), "backslash"),
        "duplicate": (zip_bytes([*files, ("manifest.json", manifest)]), "appears twice"),
        "file and folder": (
            tar_bytes([*files, ("model.onnx/x", b"x")]),
            "model.onnx",
        ),
        "no manifest": (zip_bytes([("model.onnx", b"x")]), "no manifest.json"),
        "two bundles": (zip_bytes([*files, *other]), "2 bundles in it"),
        "outside": (
            zip_bytes([(f"b/{n}", d) for n, d in files] + [("README", b"x")]),
            "member 'README' is outside the bundle folder 'b'",
        ),
        "corrupted manifest": (
            zip_bytes([(n, d if n != "manifest.json" else b"{not json") for n, d in files]),
            "manifest.json: corrupted manifest",
        ),
        "broken model": (
            zip_bytes([(n, d if n != "model.onnx" else b"garbage") for n, d in files]),
            "does not load or run",
        ),
        "not an archive": (b"\x00" * 100 + b"hello", "not a zip, tar or tar.gz"),
        "truncated zip": (zip_bytes(files)[:200], "not a readable zip"),
    }


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_hostile_archives_are_refused(
    registry: ModelRegistry, toy_bundles: dict[str, Path]
) -> None:
    files = bundle_files(toy_bundles["flat"])
    manifest = (toy_bundles["flat"] / "manifest.json").read_bytes()
    for case, (data, message) in _hostile(files, manifest).items():
        with pytest.raises(MlaasError, match=message):
            registry.register_archive(data, f"{case}.bin")
        assert leftovers(registry) == [], case  # nothing visible, no staging left behind
    assert registry.list() == []


def test_archive_limits(tmp_path: Path, toy_bundles: dict[str, Path]) -> None:
    files = bundle_files(toy_bundles["flat"])
    registry = ModelRegistry(
        tmp_path / "m", limits=ArchiveLimits(max_bytes=200_000, max_members=5, max_unpacked=100_000)
    )
    cases = {
        "too many members": (
            zip_bytes([*files, *[(f"x{i}", b"") for i in range(5)]]),
            "more than 5 members",
        ),
        "too many tar members": (
            tar_bytes([*files, *[(f"x{i}", b"") for i in range(5)]]),
            "more than 5",
        ),
        "too large": (zip_bytes([*files, ("big", bytes(150_000))]), "more than 100000 bytes once"),
        "archive too large": (bytes(200_001), "larger than 200000 bytes"),
        "gzip bomb": (tar_bytes([("big", bytes(5_000_000))], gz=True), "more than .* bytes once"),
    }
    for case, (data, message) in cases.items():
        with pytest.raises(MlaasError, match=message):
            registry.register_archive(data, case)
        assert leftovers(registry) == [], case
    assert registry.register_archive(zip_bytes(files), "ok.zip").version == 1


def test_manifest_name_must_be_valid(
    registry: ModelRegistry, toy_bundles: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(toy_bundles["flat"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "name": "../../etc"}))
    with pytest.raises(MlaasError, match="model name"):
        registry.register(copy)
    assert registry.register(copy, name="fine").name == "fine"
