"""LeNet-5, the classic small CNN for 32 x 32 grey images.

Reference: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based
learning applied to document recognition", Proc. IEEE 86(11), 1998.

C1 conv 6@5x5 -> S2 pool 2x2 -> C3 conv 16@5x5 -> S4 pool 2x2 -> F5 120 ->
F6 84 -> classes. Simplifications, as in most modern re-implementations: C3
connects to all six S2 maps (the paper used a sparse table), pooling has no
trainable coefficients, and the output is a Dense layer instead of RBF units.
"""
from __future__ import annotations

import keras

from models import _layers
from models._registry import Family, register_model
from models.errors import ModelConfigError
from utils.images import IMAGE_SHAPE

_KERNEL = 5
_FILTERS = (6, 16)
_DENSE = (120, 84)


def _feature_shape(shape: tuple) -> tuple:
    """(H, W, C) after the two valid 5x5 convolutions and 2x2 poolings."""
    h, w = shape[0], shape[1]
    for _ in _FILTERS:
        h, w = (h - _KERNEL + 1) // 2, (w - _KERNEL + 1) // 2
    return h, w, _FILTERS[-1]


def _validate(cfg: dict) -> None:
    shape = cfg["input_shape"]
    if len(shape) != 3 or min(_feature_shape(shape)[:2]) < 1:
        raise ModelConfigError(
            "lenet5 needs an image input_shape (height, width, channels) of at least "
            f"16 x 16, e.g. {IMAGE_SHAPE}. Received: input_shape={shape}")
    if cfg["pooling"] not in ("avg", "max"):
        raise ModelConfigError(f"pooling must be 'avg' (LeCun's subsampling) or 'max'. "
                               f"Received: pooling={cfg['pooling']!r}")
    _layers.check_initializer(cfg)


def _build(cfg: dict) -> keras.Model:
    act = cfg["activation"]
    init = _layers.initializer_for(act, cfg["initializer"])
    pool = keras.layers.AveragePooling2D if cfg["pooling"] == "avg" else keras.layers.MaxPooling2D
    inputs = keras.Input(cfg["input_shape"], name="input")
    x = inputs
    for i, filters in enumerate(_FILTERS, start=1):
        x = keras.layers.Conv2D(filters, _KERNEL, kernel_initializer=init, name=f"conv_{i}")(x)
        x = _layers.apply_activation(x, act, f"conv_{i}_act")
        x = pool(2, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(_DENSE, start=1):
        x = keras.layers.Dense(units, kernel_initializer=init, name=f"dense_{i}")(x)
        x = _layers.apply_activation(x, act, f"dense_{i}_act")
    x = keras.layers.Dense(cfg["num_classes"], name="output")(x)
    x = _layers.apply_activation(x, cfg["output_activation"], "output_act")
    return keras.Model(inputs, x)


def _count_params(cfg: dict) -> int:
    act = cfg["activation"]
    h, w, c = cfg["input_shape"]
    total = 0
    for filters in _FILTERS:
        # (k x k x C_in x C_out) + C_out, then the activation on the conv output.
        total += _KERNEL * _KERNEL * c * filters + filters
        h, w, c = h - _KERNEL + 1, w - _KERNEL + 1, filters
        total += _layers.activation_params(act, (h, w, c))
        h, w = h // 2, w // 2
    widths = [h * w * c, *_DENSE]
    for n_in, n_out in zip(widths, widths[1:]):
        total += _layers.dense_params(n_in, n_out) + _layers.activation_params(act, (n_out,))
    total += _layers.dense_params(widths[-1], cfg["num_classes"])
    return total + _layers.activation_params(cfg["output_activation"], (cfg["num_classes"],))


LENET = Family(
    name="lenet",
    defaults=dict(
        input_shape=IMAGE_SHAPE,
        num_classes=10,
        activation="tanh",           # LeCun used a scaled tanh
        output_activation="softmax",
        pooling="avg",               # the paper's subsampling layers average
        initializer="auto",
    ),
    build=_build,
    count_params=_count_params,
    validate=_validate,
    reference="LeCun et al., 'Gradient-based learning applied to document recognition', 1998",
)


@register_model
def lenet5(**overrides):
    """LeNet-5 for 32x32x1: conv 6@5x5, pool, conv 16@5x5, pool, 120, 84, classes."""
    return LENET.variant(overrides)
