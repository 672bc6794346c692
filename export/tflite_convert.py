"""TFLite (LiteRT) conversion: float32, float16, dynamic range and int8,
builtin ops only unless Flex is allowed, with the op list read back from the
flatbuffer for the manifest.
"""
from __future__ import annotations

import itertools
import tempfile
from pathlib import Path


from utils.tf_quiet import silenced_stderr_fd  # before keras: silences TF's start-up lines

from export import calibration, op_origin
from export.convert import to_saved_model
from export.errors import ExportError, UnsupportedOpsError
from export.graph import SIGNATURE_KEY


# --------------------------------------------------------------- TFLite
def tflite_ops(content: bytes) -> dict:
    """Operator names of a ``.tflite`` flatbuffer, read from its schema.

    Returns:
        ``{"ops": sorted names, "flex_ops": [...], "custom_ops": [...]}``;
        Flex ops are custom ops named ``Flex<TFOp>``.
    """
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(content, 0)
    used = set()
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            used.add(graph.Operators(i).OpcodeIndex())
    ops, flex, custom = set(), set(), set()
    for idx in used:
        code = model.OperatorCodes(idx)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if names.get(builtin) == "CUSTOM":
            name = code.CustomCode().decode()
            (flex if name.startswith("Flex") else custom).add(name)
            ops.add(name)
        else:
            ops.add(names.get(builtin, str(builtin)))
    return {"ops": sorted(ops), "flex_ops": sorted(flex), "custom_ops": sorted(custom)}


def _head_nodes(content: bytes) -> list[str]:
    """Output tensor names of the model's head: the op producing the output
    and, when that op is a softmax/logistic, the layer feeding it
    (QUANTIZE/DEQUANTIZE hops skipped)."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=content)
    ops = interp._get_ops_details()
    producer = {t: op for op in ops for t in op["outputs"]}
    names = []

    def real_producer(tensor):
        op = producer.get(tensor)
        while op is not None and op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            op = producer.get(op["inputs"][0])
        return op

    dequantized = {op["inputs"][0]: op["outputs"][0] for op in ops
                   if op["op_name"] == "DEQUANTIZE"}

    def name(op):
        # The debugger re-converts with float I/O, where an op that fed an
        # output DEQUANTIZE carries the name of that dequantized tensor.
        tensor = dequantized.get(op["outputs"][0], op["outputs"][0])
        return interp._get_tensor_details(tensor, 0)["name"]

    for out in interp.get_output_details():
        op = real_producer(out["index"])
        if op is None:
            continue
        names.append(name(op))
        if op["op_name"] in ("SOFTMAX", "LOGISTIC", "LOG_SOFTMAX"):
            feed = real_producer(op["inputs"][0])
            if feed is not None:
                names.append(name(feed))
    return names


def head_nodes(content: bytes) -> list[str]:
    """The node names :func:`to_tflite` keeps float with ``float_head`` (public for
    ``export.explain``, which measures the same selective quantization)."""
    return _head_nodes(content)


def _float_head(conv, content, representative) -> tuple[bytes, list[str]]:
    """Re-quantize with the head denylisted (kept float) via LiteRT's
    selective quantization (``QuantizationDebugger``)."""
    import warnings

    import tensorflow as tf
    nodes = _head_nodes(content)
    if not nodes:
        return content, []
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it runs tf.lite.Interpreter (deprecated)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=lambda: itertools.islice(representative(), 2),
            debug_options=options)
        return debugger.get_nondebug_quantized_model(), nodes


def to_tflite(model, path, *, quantization=None, representative_data=None,
              int8_io=False, allow_flex=False, batch_size=None, saved_model=None,
              float_head=False, trained_ranges=False, int8_fallback=None,
              decision="argmax") -> dict:
    """Convert with ``tf.lite.TFLiteConverter`` (builtin ops only by default).

    Args:
        quantization: None (float32), "float16", "dynamic" or "int8".
        representative_data: float32 array ``[N, ...]`` (int8 calibration).
        int8_io: with "int8", make the model's inputs/outputs int8 tensors.
        allow_flex: accept Select-TF (Flex) ops; the artifact then needs the
            Flex delegate, which edge runtimes do not ship.
        batch_size: a fixed batch size (static shapes), or None for dynamic.
        float_head: with "int8" (and float I/O), keep the output layer and
            its softmax in float. Their int8 steps (1/256 for a softmax) tie
            the top classes of a wide classifier and flip its top-1.
        trained_ranges: with "int8", ``model`` is a frozen quantization-aware
            graph (``export.qat``): the converter takes every range from its
            fake-quant ops, nothing is calibrated, every op is int8.
        int8_fallback: with "int8" (float I/O), "auto" also keeps the fewest layers
            float that bring the agreement with Keras on ``representative_data`` to
            the int8 bound (:mod:`export.explain_fallback`).
        decision: what the first output decides (the model card's), for the fallback.
        saved_model: an already written SavedModel of ``model`` with the same
            batch size, converted instead of writing a scratch one (tracing
            and writing a SavedModel costs as much as the conversion itself).

    Raises:
        UnsupportedOpsError: Flex or custom ops appear and are not allowed.
        ExportError: the converter failed (its message, one line).
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="export-tflite-") as scratch:
        if saved_model is None:
            saved_model = Path(scratch) / "sm"
            to_saved_model(model, saved_model, batch_size=batch_size)
        conv = tf.lite.TFLiteConverter.from_saved_model(
            str(saved_model), signature_keys=[SIGNATURE_KEY])
        # TFLITE_BUILTINS_INT8 demands a representative dataset, which trained
        # ranges replace (the fully-int8 check is the caller's).
        ops_sets = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8
                    if quantization == "int8" and not trained_ranges
                    else tf.lite.OpsSet.TFLITE_BUILTINS]
        # Flex is always offered to the converter so that a model needing it
        # fails below with the full list of offending ops instead of the
        # converter's first error.
        ops_sets.append(tf.lite.OpsSet.SELECT_TF_OPS)
        conv.target_spec.supported_ops = ops_sets
        if quantization in ("float16", "dynamic", "int8"):
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if quantization == "int8" and not trained_ranges:
            conv.representative_dataset = _representative(representative_data)
        if quantization == "int8":
            if int8_io:
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        head, ranges, fallback = [], [], None
        try:
            # The converter prints calibration/quantizer lines straight to fd 2;
            # failures still arrive as exceptions carrying the message.
            with silenced_stderr_fd():
                if quantization == "int8" and trained_ranges:
                    content = conv.convert()
                elif quantization == "int8" and (float_head or int8_fallback) and not int8_io:
                    content = conv.convert()
                    if float_head:
                        content, head = _float_head(conv, content, conv.representative_dataset)
                    if int8_fallback:
                        from export.explain_fallback import keep_float_until_bound
                        content, head, fallback = keep_float_until_bound(
                            conv, model, representative_data, decision, head)
                elif quantization == "int8":  # fully int8: the logits' range matters
                    content, ranges = calibration.full_integer(
                        conv, calibration.calibration_subset(representative_data),
                        int8_io=int8_io)
                else:
                    content = conv.convert()
        except Exception as exc:
            unsupported = _converter_custom_ops(str(exc))
            if unsupported:
                located = op_origin.tflite_error_ops(str(exc)) or [(o, "") for o in unsupported]
                raise UnsupportedOpsError(
                    f"TFLite has neither a builtin nor a Flex kernel for TF op "
                    f"{op_origin.describe(located, model)} (the converter's pattern fusions "
                    "did not apply to this graph).", unsupported) from exc
            raise ExportError(f"TFLite conversion failed: "
                              f"{' '.join(str(exc).split())[:400]}") from exc
    info = tflite_ops(content)
    bad = info["flex_ops"] + info["custom_ops"]
    if bad and not (allow_flex and not info["custom_ops"]):
        raise UnsupportedOpsError(
            f"TFLite model needs non-builtin op "
            f"{op_origin.describe(op_origin.tflite_custom_nodes(content, bad), model)}; edge runtimes "
            "run builtin ops only. Pass allow_flex=True (--allow-flex) to accept "
            "Flex ops (the artifact is then marked edge_ready: false), or replace "
            "the layers that lower to them.", bad)
    Path(path).write_bytes(content)
    info["uses_flex"] = bool(info["flex_ops"])
    if quantization == "int8":
        info["float_head"] = head
        if fallback is not None:
            info["int8_fallback"] = fallback
        info["calibration_ranges"] = ranges
    info["edge_ready"] = not bad
    return info


def _converter_custom_ops(message: str) -> list[str]:
    """Op names from the converter's "Custom ops: A, B" error line."""
    for line in message.splitlines():
        if line.strip().startswith("Custom ops:"):
            return sorted({o.strip() for o in line.split(":", 1)[1].split(",") if o.strip()})
    return []


def _representative(data):
    x = calibration.calibration_subset(data)

    def gen():
        for i in range(len(x)):
            yield [x[i:i + 1]]
    return gen
