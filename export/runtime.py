"""One small interface over every runtime an artifact runs in.

``load_artifact(path)`` returns a :class:`Runner` for a ``.keras`` file, a
SavedModel directory, an ``.onnx`` file or a ``.tflite`` file (the runners
live in ``runtime_tf``, ``runtime_onnx`` and ``runtime_tflite``; this module
holds the interface, the one artifact-kind detection and the dispatch). Every runner
takes float32 batches and returns float outputs, so validation, benchmarks
and evaluation call the very code that later runs the artifact.

Outputs are ordered by name with numbers compared as numbers
(``output_2`` before ``output_10``): ``tf.nest`` and the converters sort
signature keys as strings, which would silently permute ten or more outputs.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np

from export.errors import ExportError, ModelLoadError

KINDS = ("keras", "saved_model", "onnx", "tflite")
SUFFIX_KINDS = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SIGNATURE_KEY = "serving_default"
# Untimed runs before any timing of a runner (export bench, evaluation): graph
# tracing, tensor allocation, weight packing and cold caches are start-up costs.
WARMUP_RUNS = 3


def natural_key(name: str):
    """Sort key that compares the digit runs of ``name`` as integers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _spec(name, shape, dtype, quantization=None) -> dict:
    shape = [None if (d is None or int(d) < 0) else int(d) for d in shape]
    if shape:
        shape[0] = None  # every runner accepts any batch size
    spec = {"name": str(name), "shape": shape, "dtype": np.dtype(dtype).name}
    if quantization is not None:
        spec["quantization"] = quantization
    return spec


def _as_list(batch) -> list[np.ndarray]:
    if isinstance(batch, (list, tuple)):
        return [np.asarray(b, dtype=np.float32) for b in batch]
    return [np.asarray(batch, dtype=np.float32)]


class Runner:
    """Runs one artifact. Subclasses fill the attributes and ``_run``.

    Attributes:
        kind: "keras" | "saved_model" | "onnx" | "tflite".
        path: the artifact's path.
        input_spec: list of ``{"name", "shape", "dtype"}`` (batch dim None;
            int8 TFLite tensors add ``"quantization": {"scale", "zero_point"}``).
        output_spec: same for outputs, in output order.
    """

    kind = ""

    def __init__(self, path):
        self.path = Path(path)
        self.input_spec: list[dict] = []
        self.output_spec: list[dict] = []

    def run(self, batch) -> list[np.ndarray]:
        """Run a float32 batch ``[B, ...]`` (or a list, one per input).

        Returns:
            One float ``np.ndarray`` per output, ``[B, ...]``.

        Raises:
            ExportError: the number of inputs or their shapes do not match
                ``input_spec``.
        """
        arrays = _as_list(batch)
        if len(arrays) != len(self.input_spec):
            raise ExportError(
                f"{self.kind} artifact {self.path} takes {len(self.input_spec)} "
                f"input(s); received {len(arrays)}.")
        for a, spec in zip(arrays, self.input_spec):
            want = spec["shape"][1:]
            got = list(a.shape[1:])
            if a.ndim != len(spec["shape"]) or any(
                    w is not None and w != g for w, g in zip(want, got)):
                raise ExportError(
                    f"Input {spec['name']!r} of {self.path} expects shape "
                    f"{spec['shape']}; received {list(a.shape)}.")
        return [np.asarray(o) for o in self._run(arrays)]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.path}>"


def _load_error(runtime: str, path, exc: BaseException, doing: str = "load") -> ModelLoadError:
    """A runtime's own error about a file it cannot load (or run), as one typed line."""
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    return ModelLoadError(f"{runtime} cannot {doing} '{path}': {text}")


# ---------------------------------------------------------------- dispatch
def artifact_kind(path) -> str:
    """The runtime kind a path dispatches to (see :data:`KINDS`): the one detection.

    A directory holding ``saved_model.pb`` or ``saved_model.pbtxt`` (both are
    SavedModels to TensorFlow) is "saved_model"; a file is known by its suffix,
    in any case (``MODEL.TFLITE`` is a TFLite file: the runtimes read the
    bytes, not the name).

    Raises:
        ModelLoadError: the path does not exist or is none of the known kinds.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(
            f"Artifact not found: '{path}'. Pass a .keras, .onnx or .tflite file, a SavedModel "
            "directory or an export directory with manifest.json.")
    if path.is_dir():
        if any((path / name).is_file() for name in SAVED_MODEL_FILES):
            return "saved_model"
        raise ModelLoadError(
            f"Directory '{path}' is neither a SavedModel (no saved_model.pb) nor an export "
            "directory (no manifest.json).")
    kind = SUFFIX_KINDS.get(path.suffix.lower())
    if kind is None:
        raise ModelLoadError(
            f"Unsupported artifact '{path}' (suffix '{path.suffix}'). Supported: .keras, .onnx, "
            ".tflite files, SavedModel directories and export directories with manifest.json.")
    return kind


# Where each kind's runner lives: imported on first use, so that a light process
# (an isolated evaluation child running one ONNX file) never imports TensorFlow.
_RUNNERS = {"keras": ("export.runtime_tf", "KerasRunner"),
            "saved_model": ("export.runtime_tf", "SavedModelRunner"),
            "onnx": ("export.runtime_onnx", "OnnxRunner"),
            "tflite": ("export.runtime_tflite", "TFLiteRunner")}
_LAZY = {cls: module for module, cls in _RUNNERS.values()}
_LAZY["load_keras_model"] = "export.runtime_tf"


def __getattr__(name: str):
    # ``export.runtime.KerasRunner`` and friends, without importing every runtime.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_artifact(path, *, num_threads: int | None = None) -> Runner:
    """Load an artifact into the runtime that will run it in production.

    Args:
        path: a ``.keras`` file, a SavedModel directory, an ``.onnx`` or a
            ``.tflite`` file.
        num_threads: intra-op threads (None: the runtime's default, all
            cores). TensorFlow fixes its pools at first use, so for
            ``keras``/``saved_model`` this only works before TF ran anything.

    Returns:
        A :class:`Runner`.

    Raises:
        ModelLoadError: missing path, unknown artifact type, or a file its
            runtime cannot load.
    """
    path = Path(path)
    module, name = _RUNNERS[artifact_kind(path)]
    return getattr(importlib.import_module(module), name)(path, num_threads=num_threads)


__all__ = ["KINDS", "SUFFIX_KINDS", "SAVED_MODEL_FILES", "WARMUP_RUNS", "Runner", "artifact_kind",
           "load_artifact", "natural_key"]
