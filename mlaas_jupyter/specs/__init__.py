"""Specs: the one place where dataset, training, prediction and request specs are
parsed and validated (pydantic models; JSON Schema for the OpenAPI document)."""

from __future__ import annotations

from ._base import SpecModel, field_error, load_mapping, nearest, spec_error, unknown_field
from .dataset import ClassFiles, ClassGroup, DatasetSpec, JaggedSpec, Split, Weights
from .histograms import HistogramRequest
from .prediction import PredictSpec, is_prediction
from .report import Report, ReportSettings
from .training import BUILTINS, ModelSpec, TrainConfig, TrainSpec

__all__ = [
    "BUILTINS",
    "ClassFiles",
    "ClassGroup",
    "DatasetSpec",
    "HistogramRequest",
    "JaggedSpec",
    "ModelSpec",
    "PredictSpec",
    "Report",
    "ReportSettings",
    "SpecModel",
    "Split",
    "TrainConfig",
    "TrainSpec",
    "Weights",
    "field_error",
    "is_prediction",
    "load_mapping",
    "nearest",
    "spec_error",
    "unknown_field",
]
