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


class PartialExportError(ValidationError):
    """Some artifacts were refused; the validated ones were published.

    Raised by ``export_model`` (unless ``strict=True``) *after* the export directory
    was published with every artifact that passed, so that a caller cannot take a
    partial export for a complete one. The command line turns it into exit status
    ``utils.cli.PARTIAL_EXIT``.

    Attributes:
        manifest: the published manifest; ``manifest["refused"]`` lists each refused
            artifact (path, format, quantization, figure, reason, fix).
        refused: the same list.
        failures: the validation failures of the refused artifacts (as
            :class:`ValidationError`'s).
    """

    def __init__(self, manifest: dict, directory):
        self.manifest = manifest
        self.refused = list(manifest["refused"])
        self.directory = str(directory)
        super().__init__([f for r in self.refused for f in r["failures"]])
        names = ", ".join(r["path"] for r in self.refused)
        reasons = "; ".join(r["reason"] for r in self.refused)
        self.args = (f"Published {len(manifest['artifacts'])} validated artifact(s) to "
                     f"{self.directory!r}; refused {len(self.refused)} ({names}): {reasons}. "
                     "The manifest lists each with its fix; strict=True (--strict) refuses "
                     "the whole export instead.",)
