"""Per-layer int8 quantization report: ``python -m export explain MODEL
--representative-data DATASET``.

For each int8 target (TFLite, int8 ONNX, TFLite Micro) and each layer the
runtime's quantizer sees, three measurements on held-out data:

* ``alone_error``: the relative RMS error of the model's first output against
  Keras when that layer *alone* is int8 (every other layer kept float): the
  error the layer adds;
* ``kept_float_agreement``: the agreement with Keras on the decision of the
  model card (top-1 for class scores) when that layer alone is kept float and
  the rest is quantized as the target ships it;
* its output range and scale (int8 step), and the largest weight of the Keras
  layer it belongs to.

Each variant is made by the runtime's own selective quantization: LiteRT's
``QuantizationDebugger`` (``denylisted_nodes``; its ``layer_debug_metrics``
give the local error ``rmse/scale`` of each op with quantized inputs), and
onnxruntime's ``quantize_static(nodes_to_exclude=...)`` (with its QDQ debugging
helpers' SQNR per tensor, :mod:`export.explain_onnx`). The calibration is the
exporter's: the same samples (:mod:`export.calibration`), the float head of the
int8 TFLite, the raised logit bound of the fully-int8 TFLite Micro model.
TFLite Micro is measured in LiteRT's builtin int8 kernels with float I/O (its
int8 input and output carry the same scales as the QUANTIZE / DEQUANTIZE
around them); the report itself is :mod:`export.explain_report`.
"""
from __future__ import annotations

import csv
import io
import itertools
import tempfile
import warnings
from pathlib import Path

import numpy as np

from utils.tf_quiet import silenced_stderr_fd  # before keras: silences TF's start-up lines

from export import calibration
from export.errors import ExportError
from export.validate import AGREEMENT_SAMPLES, decide

TARGETS = ("tflite", "onnx_int8", "tflite_micro")
# Held-out samples the LiteRT debugger runs one by one for its per-op metrics.
DEBUG_SAMPLES = 100


def relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    """RMS of ``got - ref`` over the RMS of ``ref`` (0: exact)."""
    ref = np.asarray(ref, dtype=np.float64)
    diff = np.asarray(got, dtype=np.float64) - ref
    return float(np.sqrt(np.mean(diff ** 2)) / (np.sqrt(np.mean(ref ** 2)) or 1.0))


def agreement(got: np.ndarray, ref: np.ndarray, decision: str) -> float | None:
    """Share of samples on which ``got`` makes Keras' decision (None for regression)."""
    if decision == "regression":
        return None
    same = decide(got, decision) == decide(ref, decision)
    return float(np.mean(same.reshape(len(ref), -1).all(axis=1)))


def keras_layer(node: str, layer_names) -> str | None:
    """The Keras layer a runtime node name belongs to: the first path component
    of the name that is a layer's name (tracing may suffix ``_1``)."""
    names = set(layer_names)
    for part in node.replace(";", "/").split("/"):
        for candidate in (part, part.rsplit("_", 1)[0]):
            if candidate in names:
                return candidate
    return None


def measure_layers(layers, variant, x, reference, decision, shipped_float=()) -> dict:
    """Run every per-layer variant of one target.

    Args:
        layers: node names, in graph order.
        variant: ``variant(float_nodes) -> first output on x`` of the model with
            ``float_nodes`` kept float and every other node int8.
        shipped_float: the nodes the shipped artifact keeps float (a float head).

    Returns:
        ``{"agreement", "error", "layers": [{"node", "alone_error",
        "kept_float_agreement", "shipped_float"}]}``.
    """
    shipped = set(shipped_float)
    base = variant(shipped)
    rows = []
    for node in layers:
        alone = variant(set(layers) - {node})
        kept = base if node in shipped else variant(shipped | {node})
        rows.append({"node": node, "alone_error": relative_error(alone, reference),
                     "kept_float_agreement": agreement(kept, reference, decision),
                     "shipped_float": node in shipped})
    return {"agreement": agreement(base, reference, decision),
            "error": relative_error(base, reference), "layers": rows}


def evaluation_subset(data) -> np.ndarray:
    """At most ``AGREEMENT_SAMPLES`` evenly spaced held-out samples (the
    exporter's agreement check uses as many)."""
    x = np.asarray(data, dtype=np.float32)
    return x[np.linspace(0, len(x) - 1, min(len(x), AGREEMENT_SAMPLES)).astype(int)]


# ---------------------------------------------------------------- LiteRT
def _converter(graph, scratch: Path, samples, batch_size):
    """The int8 converter the exporter sets up (builtin int8 ops, calibrated on
    ``samples`` one at a time)."""
    import tensorflow as tf

    from export.convert import to_saved_model
    from export.graph import SIGNATURE_KEY
    saved = scratch / f"sm_{batch_size}"
    to_saved_model(graph, saved, batch_size=batch_size)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[SIGNATURE_KEY])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.representative_dataset = lambda: ([samples[i:i + 1]] for i in range(len(samples)))
    return conv


def debugger_rows(debugger) -> list[dict]:
    """The debugger's per-op statistics, read through its public CSV dump."""
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    return list(csv.DictReader(io.StringIO(text.getvalue())))


def explain_tflite(graph, scratch, representative_data, x, reference, decision, *,
                   micro: bool) -> dict:
    """The per-layer report of the int8 TFLite (float head, dynamic batch) or, with
    ``micro``, of the fully-int8 batch-1 TFLite Micro model (logit bound raised)."""
    import tensorflow as tf

    from export.runtime_tflite import TFLiteRunner
    from export.tflite_convert import head_nodes
    samples = calibration.calibration_subset(representative_data)
    conv = _converter(graph, Path(scratch), samples, 1 if micro else None)
    debug = x[:DEBUG_SAMPLES]
    options = tf.lite.experimental.QuantizationDebugOptions
    with silenced_stderr_fd(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the debugger runs tf.lite.Interpreter (deprecated)
        try:
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv,
                debug_dataset=lambda: ([debug[i:i + 1]] for i in range(len(debug))))
        except Exception as exc:  # the converter raises ConverterError and friends
            raise ExportError(f"{'tflite_micro' if micro else 'tflite'} int8 conversion "
                              f"failed: {' '.join(str(exc).split())[:300]}") from exc
        ranges = []
        if micro:  # the fully-int8 model ships with the exporter's logit bound
            debugger.calibrated_model, ranges = calibration.bound_logits(
                debugger.calibrated_model, samples)
            debugger.options = options()
        debugger.run()
        stats = debugger_rows(debugger)
        shipped = [] if micro else head_nodes(debugger.get_nondebug_quantized_model())
    layers = [r["tensor_name"] for r in stats]
    counter = itertools.count()

    def variant(float_nodes):
        # Every op float: the calibrated model itself (the debugger needs one int8 op).
        content = debugger.calibrated_model
        if not set(float_nodes) >= set(layers):
            with silenced_stderr_fd(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                debugger.options = options(denylisted_nodes=sorted(float_nodes))
                content = debugger.get_nondebug_quantized_model()
        path = Path(scratch) / f"variant_{next(counter)}.tflite"
        path.write_bytes(content)
        runner = TFLiteRunner(path, kernels="builtin" if micro else "xnnpack")
        return runner.run(x)[0]

    result = measure_layers(layers, variant, x, reference, decision, shipped)
    for row, stat in zip(result["layers"], stats):
        scale, zero = float(stat["scale"]), int(float(stat["zero_point"]))
        row.update(op=stat["op_name"], scale=scale, zero_point=zero,
                   range=[scale * (-128 - zero), scale * (127 - zero)],
                   local_error=float(np.sqrt(float(stat["mean_squared_error"])) / scale),
                   local_metric="rmse/scale (LiteRT QuantizationDebugger)")
    result.update(runtime="LiteRT builtin int8 kernels, float I/O" if micro else "LiteRT",
                  calibration_ranges=ranges, float_head=shipped)
    return result


# ---------------------------------------------------------------- the report
def explain_model(model_or_path, out_dir, *, representative_data, validation_data=None,
                  targets=TARGETS) -> dict:
    """Write the per-layer quantization report of every int8 target to ``out_dir``.

    Args:
        model_or_path: a ``keras.Model`` or a ``.keras`` path (``safe_mode=True``).
        out_dir: the report directory (``report.md``, ``report.json``,
            ``error_per_layer.png``), replaced atomically.
        representative_data: float32 ``[N, ...]`` calibration inputs (the export's).
        validation_data: held-out inputs the errors and agreements are measured on
            (default ``representative_data``).
        targets: a subset of :data:`TARGETS`.

    Returns:
        The report (``report.json``'s content).

    Raises:
        ExportError: an unknown target, or a quantizer failed (its message).
    """
    import keras

    from export import explain_onnx, explain_report
    from export.graph import static_flatten
    from export.runtime import KerasRunner, load_keras_model
    from models.card import model_card
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        raise ExportError(f"explain targets are {', '.join(TARGETS)}; received "
                          f"{', '.join(unknown)}")
    out = explain_report.check_report_dir(out_dir)
    model = model_or_path if isinstance(model_or_path, keras.Model) else \
        load_keras_model(model_or_path)
    card = model_card(model)
    graph, _ = static_flatten(model)
    x = evaluation_subset(representative_data if validation_data is None else validation_data)
    reference = KerasRunner(graph).run(x)[0]
    layer_names = [l.name for l in model.layers]
    weights = {l.name: l.get_weights() for l in model.layers}
    report = {"model": None if isinstance(model_or_path, keras.Model) else str(model_or_path),
              "decision": card["decision"], "samples": int(len(x)),
              "calibration_samples": int(len(calibration.calibration_subset(
                  representative_data))), "targets": {}}
    with tempfile.TemporaryDirectory(prefix="export-explain-") as scratch:
        for target in targets:
            work = Path(scratch) / target
            work.mkdir()
            if target == "onnx_int8":
                result = explain_onnx.explain_onnx(graph, work, representative_data, x,
                                                   reference, card["decision"])
            else:
                result = explain_tflite(graph, work, representative_data, x, reference,
                                        card["decision"], micro=target == "tflite_micro")
            for row in result["layers"]:
                row["layer"] = keras_layer(row["node"], layer_names)
                kernel = weights.get(row["layer"]) or []
                row["weight_max_abs"] = float(np.abs(kernel[0]).max()) if kernel else None
            worst = max(result["layers"], key=lambda r: r["alone_error"], default=None)
            result["worst"] = worst and (worst["layer"] or worst["node"])
            report["targets"][target] = result
    explain_report.write(out, report)
    return report
