"""Small pieces shared by every family: config checks and activation layers.

Activations always come from the ``activations`` package (``activations.get``)
so every model uses the same registered, serialisable layers; a Keras layer
instance is accepted too and cloned per use (a shared PReLU would otherwise
share its slopes between layers).
"""
from __future__ import annotations

import math
from typing import Any

import keras

import activations
from models.errors import ModelConfigError
from utils.checks import is_int, is_count
from utils.images import IMAGE_SHAPE


def _err(message: str) -> ModelConfigError:
    return ModelConfigError(message)


def validate_common(config: dict) -> dict:
    """Check the keys every family shares; return a normalised copy.

    ``input_shape`` becomes a tuple of positive ints, ``num_classes`` (where the
    family has one) a positive int, activations are checked to exist (unknown names raise the
    activations package's own error with its closest matches).
    """
    config = dict(config)
    shape = config["input_shape"]
    if is_int(shape):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise _err(f"input_shape must be a tuple of positive ints, e.g. {IMAGE_SHAPE}. "
                   f"Received: input_shape={shape!r}") from None
    if not shape or not all(is_count(d) for d in shape):
        raise _err(f"input_shape must be a non-empty tuple of positive ints, e.g. {IMAGE_SHAPE}. "
                   f"Received: input_shape={config['input_shape']!r}")
    config["input_shape"] = tuple(int(d) for d in shape)
    if "num_classes" in config:  # memory nets (Hopfield, BAM, ...) have no classes
        positive_int(config, "num_classes")
    for key in ("activation", "output_activation"):
        if key in config:
            check_activation(config[key], key, allow_none=(key == "output_activation"))
    return config


def positive_int(config: dict, key: str, minimum: int = 1) -> None:
    """Raise ``ModelConfigError`` unless ``config[key]`` is an int >= ``minimum``."""
    value = config[key]
    if not is_count(value, minimum):
        raise _err(f"{key} must be an integer >= {minimum}. Received: {key}={value!r}")


def check_activation(value, key: str = "activation", allow_none: bool = False) -> None:
    """Raise unless ``value`` is a registered activation name or a Keras layer."""
    if value is None and allow_none:
        return
    if isinstance(value, keras.layers.Layer):
        return
    if not isinstance(value, str):
        raise _err(f"{key} must be an activation name from activations.list_activations() "
                   f"or a keras Layer{' or None' if allow_none else ''}. Received: {key}={value!r}")
    activations.get(value)  # raises UnknownActivationError (a ValueError) with close matches


def activation_layer(value, name: str) -> keras.layers.Layer | None:
    """A fresh activation layer named ``name`` for ``value`` (None -> None)."""
    if value is None:
        return None
    # activations.get's first parameter is itself called ``name``, so the
    # layer name is set by re-creating the layer from its config.
    layer = value if isinstance(value, keras.layers.Layer) else activations.get(value)
    return type(layer).from_config({**layer.get_config(), "name": name})


def apply_activation(x, value, name: str):
    """Apply activation ``value`` to tensor ``x`` (identity when None)."""
    layer = activation_layer(value, name)
    return x if layer is None else layer(x)


def activation_name(value) -> str | None:
    """Registry name of an activation given as name, layer or None."""
    if value is None or isinstance(value, str):
        return value
    by_class = {activations.describe(n).get("layer"): n for n in activations.list_activations()}
    return by_class.get(type(value).__name__, type(value).__name__.lower())


def activation_params(value, shape: tuple) -> int:
    """Weights an activation layer holds for per-example ``shape`` (PReLU slopes).

    Only the small activation layer is built, never the model.
    """
    layer = activation_layer(value, "probe")
    if layer is None:
        return 0
    layer.build((None, *shape))
    return int(layer.count_params())


# Initialisers matched to the activation, so deep stacks start with unit
# variance: He for the ReLU family (half the units are zero), LeCun for SELU
# (its self-normalising fixed point assumes it), Glorot for the saturating
# sigmoid/tanh (and anything else).
_HE = {"relu", "relu6", "leaky_relu", "prelu", "elu", "gelu", "swish", "silu",
       "mish", "hard_swish", "hard_silu", "softplus", "celu", "rrelu"}
_LECUN = {"selu"}


def initializer_for(activation, initializer: str = "auto") -> str:
    """Keras initializer name for ``activation`` when ``initializer == "auto"``."""
    if initializer != "auto":
        return initializer
    name = activation_name(activation) or "linear"
    if name in _LECUN:
        return "lecun_normal"
    if name in _HE:
        return "he_normal"
    return "glorot_uniform"


def check_initializer(config: dict, key: str = "initializer") -> None:
    """Raise unless ``config[key]`` is "auto" or a name Keras knows."""
    value = config[key]
    if value == "auto":
        return
    try:
        keras.initializers.get(value)
    except (ValueError, TypeError):
        raise _err(f"{key} must be 'auto' or a keras initializer name such as 'he_normal'. "
                   f"Received: {key}={value!r}") from None


def input_and_flatten(shape: tuple):
    """``(inputs, x)``: the model input and, for image-like shapes, its flat view."""
    inputs = keras.Input(shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(shape) > 1 else inputs
    return inputs, x


def features(shape: tuple) -> int:
    """Number of input features after flattening ``shape``."""
    return math.prod(shape)


def dense_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """Parameters of a Dense layer: ``n_in * n_out (+ n_out)``."""
    return n_in * n_out + (n_out if bias else 0)


def plain(value: Any):
    """JSON-friendly form of a config value (tuples -> lists, layers -> names)."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, keras.layers.Layer):
        return activation_name(value)
    return value
