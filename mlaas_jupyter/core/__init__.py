"""The core service: one facade over jobs, models and data, with no Jupyter import."""

from __future__ import annotations
