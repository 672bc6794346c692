"""Export toolkit: Keras model -> SavedModel / ONNX / TFLite, each validated
in the runtime that will run it. See docs/export.md.

    >>> import export
    >>> manifest = export.export_model("exam_mlp.keras", "exports/exam_mlp")
"""
from export.errors import (ExportError, ModelLoadError, UnsupportedOpsError,
                           ValidationError)
from export.exporter import DEFAULT_FORMATS, FORMATS, QUANTIZATIONS, export_model
from export.runtime import Runner, load_artifact, load_keras_model

__all__ = ["export_model", "FORMATS", "DEFAULT_FORMATS", "QUANTIZATIONS", "ExportError", "ModelLoadError",
           "UnsupportedOpsError", "ValidationError", "Runner", "load_artifact",
           "load_keras_model"]
