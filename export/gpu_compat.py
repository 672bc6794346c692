"""Whether the LiteRT GPU delegate accepts a ``.tflite`` file, op by op.

TensorFlow's answer is ``tf.lite.experimental.Analyzer.analyze(...,
gpu_compatibility=True)``, which applies the rules of
``tensorflow/lite/tools/versioning/gpu_compatibility.cc``. In the pinned
wheels (tensorflow 2.21.0, ai-edge-litert 2.3.0) that check is compiled out:
the analyzer calls every model compatible, ARG_MAX and an int32 CUMSUM
included, and its library holds none of the checker's messages. So this
module applies the same rules itself: the ops the checker's switch accepts,
with the conditions that can fail for a converted Keras model (runtime vs.
constant inputs, SOFTMAX beta, slice ranks and masks, constant reduction
axes, cast and gather types). Conditions that hold for every model the
converter writes (positive strides, kernel sizes) are not repeated here.
"""
from __future__ import annotations

RULES = "tensorflow/lite/tools/versioning/gpu_compatibility.cc (TF 2.21)"
_UNARY = {"ABS", "CEIL", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGISTIC", "NEG",
          "RSQRT", "SIGN", "SIN", "SQRT", "SQUARE", "TANH"}
_BINARY = {"ATAN2", "DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL",
           "LOGICAL_AND", "LESS", "LESS_EQUAL", "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW",
           "SQUARED_DIFFERENCE", "SUB"}
_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"}
_FREE = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "CONV_2D",
         "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "DENSIFY", "EMBEDDING_LOOKUP",
         "DYNAMIC_UPDATE_SLICE", "HARD_SWISH", "LSTM", "PACK", "ONE_HOT", "RELU_N1_TO_1",
         "PRELU", "RELU", "RELU6", "LEAKY_RELU", "SELECT", "SELECT_V2", "SPLIT", "SPLIT_V",
         "TILE", "TRANSPOSE", "TRANSPOSE_CONV", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
         "STABLEHLO_CLAMP"}
_SUPPORTED = (_UNARY | _BINARY | _REDUCE | _FREE | {
    "ADD", "MUL", "ADD_N", "CAST", "CUMSUM", "DEQUANTIZE", "FULLY_CONNECTED", "GATHER",
    "QUANTIZE", "RESHAPE", "SLICE", "SOFTMAX", "STRIDED_SLICE", "PAD", "PADV2", "MIRROR_PAD"})
_FLOAT = {"FLOAT32", "FLOAT16"}


def _reason(op: dict) -> str | None:
    """Why the GPU delegate refuses ``op`` (None: it accepts it)."""
    name, ins = op["name"], op["inputs"]
    runtime = [t for t in ins if not t["const"]]
    const = [t for t in ins if t["const"]]
    if name not in _SUPPORTED:
        return f"Not supported op {name}"
    if name in _UNARY and (len(runtime), len(const)) != (1, 0):
        return f"{name} needs 1 runtime input and no constant one"
    if name in _BINARY and (len(runtime), len(const)) not in ((2, 0), (1, 1)):
        return f"{name} can only handle 1 or 2 operand(s)"
    if name in ("ADD", "MUL") and len(ins) != 2:
        return f"{name} requires two input tensors"
    if name == "ADD_N" and len(ins) != 2:
        return "ADD_N only supports 2 inputs"
    if name in ("RESHAPE", "QUANTIZE") and len(runtime) != 1:
        return f"{name} needs exactly 1 runtime input (its shape must be constant)"
    if name == "FULLY_CONNECTED" and (len(runtime) > 2 or ins[0]["const"]):
        return "FullyConnected needs a runtime input and at most 2 runtime inputs"
    if name == "SOFTMAX" and op["options"].get("beta", 1.0) != 1.0:
        return "Softmax.beta != 1 is not supported"
    if name == "DEQUANTIZE" and ins[0]["type"] == "INT16":
        return "Unsupported dequantization type (int16)"
    if name in ("SLICE", "STRIDED_SLICE") and len(ins[0]["shape"]) not in (3, 4):
        return f"{name} supports 3 or 4 dimensional tensors only"
    if name == "STRIDED_SLICE" and any(op["options"].get(k) for k in
                                       ("ellipsis_mask", "new_axis_mask", "shrink_axis_mask")):
        return "STRIDED_SLICE does not support ellipsis, new-axis or shrink-axis masks"
    if name in _REDUCE and (len(ins) < 2 or not ins[1]["const"] or ins[1]["type"] != "INT32"):
        return f"{name} is only supported with constant int32 axes"
    if name == "CUMSUM" and (ins[0]["type"] not in _FLOAT or not ins[1]["const"]):
        return "CUMSUM input must be float and its axis constant int32"
    if name == "GATHER" and (ins[0]["type"] == "INT32" or len(ins[1]["shape"]) != 1
                             or ins[1]["type"] != "INT32"):
        return "GATHER needs non-int32 data and 1-D int32 indices"
    if name == "CAST":
        pair = (ins[0]["type"], op["outputs"][0]["type"])
        if not (pair[0] == "BOOL" and pair[1] in _FLOAT or pair[0] in _FLOAT and pair[1] == "BOOL"
                or set(pair) <= {"FLOAT32", "INT32"}):
            return f"Not supported Cast case {pair[0]} -> {pair[1]}"
    if name in ("PAD", "PADV2", "MIRROR_PAD") and (
            len(ins) < 2 or len(ins[1]["shape"]) != 2 or ins[1]["shape"][0] not in (3, 4)):
        return "Padding needs a 4x2 or 3x2 paddings tensor"
    return None


def _ops(content: bytes) -> list[dict]:
    """Every op of subgraph 0 with its tensors (type, shape, constant) and options."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(content, 0)
    graph = model.Subgraphs(0)

    def tensor(i):
        t = graph.Tensors(i)
        buf = model.Buffers(t.Buffer())
        return {"type": types.get(t.Type(), str(t.Type())), "shape": list(t.ShapeAsNumpy())
                if t.ShapeLength() else [], "const": bool(buf.DataLength() or buf.Offset())}

    ops = []
    for j in range(graph.OperatorsLength()):
        op = graph.Operators(j)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        if name == "CUSTOM":
            name = code.CustomCode().decode()
        options = {}
        table = op.BuiltinOptions()
        if name == "SOFTMAX" and table is not None:
            opts = schema.SoftmaxOptions()
            opts.Init(table.Bytes, table.Pos)
            options["beta"] = float(opts.Beta())
        if name == "STRIDED_SLICE" and table is not None:
            opts = schema.StridedSliceOptions()
            opts.Init(table.Bytes, table.Pos)
            options.update(ellipsis_mask=opts.EllipsisMask(), new_axis_mask=opts.NewAxisMask(),
                           shrink_axis_mask=opts.ShrinkAxisMask())
        ops.append({"node": j, "name": name, "options": options,
                    "inputs": [tensor(i) for i in op.InputsAsNumpy() if i >= 0],
                    "outputs": [tensor(i) for i in op.OutputsAsNumpy()]})
    return ops


def gpu_compatibility(content: bytes) -> dict:
    """The GPU delegate's verdict on a ``.tflite`` flatbuffer.

    Returns:
        ``{"compatible": bool, "rejected": [{"node", "op", "reason"}],
        "rejected_ops": sorted names, "rules": source of the rules}``.
    """
    rejected = []
    for op in _ops(content):
        reason = _reason(op)
        if reason:
            rejected.append({"node": op["node"], "op": op["name"], "reason": reason})
    return {"compatible": not rejected, "rejected": rejected,
            "rejected_ops": sorted({r["op"] for r in rejected}), "rules": RULES}
