"""The client: one interface to the mlaas core, in this process or over HTTP."""

from __future__ import annotations

from ._client import Client
from ._compare import Comparison
from ._job import Job
from ._report import Report

__all__ = ["Client", "Comparison", "Job", "Report"]
