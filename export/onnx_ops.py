"""tf2onnx handlers for TensorFlow ops it leaves unconverted, and the opset choice.

tf2onnx 1.17 has no handler for ``Expm1`` (Keras' ``celu``, our ELU-family
layers), ``Erfc`` (Keras' exact ``gelu``), ``Log1p`` and a few other
element-wise ops; it then copies the TF node into the ONNX graph unchanged,
and ``onnx.checker`` / onnxruntime reject the model. Each handler below
rewrites such a node into standard ONNX ops, registered with tf2onnx's own
``tf_op`` decorator (a class whose ``version_N`` classmethods handle opset
>= N), so ``tf2onnx.convert`` picks them up once this module is imported.

The rewrites cost a little precision where the TF op exists to avoid
cancellation (``exp(x) - 1`` for tiny ``x``, ``1 - erf(x)`` for large
``x``); the absolute error stays at float32 rounding of the terms (~1e-7 for
|x| < 1), far inside the 1e-5 validation tolerance.
"""
from __future__ import annotations

import functools

import numpy as np

from tf2onnx import constants, utils
from tf2onnx.handler import tf_op

def _const(ctx, node, value, suffix):
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    return ctx.make_const(utils.make_name(f"{node.name}_{suffix}"),
                          np.array(value, dtype=dtype)).output[0]


def _unary_then_sub(ctx, node, op_type, one_minus):
    """Turn ``node`` into ``op_type(x)`` followed by ``y - 1`` or ``1 - y``."""
    node.type = op_type
    one = _const(ctx, node, 1.0, "one")
    out = node.output[0]
    ctx.insert_new_node_on_output("Sub", out, inputs=[one, out] if one_minus else [out, one],
                                  name=utils.make_name(node.name))


@tf_op("Expm1")
class Expm1:
    """expm1(x) -> Exp(x) - 1."""

    @classmethod
    def version_1(cls, ctx, node, **kwargs):
        _unary_then_sub(ctx, node, "Exp", one_minus=False)


@tf_op("Erfc")
class Erfc:
    """erfc(x) -> 1 - Erf(x)."""

    @classmethod
    def version_9(cls, ctx, node, **kwargs):  # Erf exists from opset 9
        _unary_then_sub(ctx, node, "Erf", one_minus=True)


@tf_op("Log1p")
class Log1p:
    """log1p(x) -> Log(1 + x)."""

    @classmethod
    def version_1(cls, ctx, node, **kwargs):
        one = _const(ctx, node, 1.0, "one")
        add = ctx.make_node("Add", [one, node.input[0]],
                            name=utils.make_name(node.name + "_add"))
        ctx.copy_shape(node.input[0], add.output[0])
        ctx.replace_inputs(node, [add.output[0]])
        node.type = "Log"


@tf_op("Xlogy")
class Xlogy:
    """xlogy(x, y) -> x * log(y), and 0 where x == 0 (as TF defines it)."""

    @classmethod
    def version_11(cls, ctx, node, **kwargs):  # float Equal needs opset 11
        x, y = node.input
        zero = _const(ctx, node, 0.0, "zero")
        log = ctx.make_node("Log", [y], name=utils.make_name(node.name + "_log"))
        mul = ctx.make_node("Mul", [x, log.output[0]],
                            name=utils.make_name(node.name + "_mul"))
        is_zero = ctx.make_node("Equal", [x, zero],
                                name=utils.make_name(node.name + "_eq"))
        ctx.replace_inputs(node, [is_zero.output[0], zero, mul.output[0]])
        node.type = "Where"


@functools.lru_cache(maxsize=None)
def onnxruntime_max_opset() -> int:
    """Newest ai.onnx opset the installed onnxruntime accepts.

    onnxruntime publishes no constant for it; loading a one-node model
    stamped with each opset is the direct test (fractions of a millisecond).
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    best = None
    for opset in range(7, onnx.defs.onnx_opset_version() + 5):
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])], "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8  # the oldest IR that every probed opset allows
        try:
            ort.InferenceSession(model.SerializeToString(),
                                 providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime raises its own Fail type
            break
        best = opset
    return best or 7


def tf2onnx_max_opset() -> int:
    """Newest opset tf2onnx maps (its opset -> IR version table)."""
    return max(constants.OPSET_TO_IR_VERSION)


def default_opset() -> int:
    """The newest opset that both tf2onnx and onnxruntime support."""
    return min(tf2onnx_max_opset(), onnxruntime_max_opset())


def unknown_ops(model_proto) -> list[str]:
    """Node types of ``model_proto`` that are not standard ONNX ops.

    tf2onnx copies an op it cannot convert into the graph under its TF name;
    such nodes make the model invalid for every ONNX runtime.
    """
    import onnx

    opsets = {o.domain: o.version for o in model_proto.opset_import}
    bad = set()
    for node in model_proto.graph.node:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx") or not onnx.defs.has(
                node.op_type, opsets.get(domain, 1), domain):
            bad.add(node.op_type if not node.domain else f"{node.domain}::{node.op_type}")
    return sorted(bad)
