"""TFLite Micro (format ``tflite_micro``): a fully-int8 ``.tflite`` at batch 1
for microcontrollers, refused with one line when TFLite Micro cannot run it.

:func:`to_tflite_micro` converts (int8 weights and activations, int8 I/O by
default, calibrated on real data), then checks what TFLite Micro needs:
builtin ops that its ``MicroMutableOpResolver`` can register
(:data:`MICRO_OPS`), static shapes everywhere, and no float op left. The C
sources and the op resolver are written by :mod:`export.micro_sources`; the
arena is measured by :mod:`export.micro_runtime`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from utils.tf_quiet import silenced_stderr_fd  # before keras: silences TF's start-up lines

from export import calibration
from export.convert import to_saved_model
from export.errors import ExportError, UnsupportedOpsError
from export.graph import SIGNATURE_KEY
from export.tflite_convert import tflite_ops

# Builtin op -> the MicroMutableOpResolver method that registers its kernel,
# read from tensorflow/lite/micro/micro_mutable_op_resolver.h of TFLite Micro
# (tflite-micro 0.dev20261023182759, the pinned wheel). An op missing here is
# an op TFLite Micro has no kernel for (e.g. GELU, SIGN, TOPK_V2).
MICRO_OPS = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice", "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual", "HARD_SWISH": "AddHardSwish", "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax", "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack",
    "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum",
    "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}
# Tensor types a fully-int8 graph may hold (int32 biases and shapes, bool masks).
_INT8_GRAPH_TYPES = {"int8", "int32", "bool"}


def check_static_inputs(model) -> None:
    """Refuse model inputs with unknown non-batch dimensions (TFLite Micro
    plans every buffer before the first inference; only the batch is fixed).

    Raises:
        ExportError: naming each such input and its shape.
    """
    bad = [f"{t.name!r} {['batch'] + list(t.shape[1:])}" for t in model.inputs
           if any(d is None for d in t.shape[1:])]
    if bad:
        raise ExportError(
            f"tflite_micro needs static shapes, and input(s) {', '.join(bad)} have unknown "
            "dimensions (None) besides the batch, which is fixed to 1. Give every "
            "dimension a size in keras.Input(shape=...).")


def to_tflite_micro(model, path, *, representative_data, io="int8",
                    trained_ranges=False) -> dict:
    """Convert to a fully-int8, batch-1 ``.tflite`` that TFLite Micro can run.

    Args:
        model: the export graph (``keras.Model``).
        path: where to write the ``.tflite``.
        representative_data: float32 ``[N, ...]`` real inputs for calibration.
        io: "int8" (default: int8 input/output tensors, as on a device) or
            "float32" (QUANTIZE/DEQUANTIZE ops at the edges).
        trained_ranges: ``model`` is a frozen quantization-aware graph
            (``export.qat``): the ranges come from its fake-quant ops and
            ``representative_data`` is not used to calibrate.

    Returns:
        The manifest facts: ``ops``, ``flex_ops``, ``custom_ops``,
        ``calibration_ranges`` and ``micro`` (io, resolver method per op).

    Raises:
        UnsupportedOpsError: ops TFLite Micro has no kernel for (all named).
        ExportError: a dynamic shape left in the graph, a float op left,
            or the converter failed (its message, one line).
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="export-micro-") as scratch:
        to_saved_model(model, Path(scratch) / "sm", batch_size=1)
        conv = tf.lite.TFLiteConverter.from_saved_model(str(Path(scratch) / "sm"),
                                                        signature_keys=[SIGNATURE_KEY])
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        # (trained ranges: no representative dataset, which TFLITE_BUILTINS_INT8
        # demands; _check_graph below refuses any float op left)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS if trained_ranges
                                          else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        samples = calibration.calibration_subset(representative_data)
        if not trained_ranges:
            conv.representative_dataset = lambda: ([samples[i:i + 1]]
                                                   for i in range(len(samples)))
        elif io == "int8":
            conv.inference_input_type = conv.inference_output_type = tf.int8
        try:
            with silenced_stderr_fd():  # calibration lines go straight to fd 2
                content, ranges = (conv.convert(), []) if trained_ranges else \
                    calibration.full_integer(conv, samples, int8_io=io == "int8")
        except Exception as exc:  # the converter raises ConverterError and friends
            raise ExportError(f"tflite_micro conversion (fully int8, batch 1) failed: "
                              f"{_converter_reason(exc)}") from exc
    info = tflite_ops(content)
    missing = sorted(set(info["ops"]) - set(MICRO_OPS))
    if missing:
        raise UnsupportedOpsError(
            f"TFLite Micro has no kernel for op(s) {', '.join(missing)} (its "
            "MicroMutableOpResolver cannot register them); replace the layers that "
            "lower to them or export to tflite instead.", missing)
    _check_graph(content, io)
    Path(path).write_bytes(content)
    info.update(uses_flex=False, edge_ready=True, calibration_ranges=ranges,
                micro={"io": io, "resolver": [MICRO_OPS[o] for o in info["ops"]]})
    return info


def edge_quantization(content: bytes) -> tuple[list[dict], list[dict]]:
    """Scale and zero point of the int8 tensor at each input and output:
    the I/O tensor itself with int8 I/O, else the output of the QUANTIZE op
    after a float input / the input of the DEQUANTIZE op before a float output."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=content)
    ops = interp._get_ops_details()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    consumer = {i: op for op in ops for i in op["inputs"]}
    producer = {o: op for op in ops for o in op["outputs"]}

    def quant(i, neighbour, kind, side):
        op = neighbour.get(i)
        if tensors[i]["dtype"].__name__ != "int8" and op and op["op_name"] == kind:
            i = op[side][0]
        scale, zero = tensors[i]["quantization"]
        return {"scale": float(scale), "zero_point": int(zero)}

    return ([quant(d["index"], consumer, "QUANTIZE", "outputs")
             for d in interp.get_input_details()],
            [quant(d["index"], producer, "DEQUANTIZE", "inputs")
             for d in interp.get_output_details()])


def _converter_reason(exc) -> str:
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    errors = [l for l in lines if "error:" in l.lower()]
    return " ".join((errors or lines or [type(exc).__name__])[0].split())[:300]


def _check_graph(content: bytes, io: str) -> None:
    """Static shapes and int8 tensors only (float only at the I/O edges)."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=content)
    edges = set()
    if io == "float32":
        edges = {d["index"] for d in interp.get_input_details() + interp.get_output_details()}
    dynamic, floats = [], []
    for t in interp.get_tensor_details():
        if any(int(d) < 0 for d in t.get("shape_signature", t["shape"])):
            dynamic.append(f"{t['name']} {list(t['shape_signature'])}")
        if t["dtype"].__name__ not in _INT8_GRAPH_TYPES and t["index"] not in edges:
            floats.append(f"{t['name']} ({t['dtype'].__name__})")
    if dynamic:
        raise ExportError(
            f"tflite_micro needs static shapes, and the batch-1 graph still has dynamic "
            f"tensor(s) {'; '.join(dynamic[:4])}: a layer computes a shape at run time. "
            "Give it static sizes, or export to tflite instead.")
    if floats:
        raise ExportError(
            f"tflite_micro needs every op in int8, and tensor(s) {'; '.join(floats[:4])} "
            "stayed float (no int8 kernel for the op that produces them).")
