"""The IPython shell that the magic tests drive, with the mlaas extension loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from mlaas_jupyter.notebook import magics


@pytest.fixture
def shell(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """IPython's own shell in the test's folder, with a fresh client for the magics."""
    monkeypatch.chdir(isolated)
    monkeypatch.setattr(magics, "_client", None)
    ipython = InteractiveShell.instance()
    ipython.run_line_magic("load_ext", "mlaas_jupyter")
    yield ipython
    if magics._client is not None:
        magics._client.close()
