"""``quantize_aware(model)``: the same network with fake quantization where an
int8 runtime rounds (:mod:`models.quantizers`), ready to train a few more epochs.

The functional graph is rebuilt layer by layer:

* the model input gets a tracked activation quantizer;
* Dense / Conv2D become QuantDense / QuantConv2D (their weights copied, a
  following BatchNormalization folded in); a following ReLU (or a linear
  activation) is fused into them, as TFLite and onnxruntime fuse it;
* every tensor an int8 kernel requantizes gets a quantizer: the output of a
  Dense/Conv, an Add, an elementwise activation; tanh, sigmoid and softmax
  outputs get the ranges their int8 kernels fix; the logits feeding a softmax
  get the exporter's top-1-aware lower bound;
* Flatten, Reshape, Dropout and max pooling keep their input's range; average
  pooling rounds to it.

A layer with no int8 counterpart here (an LSTM, a custom layer) is refused,
named, with :class:`QuantizationError`. Every layer is a copy; weights and
states are copied, never drawn at random (resume stays exact).
"""
from __future__ import annotations

import keras
import numpy as np

from models.errors import ModelConfigError
from models.quantizers import (FIXED_RANGES, ActivationQuantizer, QuantConv2D, QuantDense,
                               RangeQuantizer, is_quantize_aware)

# Layers that move values without changing them: the range passes through.
_PASS_THROUGH = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Dropout,
                 keras.layers.MaxPooling2D, keras.layers.MaxPooling1D,
                 keras.layers.GlobalMaxPooling2D, keras.layers.Identity)
_AVERAGING = (keras.layers.AveragePooling2D, keras.layers.AveragePooling1D,
              keras.layers.GlobalAveragePooling2D, keras.layers.GlobalAveragePooling1D)
_KERNELS = (keras.layers.Dense, keras.layers.Conv2D)


class QuantizationError(ModelConfigError):
    """A model that cannot be made quantization-aware (the layer is named)."""


def activation_kind(layer) -> str | None:
    """What an activation layer computes, for quantization: "linear", "relu",
    "relu6", "tanh", "sigmoid", "softmax", "other" (an elementwise activation
    with a tracked output range), or None when ``layer`` is no activation."""
    import activations
    from activations._base import ActivationLayer

    if isinstance(layer, keras.layers.ReLU):
        if layer.negative_slope or layer.threshold:
            return "other"
        return "relu6" if layer.max_value == 6 else "relu" if layer.max_value is None else "other"
    if isinstance(layer, keras.layers.Activation):
        return _function_kind(layer.activation)
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    known = {activations.Linear: "linear", activations.ReLU: "relu", activations.Tanh: "tanh",
             activations.Sigmoid: "sigmoid", activations.Softmax: "softmax"}
    for cls, kind in known.items():
        if type(layer) is cls:
            return kind
    return "other" if isinstance(layer, ActivationLayer) else None


def _function_kind(fn) -> str:
    name = keras.activations.serialize(fn) if fn is not None else "linear"
    name = name if isinstance(name, str) else getattr(fn, "__name__", "other")
    return name if name in ("linear", "relu", "relu6", "tanh", "sigmoid", "softmax") else "other"


def _consumers(model) -> dict:
    """``id(layer) -> [layers consuming its output]``."""
    found: dict = {}
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            for t in node.input_tensors:
                producer = t._keras_history.operation
                found.setdefault(id(producer), []).append(node.operation)
    return found


def _folded_weights(layer, batch_norm):
    """Kernel and bias of ``layer`` with a following BatchNormalization folded in."""
    kernel = np.asarray(layer.kernel)
    bias = np.asarray(layer.bias) if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
    if batch_norm is None:
        return kernel, bias
    gamma = np.asarray(batch_norm.gamma) if batch_norm.scale else 1.0
    beta = np.asarray(batch_norm.beta) if batch_norm.center else 0.0
    factor = gamma / np.sqrt(np.asarray(batch_norm.moving_variance) + batch_norm.epsilon)
    return (kernel * factor).astype(np.float32), \
        ((bias - np.asarray(batch_norm.moving_mean)) * factor + beta).astype(np.float32)


def copy(layer, *args, **kwargs):
    """``layer``'s output for ``args`` through a copy of it (same config, same
    variable values, e.g. a Dropout's seed state): the QAT model shares no layer
    with the float model, so each layer's ``output`` stays unambiguous."""
    new = type(layer).from_config(layer.get_config())
    out = new(*args, **kwargs)
    for mine, theirs in zip(new.variables, layer.variables):
        mine.assign(theirs)
    return out


class _Rebuild:
    """One pass over the float graph; ``ranges`` maps new tensors to their [min, max]."""

    def __init__(self, model):
        self.model, self.consumers = model, _consumers(model)
        self.outputs = {id(t._keras_history.operation) for t in model.outputs}
        self.ranges: dict = {}
        self.folded: dict = {}  # id(BatchNormalization) -> the kernel layer it folds into

    def only_consumer(self, layer):
        users = self.consumers.get(id(layer), [])
        return users[0] if len(users) == 1 and id(layer) not in self.outputs else None

    def quantize(self, x, name, mode="ema", fixed=None):
        out, value_range = ActivationQuantizer(mode=mode, fixed_range=fixed, name=name)(x)
        self.ranges[id(out)] = value_range
        return out

    def kernel(self, layer, x):
        nxt = self.only_consumer(layer)
        batch_norm = nxt if isinstance(nxt, keras.layers.BatchNormalization) else None
        if batch_norm is not None:
            self.folded[id(batch_norm)] = layer
            nxt = self.only_consumer(batch_norm)
        own = _function_kind(layer.activation)
        then = activation_kind(nxt) if nxt is not None else None
        if own not in ("linear", "relu", "relu6") and own not in FIXED_RANGES:
            raise QuantizationError(f"Layer {layer.name!r} has activation {own!r} inside a "
                                    f"{type(layer).__name__}; move it into its own activation "
                                    "layer.")
        fused = own if own in ("relu", "relu6") else None
        if isinstance(layer, keras.layers.Dense):
            new = QuantDense(layer.units, activation=fused, name=layer.name)
        else:
            if layer.data_format != "channels_last" or layer.groups != 1:
                raise QuantizationError(f"Layer {layer.name!r} (Conv2D) needs data_format="
                                        "'channels_last' and groups=1 for int8 quantization.")
            new = QuantConv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                              padding=layer.padding, dilation_rate=layer.dilation_rate,
                              activation=fused, name=layer.name)
        y = new([x, self.ranges[id(x)]])
        new.set_weights(_folded_weights(layer, batch_norm))
        if own == "linear" and then in ("relu", "relu6"):
            return y  # the ReLU layer after it fuses, and quantizes its output
        if own in FIXED_RANGES:
            y = self.quantize(y, f"{layer.name}_pre", "logits" if own == "softmax" else "ema")
            y = keras.layers.Activation(own, name=f"{layer.name}_{own}")(y)
            return self.quantize(y, f"{layer.name}_quant", "fixed", FIXED_RANGES[own])
        return self.quantize(y, f"{layer.name}_quant", "logits" if then == "softmax" else "ema")

    def _mode(self, layer):
        nxt = self.only_consumer(layer)
        return "logits" if nxt is not None and activation_kind(nxt) == "softmax" else "ema"

    def activation(self, layer, kind, x):
        if id(x) not in self.ranges:  # fused into the kernel before it
            return self.quantize(copy(layer, x), f"{layer.name}_quant", self._mode(layer))
        y = copy(layer, x)
        if kind == "linear":
            self.ranges[id(y)] = self.ranges[id(x)]
            return y
        if kind in FIXED_RANGES:
            return self.quantize(y, f"{layer.name}_quant", "fixed", FIXED_RANGES[kind])
        return self.quantize(y, f"{layer.name}_quant")

    def __call__(self, layer):
        """The callable that replaces ``layer`` in the new graph."""
        kind = activation_kind(layer)
        if isinstance(layer, _KERNELS):
            return lambda x, **kw: self.kernel(layer, x)
        if isinstance(layer, keras.layers.BatchNormalization):
            if id(layer) not in self.folded:
                raise QuantizationError(f"Layer {layer.name!r} (BatchNormalization) does not "
                                        "follow a Dense or Conv2D it could be folded into.")
            return lambda x, **kw: x
        if kind is not None:
            return lambda x, **kw: self.activation(layer, kind, x)
        if isinstance(layer, keras.layers.Add):
            return lambda xs, **kw: self.quantize(copy(layer, xs), f"{layer.name}_quant",
                                                  self._mode(layer))
        if isinstance(layer, _PASS_THROUGH):
            return lambda x, **kw: self.passed(copy(layer, x, **kw), x)
        if isinstance(layer, _AVERAGING):
            return lambda x, **kw: self.passed(
                RangeQuantizer(name=f"{layer.name}_quant")([copy(layer, x),
                                                              self.ranges[id(x)]]), x)
        raise QuantizationError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has no int8 fake-quantized "
            "counterpart; quantization-aware training supports Dense, Conv2D, "
            "BatchNormalization (folded), Add, pooling, Flatten/Reshape/Dropout and "
            "activation layers. Replace it, or export this model with post-training int8.")

    def passed(self, y, x):
        self.ranges[id(y)] = self.ranges[id(x)]
        return y


def quantize_aware(model, sample=None) -> keras.Model:
    """The quantization-aware version of a functional or Sequential Keras model.

    Args:
        model: a built ``keras.Model`` made of Keras/registered layers.
        sample: optional float inputs ``[N, ...]``; one training-mode pass over
            them starts every tracked range at its min/max (else the first
            training batch does).

    Returns:
        A new ``keras.Model`` of the same name computing the fake-quantized
        function; it shares no layer with ``model``.

    Raises:
        QuantizationError: ``model`` is subclassed, already quantization-aware,
            or has a layer with no int8 counterpart (named).
    """
    from models.card import attach_card, has_card, model_card

    card = model_card(model) if has_card(model) else None  # the QAT model is the same model
    if is_quantize_aware(model):
        raise QuantizationError(f"Model {model.name!r} is already quantization-aware.")
    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    if not hasattr(model, "_nodes_by_depth") or len(getattr(model, "inputs", []) or []) != 1:
        raise QuantizationError(f"Model {model.name!r} is not a single-input functional or "
                                "Sequential model; quantization-aware training rebuilds the "
                                "layer graph, which a subclassed model does not expose.")
    rebuild = _Rebuild(model)
    inputs = keras.Input(model.inputs[0].shape[1:], name=model.inputs[0].name)
    quantized = rebuild.quantize(inputs, "input_quant")
    outputs = model._run_through_graph([quantized], operation_fn=rebuild)
    qat = keras.Model(inputs, outputs, name=model.name)
    if sample is not None:
        qat(np.asarray(sample, dtype=np.float32), training=True)
    if card is not None:
        attach_card(qat, card)
    return qat


# ------------------------------------------------------------ the training phase
# QAT fine-tunes the float weights: a constant learning rate at this fraction of
# the float run's (the rounding noise makes full-size steps overshoot).
QAT_LR_FACTOR = 0.3
# Training images whose min/max start the tracked ranges (the first ones of the split).
RANGE_SAMPLES = 256


def qat_optimizer(config, steps_per_epoch: int):
    """A fresh optimizer of the run's kind for the QAT epochs (constant learning rate)."""
    import dataclasses

    from .factories import make_optimizer
    qat_config = dataclasses.replace(config, lr=config.lr * QAT_LR_FACTOR,
                                     lr_schedule="constant")
    return make_optimizer(qat_config, steps_per_epoch)


def enter_qat(config, model, bundle, strategy, *, calibrate: bool):
    """``(QAT model, its optimizer)`` for the epochs after ``config.epochs``.

    ``calibrate``: start the ranges at the min/max of the first training images
    (False when a checkpoint restores them).
    """
    sample = bundle.head("train", RANGE_SAMPLES)[0] if calibrate else None
    with strategy.scope():
        qat = quantize_aware(model, sample=sample)
        optimizer = qat_optimizer(config, bundle.steps_per_epoch(config.batch_size))
        optimizer.build(qat.trainable_variables)
    return qat, optimizer


def resumed_phase(config, checkpoint_epochs: int, model, optimizer, bundle, strategy):
    """The model and optimizer a checkpoint after ``checkpoint_epochs`` epochs restores
    into: the QAT ones once it is past the float epochs."""
    if checkpoint_epochs > config.epochs and config.qat_epochs:
        return enter_qat(config, model, bundle, strategy, calibrate=False)
    return model, optimizer
