"""Export toolkit: Keras model -> SavedModel / ONNX / TFLite, each validated
in the runtime that will run it. See docs/export.md."""
from export.errors import (ExportError, ModelLoadError, UnsupportedOpsError,
                           ValidationError)
from export.runtime import Runner, load_artifact, load_keras_model

__all__ = ["ExportError", "ModelLoadError", "UnsupportedOpsError", "ValidationError",
           "Runner", "load_artifact", "load_keras_model"]
