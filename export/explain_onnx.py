"""The int8 ONNX part of the per-layer quantization report (:mod:`export.explain`).

The layers are the nodes of onnxruntime's pre-processed float model; each variant is the exporter's own
quantization (:func:`export.onnx_int8.to_onnx_int8`) with ``nodes_to_exclude``.
The local error of each node's output is onnxruntime's QDQ debugging helpers'
SQNR in dB (``qdq_loss_debug.compute_activation_error``, float model vs. the
int8 model: higher is better); range and scale are read from the
QuantizeLinear of that output in the int8 model.

Keeping a node float this way does not always hold at run time: onnxruntime's
CPU optimizer fuses a float Gemm that sits between a DequantizeLinear and a
QuantizeLinear into a QGemm, quantizing its weights itself. Each row records
whether that happened to its kept-float variant (``kept_float_requantized``),
so a kept-float agreement that did not recover is read as what it is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from export.convert import quiet_logger


def _layers(fused) -> list:
    """Every node of the pre-processed model, in order: the QDQ quantizer also
    handles ops outside its registry's list (a Softmax), and excluding a node it
    leaves float anyway changes nothing."""
    import onnx
    return list(onnx.load(str(fused)).graph.node)


def _output_quantization(quantized_path) -> dict:
    """``{tensor: (scale, zero_point)}`` of each QuantizeLinear's input tensor."""
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(str(quantized_path))
    init = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    const = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
             for n in proto.graph.node if n.op_type == "Constant" and n.attribute}
    values = {**const, **init}
    found = {}
    for n in proto.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[1] in values:
            scale = np.asarray(values[n.input[1]]).reshape(-1)
            zero = np.asarray(values[n.input[2]]).reshape(-1) if len(n.input) > 2 else [0]
            found.setdefault(n.input[0], (float(scale[0]), int(zero[0])))
    return found


def _quantized_output(tensor, consumers, quant) -> str:
    """``tensor``, or where the quantizer fused its QDQ into a single consumer
    (a Gemm's output into the Relu after it), the first quantized tensor down
    that single-consumer chain."""
    while tensor not in quant and len(consumers.get(tensor, ())) == 1:
        tensor = consumers[tensor][0].output[0]
    return tensor


def _requantized(path, scratch: Path) -> set:
    """Nodes that onnxruntime's CPU optimizer (as the exporter's runner opens the
    file) fused into an int8 op although the quantizer left them float: a float
    Gemm between a DequantizeLinear and a QuantizeLinear becomes a QGemm."""
    import onnx
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(scratch / "optimized.onnx")
    options.log_severity_level = 3  # "hardware specific optimizations": read here only
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return {n.name for n in onnx.load(options.optimized_model_filepath).graph.node
            if n.op_type.startswith(("QGemm", "QLinear", "QAttention"))}


def _sqnr(float_path, quantized_path, scratch: Path, x) -> dict:
    """SQNR (dB) of every tensor of the int8 model against the float model."""
    from onnxruntime.quantization import qdq_loss_debug as qdq
    samples = x[:100]
    name = "input"
    activations = {}
    for tag, path in (("float", float_path), ("qdq", quantized_path)):
        augmented = scratch / f"augmented_{tag}.onnx"
        qdq.modify_model_output_intermediate_tensors(str(path), str(augmented))
        import onnx
        name = onnx.load(str(augmented)).graph.input[0].name
        activations[tag] = qdq.collect_activations(
            str(augmented), [{name: samples[i:i + 1]} for i in range(len(samples))])
    matched = qdq.create_activation_matching(activations["qdq"], activations["float"])
    return {t: float(e.get("xmodel_err", np.nan))
            for t, e in qdq.compute_activation_error(matched).items()}


def explain_onnx(graph, scratch, representative_data, x, reference, decision) -> dict:
    """The per-layer report of the int8 ONNX (``model_int8.onnx`` as the exporter
    makes it from the float ONNX)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from export.convert import to_onnx
    from export.explain import measure_layers
    from export.onnx_int8 import to_onnx_int8
    from export.onnx_ops import default_opset
    from export.runtime_onnx import OnnxRunner
    scratch = Path(scratch)
    float_onnx, fused = scratch / "model.onnx", scratch / "fused.onnx"
    to_onnx(graph, float_onnx, default_opset())
    with quiet_logger(""):
        quant_pre_process(str(float_onnx), str(fused), skip_symbolic_shape=True)
    nodes = _layers(fused)
    layers = [n.name for n in nodes]
    paths = {}

    def variant(float_nodes):
        path = scratch / f"variant_{len(paths)}.onnx"
        to_onnx_int8(float_onnx, path, representative_data,
                     nodes_to_exclude=sorted(float_nodes) or None)
        paths[frozenset(float_nodes)] = path
        return OnnxRunner(path, num_threads=1).run(x)[0]

    result = measure_layers(layers, variant, x, reference, decision)
    baseline = paths[frozenset()]
    for row in result["layers"]:
        row["kept_float_requantized"] = row["node"] in _requantized(paths[frozenset([row["node"]])],
                                                                   scratch)
    quant = _output_quantization(baseline)
    with quiet_logger(""):
        sqnr = _sqnr(fused, baseline, scratch, x)
    consumers = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for row, node in zip(result["layers"], nodes):
        out = _quantized_output(node.output[0], consumers, quant)
        scale, zero = quant.get(out, (None, None))
        row.update(op=node.op_type, scale=scale, zero_point=zero,
                   range=None if scale is None else [scale * (-128 - zero),
                                                     scale * (127 - zero)],
                   local_error=sqnr.get(out), local_metric="SQNR dB (onnxruntime "
                   "qdq_loss_debug; higher is better)")
    result.update(runtime="onnxruntime (CPU)", calibration_ranges=[], float_head=[])
    return result
