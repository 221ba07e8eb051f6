"""On-disk cache of statistics passes, keyed by a hash of their inputs."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .sources import is_remote

__all__ = ["StatsCache", "default_cache_dir", "file_identity"]


def default_cache_dir() -> Path:
    """``$MLAAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlaas-jupyter``, else ``~/.cache/...``."""
    if env := os.environ.get("MLAAS_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlaas-jupyter"


def file_identity(path: str) -> list[Any]:
    """What says a file is unchanged: its path, size and modification time.

    Remote files are identified by URL only (a stat would cost a round trip);
    use a new URL or clear the cache when remote data change.
    """
    if is_remote(path):
        return [path]
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


class StatsCache:
    """A folder of JSON files, one per statistics key."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir() / "stats"

    @classmethod
    def resolve(cls, cache: StatsCache | str | Path | bool | None) -> StatsCache | None:
        if cache is None or cache is False:
            return None
        if cache is True:
            return cls()
        if isinstance(cache, StatsCache):
            return cache
        return cls(cache)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None  # a missing or damaged entry is recomputed
        return data if isinstance(data, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Write atomically, so a reader never sees half an entry. A folder that cannot
        be written (a remote kernel without a writable home) costs the cache, not the
        statistics: a warning says where, and the pass runs again next time."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        except OSError as err:
            warnings.warn(
                f"statistics not cached: cannot write to {self.directory} ({err.strerror}); "
                "set MLAAS_CACHE_DIR to a writable folder",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(value, handle)
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> int:
        removed = 0
        for path in self.directory.glob("*.json"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed
