"""Plain multi-layer perceptrons, starting with the course's exam network.

Reference: course notes, exam question 2 ("Construct an ANN with 3 hidden
layers (5, 10, 10 neurons) ... 32 x 32 images, 1000 classes"): 1,024 inputs,
ReLU hidden layers, softmax output, 5,125 + 60 + 110 + 11,000 = 16,295
learnable parameters.
"""
from __future__ import annotations

import keras

from models import _layers
from models._registry import Family, register_model
from models.errors import ModelConfigError
from utils.checks import is_count, is_int
from utils.images import IMAGE_SHAPE


def _build(cfg: dict) -> keras.Model:
    inputs, x = _layers.input_and_flatten(cfg["input_shape"])
    init = _layers.initializer_for(cfg["activation"], cfg["initializer"])
    for i, units in enumerate(cfg["hidden_units"], start=1):
        x = keras.layers.Dense(units, kernel_initializer=init, name=f"hidden_{i}")(x)
        x = _layers.apply_activation(x, cfg["activation"], f"hidden_{i}_act")
    x = keras.layers.Dense(cfg["num_classes"], name="output")(x)
    x = _layers.apply_activation(x, cfg["output_activation"], "output_act")
    return keras.Model(inputs, x)


def _count_params(cfg: dict) -> int:
    # The course's rule, layer by layer: (inputs x outputs) + outputs.
    widths = [_layers.features(cfg["input_shape"]), *cfg["hidden_units"], cfg["num_classes"]]
    total = sum(_layers.dense_params(a, b) for a, b in zip(widths, widths[1:]))
    total += sum(_layers.activation_params(cfg["activation"], (u,)) for u in cfg["hidden_units"])
    return total + _layers.activation_params(cfg["output_activation"], (cfg["num_classes"],))


def _validate(cfg: dict) -> None:
    hidden = cfg["hidden_units"]
    if is_int(hidden):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        hidden = None
    if hidden is None or not all(is_count(u) for u in hidden):
        raise ModelConfigError(f"hidden_units must be a sequence of positive ints, e.g. (5, 10, 10). "
                               f"Received: hidden_units={cfg['hidden_units']!r}")
    cfg["hidden_units"] = hidden
    _layers.check_initializer(cfg)


MLP = Family(
    name="mlp",
    defaults=dict(
        input_shape=IMAGE_SHAPE,
        num_classes=1000,
        hidden_units=(5, 10, 10),
        activation="relu",            # course: ReLU in hidden layers
        output_activation="softmax",  # course: softmax for multi-class; None -> logits
        initializer="auto",
    ),
    build=_build,
    count_params=_count_params,
    validate=_validate,
    reference="Course notes, exam Q2: ANN for 32x32 images, 1000 classes (16,295 parameters)",
)


@register_model
def exam_mlp(**overrides):
    """The course's exam ANN: 1,024 inputs -> 5 -> 10 -> 10 -> 1,000 (16,295 params)."""
    return MLP.variant(overrides)
