"""Safe extraction of an uploaded bundle archive (zip, tar, tar.gz).

Nothing in an upload is trusted. A member is refused, and the whole archive with it,
when its name is absolute, holds a ``..`` component, a backslash or a NUL byte, or
appears twice; when it is a symlink, a hardlink, a device or a FIFO; or when the
archive has too many members, or more bytes than the limits once decompressed. Files
are written by this module (``O_EXCL | O_NOFOLLOW``, mode 0644), never by
``extractall``, so an archive cannot set permissions, owners or times either.
"""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import MlaasError

__all__ = ["ArchiveLimits", "bundle_prefix", "extract_archive"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    """Upper bounds on an upload: ``max_bytes`` of archive, ``max_members`` entries and
    ``max_unpacked`` bytes of files once extracted."""

    max_bytes: int = 512 << 20
    max_members: int = 1000
    max_unpacked: int = 2 << 30


@dataclass(frozen=True)
class _Member:
    name: str
    is_dir: bool
    size: int
    key: object  # the ZipInfo or TarInfo


def _refuse(filename: str, message: str) -> MlaasError:
    return MlaasError(f"bad bundle archive {filename!r}: {message}")


def _clean_name(filename: str, raw: str) -> str:
    """The relative POSIX path of a member; refused when it could escape the target."""
    shown = raw[:200]
    if not raw or "\x00" in raw:
        raise _refuse(filename, f"member {shown!r} has an empty name or a NUL byte")
    if "\\" in raw:
        raise _refuse(filename, f"member {shown!r} has a backslash in its name")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise _refuse(filename, f"member {shown!r} has an absolute path")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if ".." in parts:
        raise _refuse(filename, f"member {shown!r} escapes the archive ('..' in its path)")
    if not parts:
        raise _refuse(filename, f"member {shown!r} has an empty name")
    return "/".join(parts)


def _zip_members(filename: str, data: bytes, limits: ArchiveLimits) -> tuple[object, list[_Member]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise _refuse(filename, f"not a readable zip file ({err})") from None
    if len(infos) > limits.max_members:
        raise _refuse(filename, f"more than {limits.max_members} members")
    members = []
    for info in infos:
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise _refuse(filename, f"member {info.filename!r} is a symlink")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise _refuse(filename, f"member {info.filename!r} is not a regular file")
        if info.flag_bits & 0x1:
            raise _refuse(filename, f"member {info.filename!r} is encrypted")
        members.append(_Member(info.filename, info.is_dir(), info.file_size, info))
    return archive, members


def _gunzip(filename: str, data: bytes, limit: int) -> bytes:
    """Decompress gzip ``data``, refusing more than ``limit`` bytes (gzip bombs)."""
    inflate = zlib.decompressobj(wbits=31)
    try:
        out = inflate.decompress(data, limit + 1)
    except zlib.error as err:
        raise _refuse(filename, f"corrupted gzip data ({err})") from None
    if len(out) > limit or inflate.unconsumed_tail:
        raise _refuse(filename, f"more than {limit} bytes once decompressed")
    return out


def _tar_members(filename: str, data: bytes, limits: ArchiveLimits) -> tuple[object, list[_Member]]:
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(filename, data, limits.max_unpacked + 1024 * (limits.max_members + 20))
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115
    except (tarfile.TarError, OSError, ValueError, EOFError) as err:
        raise _refuse(filename, f"not a zip, tar or tar.gz file ({err})") from None
    members: list[_Member] = []
    try:
        for info in archive:
            if len(members) >= limits.max_members:
                raise _refuse(filename, f"more than {limits.max_members} members")
            if info.issym():
                raise _refuse(filename, f"member {info.name!r} is a symlink")
            if info.islnk():
                raise _refuse(filename, f"member {info.name!r} is a hardlink")
            if not (info.isfile() or info.isdir()):
                raise _refuse(filename, f"member {info.name!r} is a device, FIFO or special file")
            members.append(_Member(info.name, info.isdir(), info.size, info))
    except (tarfile.TarError, OSError, ValueError, EOFError) as err:
        raise _refuse(filename, f"corrupted tar data ({err})") from None
    return archive, members


def _open_member(archive: object, member: _Member) -> IO[bytes]:
    if isinstance(archive, zipfile.ZipFile):
        return archive.open(member.key)  # type: ignore[arg-type]
    assert isinstance(archive, tarfile.TarFile)
    stream = archive.extractfile(member.key)  # type: ignore[arg-type]
    assert stream is not None
    return stream


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def extract_archive(
    data: bytes, filename: str, target: Path, limits: ArchiveLimits | None = None
) -> list[str]:
    """Extract the zip or tar(.gz) archive ``data`` into the empty folder ``target``.

    Parameters
    ----------
    data
        The archive's bytes; its format is told by its first bytes, not its name.
    filename
        The upload's name, for messages.
    target
        An existing, empty folder; on error it may hold part of the files (the
        caller removes it).
    limits
        Size and member-count bounds (default :class:`ArchiveLimits`).

    Returns
    -------
    list of str
        The relative paths of the files written.

    Raises
    ------
    MlaasError
        Naming the archive and what is wrong with it.
    """
    limits = limits or ArchiveLimits()
    if len(data) > limits.max_bytes:
        raise _refuse(filename, f"larger than {limits.max_bytes} bytes")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        archive, members = _zip_members(filename, data, limits)
    else:
        archive, members = _tar_members(filename, data, limits)
    seen: set[str] = set()
    files: list[tuple[str, _Member]] = []
    total = 0
    for member in members:
        name = _clean_name(filename, member.name)
        if name.split("/")[0] == "__MACOSX":
            continue
        if name in seen and not member.is_dir:
            raise _refuse(filename, f"member {name!r} appears twice")
        seen.add(name)
        if not member.is_dir:
            total += max(0, member.size)
            if total > limits.max_unpacked:
                raise _refuse(filename, f"more than {limits.max_unpacked} bytes once extracted")
            files.append((name, member))
    written = 0
    root = target.resolve()
    try:
        for name, member in files:
            path = root.joinpath(*name.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.parent.resolve().is_relative_to(root):  # a file named like a folder
                raise _refuse(filename, f"member {name!r} escapes the archive")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(path, flags, 0o644)
            except (FileExistsError, IsADirectoryError, NotADirectoryError):
                raise _refuse(filename, f"member {name!r} clashes with another member") from None
            with os.fdopen(fd, "wb") as out, _open_member(archive, member) as stream:
                for chunk in _chunks(stream):
                    written += len(chunk)
                    if written > limits.max_unpacked:
                        raise _refuse(
                            filename, f"more than {limits.max_unpacked} bytes once extracted"
                        )
                    out.write(chunk)
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError) as err:
        raise _refuse(filename, f"corrupted data ({type(err).__name__}: {err})") from None
    except (NotADirectoryError, FileExistsError) as err:
        where = Path(str(err.filename)).name
        raise _refuse(filename, f"member {where!r} is both a file and a folder") from None
    finally:
        close = getattr(archive, "close", None)
        if close is not None:
            close()
    return [name for name, _ in files]


def bundle_prefix(files: list[str], filename: str) -> str:
    """The folder (``""`` or ``"a/b/"``) of the one bundle among the extracted ``files``.

    Raises
    ------
    MlaasError
        When there is no ``manifest.json``, several, or files outside the bundle folder.
    """
    manifests = [f for f in files if f.rsplit("/", 1)[-1] == "manifest.json"]
    if not manifests:
        raise _refuse(filename, "no manifest.json in it")
    top = min(manifests, key=lambda f: f.count("/"))
    folds = re.compile(re.escape(top[: -len("manifest.json")]) + r"fold\d+/manifest\.json")
    if len(manifests) > 1 and all(f == top or folds.fullmatch(f) for f in manifests):
        manifests = [top]  # a k-fold bundle: its folds' bundles in fold{i}/
    if len(manifests) > 1:
        shown = ", ".join(manifests[:5])
        raise _refuse(filename, f"{len(manifests)} bundles in it ({shown}); upload one")
    prefix = manifests[0][: -len("manifest.json")]
    for file in files:
        if not file.startswith(prefix):
            folder = prefix.rstrip("/")
            raise _refuse(filename, f"member {file!r} is outside the bundle folder {folder!r}")
    return prefix
