"""Progress bars: ``tqdm.auto``, so a notebook gets a widget and a terminal a text bar.

Bars are a view for whoever watches; jobs and the REST API get events instead. The
default (``show=None``) draws a bar only where someone watches: a notebook, or a
terminal on stderr; piped output (CI logs, job subprocesses) stays clean.
"""

from __future__ import annotations

import importlib
import sys
from typing import IO, Any

__all__ = ["progress_bar"]


def progress_bar(
    *,
    total: float | None,
    desc: str,
    unit: str,
    show: bool | None = None,
    file: IO[str] | None = None,
    leave: bool = True,
    **options: Any,
) -> Any:
    """A ``tqdm.auto`` bar on ``file`` (stderr by default).

    Parameters
    ----------
    total
        Units of the whole task (None: unknown, the bar counts and shows the rate).
    desc, unit
        Label of the bar and name of what it counts (``"file"``, ``"batch"``).
    show
        True: always; False: never (the bar object still counts, drawing nothing);
        None: in a notebook, or when ``file`` is a terminal.
    file
        The stream of a text bar; looked up at call time so later redirections apply.
    leave
        Keep the finished bar on screen.
    options
        More ``tqdm`` arguments (``smoothing``, ``initial``, ...).
    """
    tqdm = importlib.import_module("tqdm.auto").tqdm  # untyped (no stubs installed)
    # disable=None: tqdm's own rule, a terminal only (a notebook widget always draws)
    disable = None if show is None else not show
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=file if file is not None else sys.stderr,
        disable=disable,
        leave=leave,
        dynamic_ncols=True,
        **options,
    )
