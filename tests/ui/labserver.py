"""What the browser tests share: the running lab, the Chromium to launch, screenshots."""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("MLAAS_CHROMIUM", "/usr/bin/chromium")
#: screenshots (kept by CI as test artefacts; gitignored)
ARTEFACTS = Path(os.environ.get("MLAAS_UI_ARTEFACTS") or Path(__file__).parent / "artefacts")
TOKEN = "ui-test-token"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@dataclass(frozen=True)
class Lab:
    url: str
    root: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")


def screenshot(page: Any, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
