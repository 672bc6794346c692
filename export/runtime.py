"""One small interface over every runtime an artifact runs in.

``load_artifact(path)`` returns a :class:`Runner` for a ``.keras`` file, a
SavedModel directory, an ``.onnx`` file or a ``.tflite`` file. Every runner
takes float32 batches and returns float outputs, so validation, benchmarks
and evaluation call the very code that later runs the artifact.

Outputs are ordered by name with numbers compared as numbers
(``output_2`` before ``output_10``): ``tf.nest`` and the converters sort
signature keys as strings, which would silently permute ten or more outputs.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from export.errors import ExportError, ModelLoadError
from utils.stderr import silenced_stderr_fd

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


# ---------------------------------------------------------------- Keras
def load_keras_model(path, *, safe_mode: bool = True):
    """Load a ``.keras`` file for inference with the project's one safe loader.

    This is ``models.loading.load_model(path, compile=False)``: archive checks,
    ``safe_mode=True``, Lambda layers refused, our layers registered.

    Raises:
        ModelLoadError: as for ``models.loading.load_model``.
    """
    from models.loading import load_model
    return load_model(path, compile=False, safe_mode=safe_mode)


class KerasRunner(Runner):
    """Runs a ``keras.Model`` (in memory or loaded from a ``.keras`` file)."""

    kind = "keras"

    def __init__(self, path_or_model, num_threads=None, *, safe_mode: bool = True):
        import keras
        if isinstance(path_or_model, keras.Model):
            self.model = path_or_model
            super().__init__(getattr(path_or_model, "name", "<in-memory>"))
        else:
            super().__init__(path_or_model)
            self.model = load_keras_model(path_or_model, safe_mode=safe_mode)
        _set_tf_threads(num_threads)
        self.input_spec = [_spec(t.name, t.shape, t.dtype) for t in self.model.inputs]
        self.output_spec = [_spec(f"output_{i}", t.shape, t.dtype)
                            for i, t in enumerate(self.model.outputs)]
        self._fn = None

    def _run(self, arrays):
        import tensorflow as tf
        if self._fn is None:
            # A traced function is what a deployed Keras model runs; eager
            # __call__ would add per-layer Python overhead to every benchmark.
            model = self.model
            # One trace for every batch size (a signature with batch None).
            specs = [tf.TensorSpec([None] + list(t.shape[1:]), t.dtype)
                     for t in model.inputs]
            self._fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0],
                                                     training=False),
                                   input_signature=specs)
        import keras
        out = self._fn(*[tf.constant(a) for a in arrays])
        return [o.numpy() for o in keras.tree.flatten(out)]


def _set_tf_threads(num_threads):
    """Best effort: TF fixes its thread pools at first use, later calls fail."""
    if not num_threads:
        return
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(num_threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


# ---------------------------------------------------------------- SavedModel
class SavedModelRunner(Runner):
    """Runs the ``serving_default`` signature of a SavedModel with TensorFlow."""

    kind = "saved_model"

    def __init__(self, path, num_threads=None):
        super().__init__(path)
        import tensorflow as tf
        _set_tf_threads(num_threads)
        try:
            self._obj = tf.saved_model.load(str(path))
        except Exception as exc:  # noqa: BLE001 - TF raises DecodeError, OpError, ... on a bad file
            raise _load_error("TensorFlow", path, exc) from exc
        if SIGNATURE_KEY not in self._obj.signatures:
            raise ModelLoadError(
                f"SavedModel {str(path)!r} has no {SIGNATURE_KEY!r} signature "
                f"(has: {sorted(self._obj.signatures)}).")
        self._fn = self._obj.signatures[SIGNATURE_KEY]
        ins = self._fn.structured_input_signature[1]
        self._in_names = sorted(ins, key=natural_key)
        self.input_spec = [_spec(n, ins[n].shape, ins[n].dtype.as_numpy_dtype)
                           for n in self._in_names]
        outs = self._fn.structured_outputs
        self._out_names = sorted(outs, key=natural_key)
        self.output_spec = [_spec(n, outs[n].shape, outs[n].dtype.as_numpy_dtype)
                            for n in self._out_names]

    def _run(self, arrays):
        import tensorflow as tf
        try:
            result = self._fn(**{n: tf.constant(a) for n, a in zip(self._in_names, arrays)})
        except tf.errors.OpError as exc:  # corrupt variables surface when the graph runs
            raise _load_error("TensorFlow", self.path, exc, doing="run") from exc
        return [result[n].numpy() for n in self._out_names]


# ---------------------------------------------------------------- ONNX
class OnnxRunner(Runner):
    """Runs an ``.onnx`` file with onnxruntime's CPU provider."""

    kind = "onnx"

    def __init__(self, path, num_threads=None):
        super().__init__(path)
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(num_threads or 0)  # 0: all cores
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail, InvalidGraph, ...
            raise _load_error("onnxruntime", path, exc) from exc
        self._inputs = sorted(self.session.get_inputs(), key=lambda t: natural_key(t.name))
        self._outputs = sorted(self.session.get_outputs(), key=lambda t: natural_key(t.name))
        self.input_spec = [_spec(t.name, _ort_shape(t.shape), _ort_dtype(t.type))
                           for t in self._inputs]
        self.output_spec = [_spec(t.name, _ort_shape(t.shape), _ort_dtype(t.type))
                            for t in self._outputs]
        self._out_names = [t.name for t in self._outputs]

    def _run(self, arrays):
        feed = {t.name: a for t, a in zip(self._inputs, arrays)}
        try:
            return self.session.run(self._out_names, feed)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail/RuntimeException on a bad file
            raise _load_error("onnxruntime", self.path, exc, doing="run") from exc


def _ort_shape(shape):
    return [d if isinstance(d, int) else None for d in shape]


def _ort_dtype(type_str: str):
    # onnxruntime reports "tensor(float)", "tensor(int8)", ...
    inner = type_str[type_str.find("(") + 1:type_str.rfind(")")]
    return {"float": "float32", "double": "float64", "float16": "float16"}.get(inner, inner)


# ---------------------------------------------------------------- TFLite
class TFLiteRunner(Runner):
    """Runs a ``.tflite`` file with the LiteRT interpreter (``ai_edge_litert``).

    Models with Select-TF (Flex) ops need the Flex delegate: TensorFlow's own
    interpreter is tried for those (builds that link the delegate run them);
    where none does, ``unavailable`` says why and ``run`` raises. A model converted with
    a fixed batch size runs any batch in chunks of that size (the last one
    padded), so callers never see the difference. int8 inputs and outputs are
    quantized / dequantized here with each tensor's scale and zero point.
    """

    kind = "tflite"

    def __init__(self, path, num_threads=None, *, xnnpack=True):
        super().__init__(path)
        self.num_threads = num_threads
        self.xnnpack = xnnpack  # False: LiteRT's builtin kernels only
        self.uses_flex = False
        self.interpreter = self._make_interpreter()
        try:
            ins, outs = self._io_details()
        except Exception as exc:  # noqa: BLE001 - a corrupt file names tensors that do not exist
            raise _load_error("LiteRT", self.path, exc) from exc
        in_names, self._in = [n for n, _ in ins], [d for _, d in ins]
        out_names, self._out = [n for n, _ in outs], [d for _, d in outs]
        self.fixed_batch = None
        sig0 = self._in[0].get("shape_signature", self._in[0]["shape"])
        if len(sig0) and int(sig0[0]) > 0:
            self.fixed_batch = int(sig0[0])
        self.input_spec = [_spec(n, d.get("shape_signature", d["shape"]), d["dtype"],
                                 _quant(d)) for n, d in zip(in_names, self._in)]
        self.output_spec = [_spec(n, d.get("shape_signature", d["shape"]), d["dtype"],
                                  _quant(d)) for n, d in zip(out_names, self._out)]
        self._allocated_batch = None

    def _io_details(self) -> tuple[list, list]:
        """``[(name, detail)]`` of the inputs and of the outputs, as LiteRT reports them."""
        if SIGNATURE_KEY in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
            ins, outs = runner.get_input_details(), runner.get_output_details()
            return ([(n, ins[n]) for n in sorted(ins, key=natural_key)],
                    [(n, outs[n]) for n in sorted(outs, key=natural_key)])
        return ([(d["name"], d) for d in self.interpreter.get_input_details()],
                [(d["name"], d) for d in self.interpreter.get_output_details()])

    def _make_interpreter(self):
        from ai_edge_litert.interpreter import Interpreter
        kwargs = {"model_path": str(self.path),
                  "num_threads": int(self.num_threads or os.cpu_count() or 1)}
        if not self.xnnpack:
            from ai_edge_litert.interpreter import OpResolverType
            kwargs["experimental_op_resolver_type"] = (
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.unavailable = None  # why this artifact cannot run here, if so
        try:
            # "INFO: Created TensorFlow Lite XNNPACK delegate" goes straight to
            # fd 2; real failures still arrive as exceptions with their text.
            with silenced_stderr_fd():
                interp = Interpreter(**kwargs)
                interp.allocate_tensors()
        except Exception as exc:  # noqa: BLE001 - LiteRT raises RuntimeError, ValueError
            text = " ".join(str(exc).split())
            if "flex" not in text.lower() and "select tensorflow" not in text.lower():
                raise _load_error("LiteRT", self.path, exc) from exc
            self.uses_flex = True
            try:  # TensorFlow's own interpreter links the Flex delegate in some builds
                import tensorflow as tf
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    flex = tf.lite.Interpreter(**kwargs)
                flex.allocate_tensors()
                return flex
            except (RuntimeError, ValueError):
                self.unavailable = (
                    f"{str(self.path)!r} uses Select-TF (Flex) ops and neither LiteRT "
                    "nor tf.lite in this environment links the Flex delegate.")
        return interp

    def _resize(self, batch: int):
        if self._allocated_batch == batch:
            return
        for d in self._in:
            shape = list(d.get("shape_signature", d["shape"]))
            shape[0] = batch
            shape = [1 if s < 0 else s for s in shape]
            self.interpreter.resize_tensor_input(d["index"], shape, strict=False)
        self.interpreter.allocate_tensors()
        self._allocated_batch = batch

    def _invoke(self, arrays):
        if self.unavailable:
            raise ModelLoadError(f"Cannot run {self.unavailable}")
        feeds = [_quantize(a, d) for d, a in zip(self._in, arrays)]
        try:
            self._resize(arrays[0].shape[0])
            for d, a in zip(self._in, feeds):
                self.interpreter.set_tensor(d["index"], a)
            self.interpreter.invoke()
            results = [self.interpreter.get_tensor(d["index"]) for d in self._out]
        except (RuntimeError, ValueError, TypeError) as exc:  # LiteRT on a corrupt file
            raise _load_error("LiteRT", self.path, exc, doing="run") from exc
        return [_dequantize(r, d) for r, d in zip(results, self._out)]

    def _run(self, arrays):
        n = arrays[0].shape[0]
        step = self.fixed_batch
        if step is None or step == n:
            return self._invoke(arrays)
        chunks = []
        for start in range(0, n, step):
            part = [a[start:start + step] for a in arrays]
            short = step - part[0].shape[0]
            if short:
                part = [np.concatenate([p, np.zeros((short,) + p.shape[1:], p.dtype)])
                        for p in part]
            chunks.append(self._invoke(part))
        return [np.concatenate([c[i] for c in chunks])[:n] for i in range(len(self._out))]


def _quant(detail) -> dict | None:
    if np.dtype(detail["dtype"]) not in (np.int8, np.uint8, np.int16):
        return None
    scale, zero = detail.get("quantization", (0.0, 0))
    return {"scale": float(scale), "zero_point": int(zero)}


def _quantize(x, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32)
    if dtype.kind in "iu" and detail.get("quantization", (0.0, 0))[0]:
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(y, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu" and detail.get("quantization", (0.0, 0))[0]:
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * np.float32(scale)
    return y.astype(np.float32) if dtype != np.float32 else y.copy()


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


_RUNNERS = {"keras": KerasRunner, "saved_model": SavedModelRunner,
            "onnx": OnnxRunner, "tflite": TFLiteRunner}


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
    return _RUNNERS[artifact_kind(path)](path, num_threads=num_threads)


__all__ = ["KINDS", "SUFFIX_KINDS", "SAVED_MODEL_FILES", "WARMUP_RUNS", "Runner", "KerasRunner", "SavedModelRunner", "OnnxRunner",
           "TFLiteRunner", "load_artifact", "load_keras_model", "artifact_kind",
           "natural_key"]
