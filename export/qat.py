"""int8 artifacts of a quantization-aware (QAT) model, from its trained ranges.

A QAT model (``training.quantize_aware``) carries its int8 arithmetic:
per-channel int8 weights, int32 biases and one trained ``[min, max]`` per
activation tensor. Its int8 artifacts take exactly those, with no calibration:

* :func:`export_graph` clones the model and bakes (``models.quantizers.freeze``)
  the weights onto their int8 grid and the ranges into constant
  ``FakeQuantWithMinMaxVars`` ops;
* TFLite (int8, also ``--no-float-head``, and ``tflite_micro``):
  ``export.tflite_convert`` / ``export.micro`` with ``trained_ranges=True``
  leave out the representative dataset, so the converter reads those ops'
  ranges (its quantization-aware path) and quantizes the baked weights per
  channel, which reproduces their grid exactly. Every tensor is int8: a QAT
  model needs no float head, its logits range was trained;
* int8 ONNX: tf2onnx turns each fake-quant op into a QuantizeLinear /
  DequantizeLinear pair at the trained scale (its zero point moved from uint8
  to int8), and each MatMul/Conv weight becomes an int8 per-channel initializer
  behind a DequantizeLinear (QDQ format, as onnxruntime's own quantizer writes).

The manifest records ``ranges: "trained"`` and each quantizer's range
(``trained_ranges``) instead of ``calibration_ranges``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from export import convert
from export.errors import ExportError

RANGES = "trained"  # the manifest's word for "ranges from the trained quantizers"


def is_quantize_aware(model) -> bool:
    """True for a model trained quantization-aware (it holds fake-quant layers)."""
    from models.quantizers import is_quantize_aware as holds_quantizers
    return holds_quantizers(model)


def export_graph(model):
    """A frozen copy of QAT ``model`` (constants baked; ``model`` is left as it is)."""
    import keras

    from models.quantizers import freeze
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    freeze(copy)
    return copy


def trained_ranges(model) -> list[dict]:
    """Each activation quantizer's ``{"tensor", "range": [min, max]}`` of a frozen QAT model."""
    from models.quantizers import ActivationQuantizer
    return [{"tensor": layer.name, "range": [round(float(v), 6) for v in layer._frozen["range"]]}
            for layer in model.layers if isinstance(layer, ActivationQuantizer)]


def facts(model) -> dict:
    """What the manifest says about where an artifact's int8 ranges came from."""
    return {"ranges": RANGES, "trained_ranges": trained_ranges(model),
            "calibration_ranges": [], "float_head": []}


def to_onnx_float(model, path, opset: int) -> dict:
    """The float ONNX of frozen QAT ``model``: each fake quantization in TensorFlow's
    own float formula (``FakeQuantWithMinMaxVars``: clamp, shift, ``floor(v / scale +
    0.5)``), so that it computes what Keras computes (tf2onnx's uint8
    QuantizeLinear / DequantizeLinear pairs agreed with Keras on 97.2% of the
    digits on a QAT exam_mlp, this formula on 100%, max abs diff 0)."""
    import onnx
    from onnx import numpy_helper

    convert.to_onnx(model, path, opset)
    proto = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producers = {o: n for n in proto.graph.node for o in n.output}
    nodes, dropped = [], set()
    for node in proto.graph.node:
        source = producers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if source is None or source.op_type != "QuantizeLinear":
            nodes.append(node)
            continue
        dropped.add(id(source))
        scale = np.float32(inits[node.input[1]])
        zero = float(inits[node.input[2]])
        low, high = np.float32(-zero * scale), np.float32((255.0 - zero) * scale)
        nodes += _tf_fake_quant(proto, source.input[0], node.output[0], low, high, scale)
    del proto.graph.node[:]
    proto.graph.node.extend(n for n in nodes if id(n) not in dropped)
    return convert.write_checked_onnx(proto, path, "the quantization-aware float ONNX")


def _tf_fake_quant(proto, x, out, low, high, scale) -> list:
    import onnx
    from onnx import numpy_helper
    stem = out.replace(":", "_")
    consts = {"low": low, "high": high, "inv": np.float32(1.0) / scale, "half": 0.5,
              "scale": scale}
    proto.graph.initializer.extend(numpy_helper.from_array(np.asarray(v, np.float32),
                                                           f"{stem}_{k}")
                                   for k, v in consts.items())
    steps = [("Clip", [x, f"{stem}_low", f"{stem}_high"]), ("Sub", [f"{stem}_low"]),
             ("Mul", [f"{stem}_inv"]), ("Add", [f"{stem}_half"]), ("Floor", []),
             ("Mul", [f"{stem}_scale"]), ("Add", [f"{stem}_low"])]
    nodes, current = [], None
    for i, (op, args) in enumerate(steps):
        inputs = args if current is None else [current] + args
        current = out if i == len(steps) - 1 else f"{stem}_fq{i}"
        nodes.append(onnx.helper.make_node(op, inputs, [current], name=f"{stem}_fq_{op}{i}"))
    return nodes


def to_onnx_int8(model, path: Path, opset: int) -> dict:
    """The int8 QDQ ONNX of frozen QAT ``model``: tf2onnx's QuantizeLinear /
    DequantizeLinear pairs (zero points moved to int8) and int8 per-channel weights.

    Returns:
        The manifest facts: ``opset``, ``ir_version``, ``ops``.
    """
    import onnx
    from onnx import numpy_helper

    convert.to_onnx(model, path, opset)
    proto = onnx.load(str(path))
    inits = {i.name: i for i in proto.graph.initializer}
    for init in list(inits.values()):  # uint8 zero points -> int8 (same real values)
        if init.data_type == onnx.TensorProto.UINT8:
            value = numpy_helper.to_array(init).astype(np.int16) - 128
            init.CopyFrom(numpy_helper.from_array(value.astype(np.int8), init.name))
    new_nodes = []
    for node in proto.graph.node:
        slot = {"MatMul": 1, "Gemm": 1, "Conv": 1}.get(node.op_type)
        weight = inits.get(node.input[slot]) if slot is not None and len(node.input) > slot \
            else None
        if weight is not None and len(weight.dims) >= 2:
            axis = 0 if node.op_type == "Conv" else len(weight.dims) - 1
            new_nodes += _dequantized_weight(proto, weight, axis, node, slot)
        new_nodes.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(new_nodes)
    return convert.write_checked_onnx(proto, path, "the int8 QDQ ONNX")


def _dequantized_weight(proto, weight, axis, node, slot) -> list:
    """Replace float ``weight`` (already on its per-channel int8 grid) by int8 values,
    scales and a DequantizeLinear feeding ``node``; returns the new node."""
    import onnx
    from onnx import numpy_helper

    value = numpy_helper.to_array(weight).astype(np.float64)
    others = tuple(i for i in range(value.ndim) if i != axis)
    scale = np.maximum(np.abs(value).max(axis=others), 1e-12) / 127.0
    shape = [1] * value.ndim
    shape[axis] = -1
    q = np.clip(np.round(value / scale.reshape(shape)), -127, 127).astype(np.int8)
    name = weight.name
    proto.graph.initializer.remove(weight)
    proto.graph.initializer.extend([
        numpy_helper.from_array(q, f"{name}_int8"),
        numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
        numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{name}_zero_point")])
    dequantize = onnx.helper.make_node(
        "DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"],
        [f"{name}_dequantized"], name=f"{name}_DequantizeLinear", axis=axis)
    node.input[slot] = f"{name}_dequantized"
    return [dequantize]
