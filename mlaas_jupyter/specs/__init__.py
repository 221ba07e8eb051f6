"""Specs: the one place where dataset, training, prediction and request specs are
parsed and validated (pydantic models; JSON Schema for the OpenAPI document)."""

from __future__ import annotations

from ._base import SpecModel, load_mapping, spec_error

__all__ = ["SpecModel", "load_mapping", "spec_error"]
