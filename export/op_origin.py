"""Which Keras layer produced an op that a converter could not convert.

TensorFlow names each op under the name scopes of the Keras layers that
traced it (``"mobilenet_1/block_3_conv_1/Conv2D"``, where TF appended ``_1``
to keep a scope unique), and the converters keep those names: tf2onnx as the
ONNX node's name, the TFLite converter in the ``loc("...")`` of its errors.
A refusal names the op and that layer, in one line.
"""
from __future__ import annotations

import re

_SCOPE_SUFFIX = re.compile(r"_\d+$")
# loc(callsite(fused["Digamma:", "model_1/layer_1/Digamma@__inference_serve_42"] at ...
_TFLITE_LOC = re.compile(r'fused\["[^"]*",\s*"([^"@]+)')
_TFLITE_OP = re.compile(r"'(tf\.[A-Za-z0-9_]+)' op")


def layer_names(model) -> set[str]:
    """Names of every layer of ``model``, nested ones included."""
    return {layer.name for layer in model._flatten_layers(include_self=False)}


def layer_of(op_name: str, names) -> str | None:
    """The innermost layer of ``names`` whose scope ``op_name`` is under (None: none)."""
    for part in reversed(op_name.split("/")):
        for candidate in (part, _SCOPE_SUFFIX.sub("", part)):
            if candidate in names:
                return candidate
    return None


def describe(ops, model) -> str:
    """``"Foo (layer 'a', 'b'), Bar (layer 'c')"`` for ``(op_type, op_name)`` pairs;
    an op whose name carries no layer scope is named alone."""
    names = layer_names(model)
    by_op: dict[str, list[str]] = {}
    for op_type, op_name in ops:
        layers = by_op.setdefault(op_type, [])
        layer = layer_of(op_name, names)
        if layer is not None and layer not in layers:
            layers.append(layer)
    parts = []
    for op_type, layers in sorted(by_op.items()):
        shown = ", ".join(repr(n) for n in layers[:3])
        more = f" and {len(layers) - 3} more" if len(layers) > 3 else ""
        parts.append(f"{op_type} (layer {shown}{more})" if layers else op_type)
    return ", ".join(parts)


def onnx_unknown_nodes(model_proto) -> list[tuple[str, str]]:
    """``(op_type, node name)`` of every node of ``model_proto`` that is not a
    standard ONNX op (what tf2onnx copies over from TF when it has no handler)."""
    from export.onnx_ops import unknown_ops
    bad = set(unknown_ops(model_proto))
    return [(n.op_type if not n.domain else f"{n.domain}::{n.op_type}", n.name)
            for n in model_proto.graph.node
            if (n.op_type if not n.domain else f"{n.domain}::{n.op_type}") in bad]


def tflite_error_ops(message: str) -> list[tuple[str, str]]:
    """``(op, TF op name)`` of each "'tf.Foo' op is neither a custom op nor a flex
    op" error line of the TFLite converter (the name from the line's location)."""
    ops = []
    for line in message.splitlines():
        op = _TFLITE_OP.search(line)
        if op and "neither a custom op nor a flex op" in line:
            loc = _TFLITE_LOC.search(line)
            ops.append((op.group(1).removeprefix("tf."), loc.group(1) if loc else ""))
    return ops


def tflite_custom_nodes(content: bytes, ops) -> list[tuple[str, str]]:
    """``(op, output tensor name)`` of each operator of the ``.tflite`` flatbuffer
    ``content`` that is one of the custom/Flex ``ops`` (the tensor keeps the TF name)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    codes = {}
    for i in range(model.OperatorCodesLength()):
        custom = model.OperatorCodes(i).CustomCode()
        codes[i] = custom.decode() if custom else None
    found = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            name = codes.get(op.OpcodeIndex())
            if name in ops and op.OutputsLength():
                found.append((name, graph.Tensors(op.Outputs(0)).Name().decode()))
    return found
