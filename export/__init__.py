"""Export toolkit: Keras model -> SavedModel / ONNX / TFLite, each validated
in the runtime that will run it. See docs/export.md.

    >>> import export
    >>> manifest = export.export_model("exam_mlp.keras", "exports/exam_mlp")

The names below are imported on first use (PEP 562), so a child process that
only runs an artifact (``export.micro_runtime``, ``export.bench``) imports
numpy and its runtime, not TensorFlow.
"""
from __future__ import annotations

import importlib

from export.errors import (ExportError, ModelLoadError, PartialExportError,
                           UnsupportedOpsError, ValidationError)

_LAZY = {"export_model": "export.exporter", "FORMATS": "export.exporter",
         "DEFAULT_FORMATS": "export.exporter", "QUANTIZATIONS": "export.exporter",
         "Runner": "export.runtime", "load_artifact": "export.runtime",
         "load_keras_model": "export.runtime"}

__all__ = ["export_model", "FORMATS", "DEFAULT_FORMATS", "QUANTIZATIONS", "ExportError", "ModelLoadError",
           "UnsupportedOpsError", "ValidationError", "PartialExportError", "Runner", "load_artifact",
           "load_keras_model"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'export' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
