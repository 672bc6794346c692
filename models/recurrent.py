"""lstm_rows: an LSTM that reads an image one row at a time.

Reference: S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
Computation 9(8):1735-1780, 1997 (forget gate: Gers, Schmidhuber & Cummins,
"Learning to forget", Neural Computation 12(10), 2000). The course names the
LSTM as a cure for vanishing gradients: the cell state ``c`` is carried from
step to step through a sum, not a product of squashing derivatives.

A 32 x 32 image is a sequence of 32 rows of 32 pixels; after the last row the
hidden state ``h`` feeds a Dense layer with one score per class. Trained by
``train.py`` with backpropagation like any other classifier.

Per step (Keras' gate order i, f, g, o)::

    z = x_t W + h_{t-1} U + b;  i, f, g, o = split(z, 4)
    c_t = clip(sigmoid(f) c_{t-1} + sigmoid(i) tanh(g), -10, 10)
    h_t = sigmoid(o) tanh(c_t)

Export: the recurrence is one ``tf.function`` that carries the interface of a
Keras LSTM (``api_implements="lstm_..."``, arguments ``(x, h0, c0, kernel,
recurrent_kernel, bias)``, five results). TensorFlow Lite's converter replaces
such a function by its builtin ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op when the
batch size is static (``export.export_model(..., fixed_batch=1)``, the edge
setting); a dynamic batch has the rows unrolled instead (builtin ops, no Flex),
and training runs them as a loop that XLA compiles once. The fused kernel clips the
cell state at +-10, so the layer does the same and every artifact computes the
same function. The initial states are computed from the input (zeros) rather
than constants: the fused op keeps its state in variable tensors, and constant
initial states would carry one call's final state into the next call.
"""
from __future__ import annotations

import keras
import numpy as np

from models import _layers
from models._registry import Family, register_model
from models.errors import ModelConfigError
from utils.images import IMAGE_SHAPE

CELL_CLIP = 10.0  # TFLite's fused LSTM kernel clips the cell state at +-10
_SERIALIZABLE = keras.saving.register_keras_serializable(package="models")


# --- building block ----------------------------------------------------------

def _step(x, h, c, kernel, recurrent_kernel, bias):
    """One LSTM step (gate order i, f, g, o); the cell state clipped like TFLite's."""
    import tensorflow as tf

    i, f, g, o = tf.split(tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias, 4, axis=1)
    c = tf.clip_by_value(tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g), -CELL_CLIP, CELL_CLIP)
    return tf.sigmoid(o) * tf.tanh(c), c


def _loop(inputs, h, c, *weights):
    """Training: the rows as a loop, which XLA compiles once (the unrolled rows took
    over a minute, and the gradient of the fused function recompiled at every step)."""
    import tensorflow as tf

    rows = tf.transpose(inputs, (1, 0, 2))
    steps = inputs.shape[1]
    _, h, c = tf.while_loop(lambda t, h, c: t < steps,
                            lambda t, h, c: (t + 1, *_step(rows[t], h, c, *weights)),
                            (0, h, c), maximum_iterations=steps)  # static trip count for XLA
    return h


def _unrolled(inputs, h, c, *weights):
    """Inference and export: the rows unrolled. TFLite's int8 calibrator crashed
    (segfault) on a loop that reads the input rows; unrolled rows convert."""
    import tensorflow as tf

    for x in tf.unstack(inputs, axis=1):
        h, c = _step(x, h, c, *weights)
    return h


def _keras_lstm(inputs, h0, c0, kernel, recurrent_kernel, bias):
    """The Keras-LSTM interface: (last h, all h, h, c, runtime). Only the last h is
    used; TFLite's fusion replaces the whole body and the rest is pruned."""
    import tensorflow as tf

    h = _unrolled(inputs, h0, c0, kernel, recurrent_kernel, bias)
    # Placeholders of the right shapes for the unused results (sequence, c).
    sequence = tf.zeros(tf.concat([tf.shape(inputs)[:2], tf.shape(h)[1:]], 0), h.dtype)
    return h, sequence, h, tf.zeros_like(h), tf.constant(0.0)


_FUSED: dict = {}


def _fused_lstm(key: tuple):
    """The Keras-LSTM function for one layer shape ``key`` (steps, features, units).

    One function per shape: a SavedModel that holds traces of one function for two
    sequence lengths dispatched the wrong one when TFLite converted it.
    """
    if key not in _FUSED:
        import tensorflow as tf
        _FUSED[key] = tf.function(_keras_lstm, autograph=False, experimental_attributes={
            # The converter fuses functions whose api_implements starts with "lstm_".
            "api_implements": "lstm_rows_{}x{}x{}".format(*key),
            "api_preferred_device": "CPU", "time_major": False, "go_backwards": False})
    return _FUSED[key]


@_SERIALIZABLE
class RowLSTM(keras.layers.Layer):
    """LSTM over the rows of ``[batch, rows, *row_shape]``; returns the last ``h``.

    Args:
        units: size of the hidden and cell state.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.tanh  # read by models.audit

    def build(self, input_shape):
        steps, features = _sequence_shape(tuple(input_shape[1:]))
        self.steps, self.features = steps, features
        n = self.units
        self.kernel = self.add_weight(shape=(features, 4 * n), initializer="glorot_uniform",
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(n, 4 * n), initializer="orthogonal",
                                                name="recurrent_kernel")
        # unit_forget_bias (Jozefowicz et al. 2015): the forget gate starts open.
        bias = np.zeros(4 * n, np.float32)
        bias[n:2 * n] = 1.0
        self.bias = self.add_weight(shape=(4 * n,), name="bias",
                                    initializer=keras.initializers.Constant(bias))

    def call(self, x, training=None):
        import tensorflow as tf

        x = tf.reshape(x, (-1, self.steps, self.features))
        weights = (tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.recurrent_kernel),
                   tf.convert_to_tensor(self.bias))
        if x.shape[0] is None or training:
            zeros = tf.zeros(tf.stack([tf.shape(x)[0], self.units]), x.dtype)
            return (_loop if training else _unrolled)(x, zeros, zeros, *weights)
        # A static batch (eager calls, export with fixed_batch): the fusable function,
        # with two separate zero states computed from the input (module docstring).
        h0 = tf.tile(x[:, 0, :1] * 0.0, [1, self.units])
        c0 = tf.tile(x[:, -1, :1] * 0.0, [1, self.units])
        return _fused_lstm((self.steps, self.features, self.units))(x, h0, c0, *weights)[0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def audit_formula(self):
        n, f = self.units, self.features
        total = 4 * ((f + n) * n + n)
        return (f"4 x (({f} + {n}) x {n} + {n}) = {total:,}",
                "four gates (input, forget, cell, output), each (inputs + units) x units + bias")

    def audit_macs(self):
        # Each of the `steps` rows: input and state times the four gates' matrices.
        return self.steps * (self.features + self.units) * 4 * self.units

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _sequence_shape(shape: tuple) -> tuple[int, int]:
    """(steps, features per step): rows of an image, or one feature per step for 1-D."""
    if len(shape) == 1:
        return shape[0], 1
    return shape[0], int(np.prod(shape[1:]))


# --- model -------------------------------------------------------------------

def _build(cfg: dict) -> keras.Model:
    inputs = keras.Input(cfg["input_shape"], name="input")
    x = RowLSTM(cfg["units"], name="lstm")(inputs)
    x = keras.layers.Dense(cfg["num_classes"], name="output")(x)
    return keras.Model(inputs, _layers.apply_activation(x, cfg["output_activation"], "output_act"))


def _count_params(cfg: dict) -> int:
    _, features = _sequence_shape(cfg["input_shape"])
    n, classes = cfg["units"], cfg["num_classes"]
    return (4 * ((features + n) * n + n) + _layers.dense_params(n, classes)
            + _layers.activation_params(cfg["output_activation"], (classes,)))


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "units")
    if cfg["input_shape"][0] < 2:
        raise ModelConfigError(f"lstm_rows reads the input one row at a time and needs at "
                               f"least 2 rows. Received: input_shape={cfg['input_shape']}")


LSTM_ROWS = Family(
    name="lstm_rows",
    defaults=dict(
        input_shape=IMAGE_SHAPE,
        num_classes=10,
        units=64,
        output_activation="softmax",
    ),
    build=_build,
    count_params=_count_params,
    validate=_validate,
    reference="Hochreiter & Schmidhuber, 'Long short-term memory', Neural Computation 9(8), 1997",
)


@register_model
def lstm_rows(**overrides):
    """LSTM reading a 32x32 image row by row (64 units), then one score per class."""
    return LSTM_ROWS.variant(overrides)
