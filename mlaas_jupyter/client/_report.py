"""`Report`: a finished run's training report, from a job or from a run folder.

:func:`report` reads a run folder here (no server, no core) or asks for a job's
report through a transport's ``call`` (``GET jobs/{id}/report``, and the page of
``GET jobs/{id}/report.html`` with its plots when it is shown as HTML). A
:class:`Report` shows its tables as text in terminals and the whole page, plots
inlined, in notebooks; :meth:`Report.save` writes the page.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core._report import read_report
from ..errors import SourceError, SpecError
from ..specs.requests import JOB_ID
from ..train.report_html import report_html, report_text

__all__ = ["Report", "report"]

Call = Callable[..., Any]


def report(call: Call | None, job_or_run_dir: str | os.PathLike[str]) -> Report:
    """The report of a run folder (an existing folder or any path-like object, read
    here) or of a job id (asked through ``call``; None: only folders may be given)."""
    text = os.fspath(job_or_run_dir)
    if isinstance(job_or_run_dir, os.PathLike) or os.path.isdir(text):
        return Report(read_report(text), run_dir=Path(text))
    if not JOB_ID.fullmatch(text):
        raise SourceError(text, "no such run folder, nor a job id")
    if call is None:
        raise SpecError("job", f"{text!r} is no run folder here (job ids need a client)")
    data = call("job_report", {"job_id": text})

    def page() -> str:
        return bytes(call("job_report_html", {"job_id": text})).decode("utf-8")

    return Report(data, page=page, job_id=text)


class Report:
    """A training report (what ``Client.report`` and ``Job.report`` return).

    ``data`` is the ``report.json`` dict; ``text()`` the tables for a terminal,
    ``html()`` the self-contained page (plots inlined) and ``save(path)`` writes it.

    Parameters
    ----------
    data
        The report as ``report.json`` holds it.
    run_dir
        The run folder whose ``plots/report_*.png`` the page shows (a local run).
    page
        Fetches the page from a server (a job's report), when there is no run folder.
    job_id
        The job whose report this is, if any.
    """

    def __init__(
        self,
        data: dict[str, Any],
        *,
        run_dir: Path | None = None,
        page: Callable[[], str] | None = None,
        job_id: str | None = None,
    ) -> None:
        self._data = data
        self.run_dir = run_dir
        self.job_id = job_id
        self._page = page
        self._html: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The report as ``report.json`` holds it (a copy)."""
        return copy.deepcopy(self._data)

    @property
    def task(self) -> str:
        """``binary``, ``multiclass`` or ``regression``."""
        return str(self._data.get("task"))

    @property
    def flagged(self) -> list[str]:
        """The classes whose train and test scores differ (KS p-value under the threshold)."""
        return [str(name) for name in (self._data.get("overtraining") or {}).get("flagged") or []]

    def text(self) -> str:
        """The report's tables as aligned text (``mlaas report`` prints it)."""
        return report_text(self._data)

    def html(self) -> str:
        """The report as one self-contained HTML page, its plots inlined."""
        if self._html is None:
            if self._page is not None and self.run_dir is None:
                self._html = self._page()
            else:
                self._html = report_html(self._data, self.run_dir)
        return self._html

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the HTML page to ``path`` (``.html`` or ``.htm``); returns it."""
        target = Path(path)
        if target.suffix.lower() not in (".html", ".htm"):
            raise SpecError("path", f"{str(target)!r}: save the report as .html")
        target.write_text(self.html(), encoding="utf-8")
        return target

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_html_(self) -> str:
        if self.run_dir is not None or self._page is None:
            return report_html(self._data, self.run_dir, page=False)
        return self.html()
