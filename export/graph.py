"""Graph preparation for export: the traced serving signature every
converter starts from, and the export-only rewrites (``strip_softmax``,
``static_flatten``) that change the graph but not the function.

The serving function has inputs ``input`` / ``input_<i>`` and outputs
``output_<i>``, so every artifact exposes the same signature.
"""
from __future__ import annotations

import math

import utils.tf_quiet  # noqa: F401  (before keras: silences TF's start-up lines)

import keras

from export.errors import ExportError

SIGNATURE_KEY = "serving_default"


# ----------------------------------------------------------- graph preparation
def _output_layers(model) -> set:
    layers = set()
    for t in keras.tree.flatten(model.outputs):
        history = getattr(t, "_keras_history", None)
        if history is not None:
            layers.add(id(history[0]))
    return layers


def _softmax_layer_types() -> tuple:
    types = [keras.layers.Softmax]
    try:
        import activations
        types.append(activations.Softmax)
    except (ImportError, AttributeError):
        pass
    return tuple(types)


def _is_softmax(layer) -> bool:
    if isinstance(layer, _softmax_layer_types()):
        return True
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None) == "softmax" or act == "softmax"


def _clone(model, clone_function):
    try:
        return keras.models.clone_model(model, clone_function=clone_function)
    except Exception:  # subclassed models have no graph to rewrite
        return None


def strip_softmax(model):
    """Return ``model`` with a final softmax removed (logits out), or raise.

    Softmax is monotonic, so top-1 is unchanged; on int8 TFLite a 1,000-way
    softmax is one of the slowest ops and its output scale (1/256) wastes the
    int8 range on near-zero probabilities.

    Raises:
        ExportError: no output ends in a softmax, or the model is subclassed.
    """
    outs = _output_layers(model)
    changed = []

    def fn(layer):
        if id(layer) not in outs or not _is_softmax(layer):
            return layer
        changed.append(layer.name)
        if isinstance(layer, _softmax_layer_types() + (keras.layers.Activation,)):
            return keras.layers.Identity(name=layer.name)
        config = dict(layer.get_config(), activation="linear")
        new = type(layer).from_config(config)
        new.build(layer.input.shape)
        new.set_weights(layer.get_weights())
        return new

    clone = _clone(model, fn)
    if clone is None or not changed:
        raise ExportError(
            "logits_only=True needs a functional or Sequential model whose output "
            "layer ends in a softmax; none was found. Received model "
            f"{model.name!r} (output layers end in no softmax, or it is subclassed).")
    return clone


class StaticFlatten(keras.layers.Layer):
    """Export-only Flatten: ``reshape(x, [-1, units])``.

    Keras' Flatten reshapes to ``[shape(x)[0], -1]``, which TFLite computes
    with SHAPE/STRIDED_SLICE/PACK ops at run time; a static target shape
    needs none. Never saved to ``.keras`` (so not registered).
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def call(self, x):
        return keras.ops.reshape(x, (-1, self.units))

    def compute_output_shape(self, shape):
        return (shape[0], self.units)


def static_flatten(model):
    """Replace each Flatten of known input size by a static reshape.

    Returns:
        ``(model, rewrites)``: the rewritten clone (sharing weights with
        ``model``) and a list of what changed; ``(model, [])`` when nothing
        applies or the model is subclassed.
    """
    rewrites = []

    def fn(layer):
        if isinstance(layer, keras.layers.Flatten):
            dims = list(layer.input.shape[1:])
            if dims and all(d is not None for d in dims):
                rewrites.append(f"{layer.name}: Flatten -> Reshape([-1, {math.prod(dims)}])")
                return StaticFlatten(math.prod(dims), name=layer.name)
        return layer

    if not any(isinstance(l, keras.layers.Flatten) for l in model.layers):
        return model, []
    clone = _clone(model, fn)
    return (clone, rewrites) if clone is not None else (model, [])


class GraphConv(keras.layers.Layer):
    """Export-only grouped convolution as one plain ``Conv2D`` op of the graph.

    Keras runs a grouped convolution (``groups > 1``, ConvNeXt's depthwise
    ``Conv2D``) inside a nested ``tf.function(jit_compile=True)``, because
    TensorFlow's CPU kernel lacks it; tf2onnx cannot inline that XLA call and
    leaves it unconverted. This layer shares the original layer's weights and
    traces ``tf.nn.conv2d`` directly, which ONNX's grouped ``Conv`` expresses.
    Never run by TensorFlow on CPU and never saved (so not registered).
    """

    def __init__(self, conv, **kwargs):
        super().__init__(**kwargs)
        self.conv = conv

    def call(self, x):
        import tensorflow as tf

        c = self.conv
        y = tf.nn.conv2d(x, c.kernel, strides=[1, *c.strides, 1], padding=c.padding.upper(),
                         dilations=[1, *c.dilation_rate, 1])
        if c.use_bias:
            y = y + c.bias
        return c.activation(y)

    def compute_output_shape(self, shape):
        return self.conv.compute_output_shape(shape)


def graph_convolutions(model):
    """Replace each grouped channels-last ``Conv2D`` by :class:`GraphConv`.

    Returns:
        ``(model, rewrites)`` as :func:`static_flatten` does.
    """
    rewrites = []

    def grouped(layer):
        return (type(layer) is keras.layers.Conv2D and layer.groups > 1
                and layer.data_format == "channels_last")

    def fn(layer):
        if grouped(layer):
            rewrites.append(f"{layer.name}: grouped Conv2D (groups={layer.groups}) -> one "
                            "graph Conv2D op (no nested XLA call)")
            return GraphConv(layer, name=layer.name)
        return layer

    if not any(grouped(l) for l in model._flatten_layers(include_self=False)):
        return model, []
    clone = _clone(model, fn)
    return (clone, rewrites) if clone is not None else (model, [])


# --------------------------------------------------------------- signature
def input_names(model) -> list[str]:
    n = len(model.inputs)
    return ["input"] if n == 1 else [f"input_{i}" for i in range(n)]


def serving_function(model, batch_size=None):
    """The traced serving function: ``input*`` tensors -> ``{"output_<i>": ...}``."""
    import tensorflow as tf

    specs = []
    for name, t in zip(input_names(model), model.inputs):
        specs.append(tf.TensorSpec([batch_size] + list(t.shape[1:]), t.dtype, name=name))

    @tf.function(input_signature=specs, autograph=False)
    def serve(*xs):
        out = model(xs[0] if len(xs) == 1 else list(xs), training=False)
        return {f"output_{i}": o for i, o in enumerate(keras.tree.flatten(out))}

    return serve, specs
