"""Typed export errors.

All are ``utils.errors.ZooError`` (so ``ValueError``) subclasses so the command line reports them as one
line and exit status 2; callers that want a policy (fail vs. warn) catch the
specific class, as with optimum's ``ShapeError`` / ``AtolError``.
"""
from __future__ import annotations

from utils.errors import ModelLoadError, ZooError  # noqa: F401  (one class, shared)


class ExportError(ZooError):
    """An export request that cannot be carried out (bad argument, bad model)."""


class UnsupportedOpsError(ExportError):
    """The converted artifact needs ops the target runtime does not provide.

    Attributes:
        ops: sorted names of the offending ops (Flex/custom TFLite ops, or
            ONNX node types the runtime rejects).
    """

    def __init__(self, message: str, ops=()):
        super().__init__(message)
        self.ops = sorted(ops)


class ValidationError(ExportError):
    """One or more artifacts disagree with the Keras model.

    The message lists every failure (collected, then raised once).

    Attributes:
        failures: list of dicts ``{"artifact", "output", "check", "message",
            "max_abs_diff", "tolerance"}`` (numbers ``None`` where not
            applicable, e.g. a shape mismatch).
    """

    def __init__(self, failures: list[dict]):
        self.failures = list(failures)
        lines = [f["message"] for f in self.failures]
        head = (f"Validation failed for {len(lines)} check(s): "
                + "; ".join(lines))
        super().__init__(head)
