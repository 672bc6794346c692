"""Converters to SavedModel and ONNX (one function each; TFLite is in
:mod:`export.tflite_convert`, TFLite Micro in :mod:`export.micro`).

Every converter starts from the same traced ``tf.function``
(:func:`export.graph.serving_function`), so the artifacts expose the same
signature, and each returns what it learned about the artifact (op list,
opset) for the manifest.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import utils.tf_quiet  # noqa: F401  (before keras: silences TF's start-up lines)

import keras

from export.errors import ExportError, UnsupportedOpsError
from export.graph import SIGNATURE_KEY, graph_convolutions, serving_function
from models.card import CARD_SIGNATURE
from utils.cli import filesystem_failure


# --------------------------------------------------------------- SavedModel
def to_saved_model(model, path, batch_size=None, card_text=None) -> dict:
    """Write a SavedModel with a ``serving_default`` signature to ``path``, and with
    ``card_text`` a ``model_card`` signature returning it (``export.metadata``)."""
    import tensorflow as tf

    serve, _ = serving_function(model, batch_size)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE_KEY, serve)
        if card_text is not None:
            archive.add_endpoint(CARD_SIGNATURE, tf.function(
                lambda: {CARD_SIGNATURE: tf.constant(card_text)}, input_signature=[]))
        with contextlib.redirect_stdout(None):
            archive.write_out(str(path), verbose=False)
    except Exception as exc:  # tracing errors surface as many TF/Keras types
        written = filesystem_failure(str(exc))  # TensorFlow's writers report no errno
        if written:
            raise ExportError(f"Writing the SavedModel failed: {written}.") from exc
        raise ExportError(f"SavedModel export failed while tracing the model: "
                          f"{' '.join(str(exc).split())[:400]}") from exc
    return {"signature": SIGNATURE_KEY}


# --------------------------------------------------------------- ONNX
def to_onnx(model, path, opset: int) -> dict:
    """Convert with tf2onnx at ``opset``; refuse graphs with non-ONNX nodes.

    Raises:
        UnsupportedOpsError: a TF op had no handler (listed by name).
        ExportError: ``onnx.checker`` (full check) rejects the model.
    """
    import onnx

    from export import onnx_ops, op_origin

    model, rewrites = graph_convolutions(model)
    serve, specs = serving_function(model)
    try:
        with quiet_logger("tf2onnx"):
            proto = _tf2onnx(serve, specs, opset)
    except Exception as exc:  # tf2onnx raises bare Exceptions and ValueErrors
        raise ExportError(f"ONNX conversion (tf2onnx, opset {opset}) failed: "
                          f"{' '.join(str(exc).split())[:400]}") from exc
    bad = onnx_ops.unknown_ops(proto)
    if bad:
        raise UnsupportedOpsError(
            f"tf2onnx (opset {opset}) has no ONNX conversion for TF op "
            f"{op_origin.describe(op_origin.onnx_unknown_nodes(proto), model)}.", bad)
    info = write_checked_onnx(proto, path, "the converted model")
    return dict(info, graph_rewrites=rewrites) if rewrites else info


def write_checked_onnx(proto, path, what: str) -> dict:
    """Write ``proto`` to ``path`` once ``onnx.checker`` (full check) accepts it.

    Returns:
        The manifest facts ``opset``, ``ir_version``, ``ops``.

    Raises:
        ExportError: the checker rejects it (``what`` names the model in the message).
    """
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"onnx.checker rejected {what}: "
                          f"{' '.join(str(exc).split())[:300]}") from exc
    Path(path).write_bytes(proto.SerializeToString())
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return {"opset": int(opset), "ir_version": int(proto.ir_version),
            "ops": sorted({n.op_type for n in proto.graph.node})}


def _tf2onnx(serve, specs, opset):
    """tf2onnx's ``from_function``, with the graph's inputs limited to the signature's.

    ``from_function`` makes every non-resource input of the concrete function an ONNX
    input, and that includes the constant tensors the function captures (the mean and
    variance of a ``Normalization`` layer built from values: EfficientNet's). Freezing
    turns those captures into constants, so only the signature's inputs remain.
    """
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader
    from tf2onnx.convert import from_graph_def, tensor_names_from_structed

    concrete = serve.get_concrete_function(*specs)
    if sum(t.dtype != tf.dtypes.resource for t in concrete.inputs) == len(specs):
        # Nothing but the signature would become an input: tf2onnx's own path.
        return tf2onnx.convert.from_function(serve, input_signature=specs, opset=opset)[0]
    inputs = [t.name for t in concrete.inputs[:len(specs)]]
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    renames = tensor_names_from_structed(concrete, inputs, outputs)
    with tf.device("/cpu:0"):
        frozen = tf_loader.from_function(concrete, inputs, outputs)
        proto, _ = from_graph_def(frozen, name=concrete.name, input_names=inputs,
                                  output_names=outputs, opset=opset, tensors_to_rename=renames)
    return proto


@contextlib.contextmanager
def quiet_logger(name):
    """Raise logger ``name`` ("" for the root logger) to ERROR for the block."""
    import logging
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
