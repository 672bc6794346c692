"""Fake-quantization layers: Keras layers that compute in float what an int8
runtime (LiteRT, onnxruntime, TFLite Micro) computes in integers, so that a
model can be trained quantization-aware (``training.quantize_aware``).

The arithmetic simulated is the one the converters emit:

* weights: int8, symmetric, per output channel, ``scale = max|w| / 127``
  (levels -127..127, as TFLite and onnxruntime's per-channel weights);
* activations: int8, asymmetric, per tensor; the range ``[min, max]`` always
  holds 0 and gives ``scale = (max - min) / 255`` and a zero point that puts 0
  on the grid (``tf.quantization.fake_quant_with_min_max_vars``' nudging, which
  the TFLite converter reads from the same op);
* the bias: int32 at ``scale = input_scale * weight_scale``;
* Dense/Conv + ReLU/ReLU6 fused: the ReLU clamps the accumulator and only its
  output is quantized (TFLite's fused activation, onnxruntime's Relu folded into
  the output QuantizeLinear);
* fixed output ranges where the kernels fix them: tanh 1/128 (zero point 0),
  sigmoid and softmax 1/256 (zero point -128);
* the logits feeding a softmax get the exporter's top-1-aware lower bound
  (``export.calibration``): ``m - LOGIT_MARGIN * (M - m)``.

Ranges are tracked as an exponential moving average of each training batch's
range (non-trainable variables, so checkpoints and ``.keras`` files keep
them). Gradients are straight-through inside the range (the fake-quant op's own
gradient). Every layer is registered (package ``models``), so a QAT model
reloads with ``keras.saving.load_model(path, safe_mode=True)``.

Export: :func:`freeze` bakes each layer's quantized weights, int32-rounded
bias and ranges into constants, so the traced graph carries float weights that
lie exactly on their int8 grid and ``FakeQuantWithMinMaxVars`` ops with
constant ranges: the TFLite converter quantizes from those ranges without
calibrating (``export.qat``).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")

# Fraction of the winners' logit span kept below the least confident winner;
# the one value both the exporter's calibration and the logits quantizer use.
LOGIT_MARGIN = 0.5
# Ranges of the outputs whose int8 kernels fix them (scale 1/128 or 1/256).
FIXED_RANGES = {"tanh": (-1.0, 127.0 / 128.0), "sigmoid": (0.0, 255.0 / 256.0),
                "softmax": (0.0, 255.0 / 256.0)}
MODES = ("ema", "logits", "fixed")
FUSED_ACTIVATIONS = (None, "relu", "relu6")
_STEPS = 255.0  # int8 activation levels - 1


def quantize_weights(kernel):
    """``(fake-quantized kernel, per-channel scale)``: symmetric int8 over the last axis."""
    axes = tuple(range(len(kernel.shape) - 1))
    bound = ops.maximum(ops.stop_gradient(ops.max(ops.abs(kernel), axis=axes)), 1e-8)
    quantized = keras.quantizers.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=8, narrow_range=True, axis=-1)
    return quantized, bound / 127.0


def quantize_bias(bias, input_range, weight_scale):
    """The bias rounded to its int32 grid (``input_scale * weight_scale``), straight through."""
    scale = ops.stop_gradient((input_range[1] - input_range[0]) / _STEPS * weight_scale)
    rounded = ops.round(bias / scale) * scale
    return bias + ops.stop_gradient(rounded - bias)


def _activate(x, activation):
    if activation == "relu":
        return ops.relu(x)
    if activation == "relu6":
        return ops.relu6(x)
    return x


class _Frozen:
    """Mixin: constants baked by :func:`freeze` replace the computed values in traces."""

    def _freeze_values(self, values: dict) -> None:
        self._frozen = {k: np.asarray(v, dtype=np.float32) for k, v in values.items()
                        if v is not None}

    def _frozen_or(self, name):
        frozen = getattr(self, "_frozen", None)
        return None if frozen is None or name not in frozen else \
            ops.convert_to_tensor(frozen[name])


@_SERIALIZABLE
class ActivationQuantizer(_Frozen, keras.layers.Layer):
    """Per-tensor asymmetric int8 fake quantization of an activation.

    Returns ``[quantized x, range]`` where ``range`` is the ``[min, max]``
    pair used (shape ``(2,)``), which the consumers that need the input scale
    (the int32 bias, average pooling) take as a second input.

    Args:
        mode: "ema" (batch min/max, averaged), "logits" (batch max and the
            top-1-aware lower bound, averaged) or "fixed" (``fixed_range``).
        fixed_range: ``(min, max)`` for mode "fixed".
        momentum: weight of the old range in the moving average.
    """

    def __init__(self, mode="ema", fixed_range=None, momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}. Received: mode={mode!r}")
        if (mode == "fixed") != (fixed_range is not None):
            raise ValueError("fixed_range is given exactly when mode='fixed'. Received: "
                             f"mode={mode!r}, fixed_range={fixed_range!r}")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1). Received: momentum={momentum!r}")
        self.mode, self.momentum = mode, float(momentum)
        self.fixed_range = None if fixed_range is None else tuple(float(v) for v in fixed_range)

    def build(self, input_shape):
        if self.mode != "fixed":
            zeros = keras.initializers.Zeros()
            self.range_min = self.add_weight(name="range_min", shape=(), initializer=zeros,
                                             trainable=False)
            self.range_max = self.add_weight(name="range_max", shape=(), initializer=zeros,
                                             trainable=False)
            self.initialized = self.add_weight(name="initialized", shape=(),
                                               initializer=zeros, trainable=False)

    def _batch_range(self, x):
        x = ops.stop_gradient(ops.cast(x, "float32"))
        top = ops.max(x)
        if self.mode == "logits" and x.shape[-1] is not None and x.shape[-1] >= 3:
            flat = ops.reshape(x, (-1, x.shape[-1]))
            least = ops.min(ops.max(flat, axis=-1))
            low = ops.maximum(ops.min(x), least - LOGIT_MARGIN * (top - least))
        else:
            low = ops.min(x)
        return ops.minimum(low, 0.0), ops.maximum(top, 0.0)

    def current_range(self, x=None, training=False):
        """``(min, max)`` tensors: tracked (updated from ``x`` when training) or fixed."""
        frozen = self._frozen_or("range")
        if frozen is not None:
            return frozen[0], frozen[1]
        if self.mode == "fixed":
            return ops.convert_to_tensor(self.fixed_range[0]), \
                ops.convert_to_tensor(self.fixed_range[1])
        if training and x is not None:
            low, high = self._batch_range(x)
            seen = self.initialized > 0
            m = self.momentum
            low = ops.where(seen, m * self.range_min + (1 - m) * low, low)
            high = ops.where(seen, m * self.range_max + (1 - m) * high, high)
            self.range_min.assign(low)
            self.range_max.assign(high)
            self.initialized.assign(1.0)
            return low, high
        return ops.cast(self.range_min, "float32"), ops.cast(self.range_max, "float32")

    def call(self, x, training=False):
        low, high = self.current_range(x, training)
        high = ops.maximum(high, low + 1e-6)  # an all-zero tensor still needs a range
        out = keras.quantizers.fake_quant_with_min_max_vars(x, low, high, num_bits=8)
        return [out, ops.stack([low, high])]

    def compute_output_spec(self, x, training=False):
        return [keras.KerasTensor(x.shape, x.dtype), keras.KerasTensor((2,), "float32")]

    def freeze(self):
        low, high = self.current_range()
        self._freeze_values({"range": [float(low), max(float(high), float(low) + 1e-6)]})

    def get_config(self):
        return {**super().get_config(), "mode": self.mode,
                "fixed_range": None if self.fixed_range is None else list(self.fixed_range),
                "momentum": self.momentum}


@_SERIALIZABLE
class RangeQuantizer(keras.layers.Layer):
    """Fake quantization of ``x`` at another tensor's range: ``[x, range] -> x``.

    For the ops whose int8 kernels keep their input's scale and round
    (average pooling): the output lies on the input's grid.
    """

    def call(self, inputs):
        x, value_range = inputs
        return keras.quantizers.fake_quant_with_min_max_vars(x, value_range[0], value_range[1],
                                                             num_bits=8)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, inputs[0].dtype)


class _QuantizedKernel(_Frozen, keras.layers.Layer):
    """Shared part of QuantDense / QuantConv2D: ``[x, input range] -> act(x * Wq + bq)``."""

    def __init__(self, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if activation not in FUSED_ACTIVATIONS:
            raise ValueError(f"activation must be one of {FUSED_ACTIVATIONS} (the ones int8 "
                             f"kernels fuse). Received: activation={activation!r}")
        self.activation, self.use_bias = activation, bool(use_bias)

    def _weights(self, value_range):
        kernel = self._frozen_or("kernel")
        if kernel is not None:
            return kernel, self._frozen_or("bias")
        kernel, scale = quantize_weights(self.kernel)
        bias = quantize_bias(self.bias, value_range, scale) if self.use_bias else None
        return kernel, bias

    def call(self, inputs):
        x, value_range = inputs
        kernel, bias = self._weights(value_range)
        y = self._apply(x, kernel)
        if bias is not None:
            y = y + bias
        return _activate(y, self.activation)

    def freeze_with(self, value_range) -> None:
        """Bake the quantized kernel and bias for the input range ``value_range``."""
        self._frozen = None
        kernel, bias = self._weights(ops.convert_to_tensor(value_range))
        self._freeze_values({"kernel": kernel, "bias": bias})

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "use_bias": self.use_bias}


@_SERIALIZABLE
class QuantDense(_QuantizedKernel):
    """Dense with int8 per-channel weights, an int32 bias and a fused ReLU/ReLU6."""

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.units = int(units)

    def build(self, input_shape):
        zeros = keras.initializers.Zeros()  # the float model's weights are copied in
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[0][-1], self.units),
                                      initializer=zeros)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer=zeros)

    def _apply(self, x, kernel):
        return ops.matmul(x, kernel)

    def compute_output_spec(self, inputs):
        x = inputs[0]
        return keras.KerasTensor(tuple(x.shape[:-1]) + (self.units,), x.dtype)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@_SERIALIZABLE
class QuantConv2D(_QuantizedKernel):
    """Conv2D (channels last) with int8 per-channel weights, an int32 bias, fused ReLU."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 dilation_rate=(1, 1), activation=None, use_bias=True, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.dilation_rate = tuple(int(d) for d in dilation_rate)
        self.padding = padding

    def build(self, input_shape):
        zeros = keras.initializers.Zeros()
        shape = self.kernel_size + (input_shape[0][-1], self.filters)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=zeros)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=zeros)

    def _apply(self, x, kernel):
        return ops.conv(x, kernel, strides=self.strides, padding=self.padding,
                        dilation_rate=self.dilation_rate)

    def compute_output_spec(self, inputs):
        x = inputs[0]
        spec = keras.layers.Conv2D(self.filters, self.kernel_size, strides=self.strides,
                                   padding=self.padding, dilation_rate=self.dilation_rate)
        return keras.KerasTensor(spec.compute_output_shape(x.shape), x.dtype)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate)}


QUANTIZER_LAYERS = (ActivationQuantizer, RangeQuantizer, QuantDense, QuantConv2D)


def is_quantize_aware(model) -> bool:
    """True when ``model`` holds fake-quantization layers (a QAT model)."""
    return any(isinstance(layer, QUANTIZER_LAYERS) for layer in getattr(model, "layers", ()))


def freeze(model) -> None:
    """Bake every quantizer's range and every quantized layer's int8 kernel and
    int32 bias into constants (export: the traced graph then reads no variable
    through a fake-quant op). The values are those of ``model(x, training=False)``.
    """
    quantized = [layer for layer in model.layers if isinstance(layer, _QuantizedKernel)]
    for layer in model.layers:
        if isinstance(layer, ActivationQuantizer):
            layer.freeze()
    for layer in quantized:
        producer = layer._inbound_nodes[0].input_tensors[1]._keras_history.operation
        layer.freeze_with(producer._frozen["range"])
