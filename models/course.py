"""The course's two worked feed-forward examples.

Reference: course notes, "feedforward" worked example: one sigmoid neuron
with w = [0, 1], b = 4 maps x = [2, 3] to f(7) = 0.999; the 2-2-1 network
with every neuron w = [0, 1], b = 0 gives h1 = h2 = f(3) = 0.9526 and
o1 = f(0.9526) = 0.7216.

``course_weights=True`` loads exactly those weights so the numbers can be
reproduced; otherwise the usual random initialisation is used.
"""
from __future__ import annotations

import keras
import numpy as np

from models import _layers
from models._registry import Family, register_model
from models.errors import ModelConfigError

_REFERENCE = "Course notes, feedforward worked example (x = [2, 3])"


def _outputs(cfg: dict) -> int:
    # Binary problems use one sigmoid unit, as in the course's pictures.
    return 1 if cfg["num_classes"] <= 2 else cfg["num_classes"]


def _validate(cfg: dict) -> None:
    if not isinstance(cfg["course_weights"], bool):
        raise ModelConfigError(f"course_weights must be True or False. "
                               f"Received: course_weights={cfg['course_weights']!r}")
    if cfg["course_weights"] and (cfg["input_shape"] != (2,) or _outputs(cfg) != 1):
        raise ModelConfigError(
            "course_weights=True needs the course's shapes: input_shape=(2,) and one output "
            f"(num_classes <= 2). Received: input_shape={cfg['input_shape']}, "
            f"num_classes={cfg['num_classes']}")


def _neuron(cfg: dict, x, units: int, activation, name: str):
    x = keras.layers.Dense(units, kernel_initializer=_layers.initializer_for(activation),
                           name=name)(x)
    return _layers.apply_activation(x, activation, f"{name}_act")


def _course_weights(layer: keras.layers.Layer, bias: float) -> None:
    # Every neuron of the layer gets w = [0, 1] and the given bias.
    kernel = np.zeros(layer.kernel.shape, np.float32)
    kernel[1, :] = 1.0
    layer.set_weights([kernel, np.full(layer.bias.shape, bias, np.float32)])


# --- neuron_2in --------------------------------------------------------------

def _build_neuron(cfg: dict) -> keras.Model:
    inputs, x = _layers.input_and_flatten(cfg["input_shape"])
    model = keras.Model(inputs, _neuron(cfg, x, _outputs(cfg), cfg["activation"], "neuron"))
    if cfg["course_weights"]:
        _course_weights(model.get_layer("neuron"), bias=4.0)
    return model


def _count_neuron(cfg: dict) -> int:
    units = _outputs(cfg)
    return (_layers.dense_params(_layers.features(cfg["input_shape"]), units)
            + _layers.activation_params(cfg["activation"], (units,)))


NEURON = Family(
    name="neuron",
    defaults=dict(input_shape=(2,), num_classes=2, activation="sigmoid", course_weights=False),
    build=_build_neuron,
    count_params=_count_neuron,
    validate=_validate,
    reference=_REFERENCE,
)


@register_model
def neuron_2in(**overrides):
    """One sigmoid neuron with two inputs (course: w=[0,1], b=4, x=[2,3] -> 0.999)."""
    return NEURON.variant(overrides)


# --- feedforward_2_2_1 -------------------------------------------------------

def _build_feedforward(cfg: dict) -> keras.Model:
    inputs, x = _layers.input_and_flatten(cfg["input_shape"])
    h = _neuron(cfg, x, 2, cfg["activation"], "hidden")
    o = _neuron(cfg, h, _outputs(cfg), cfg["output_activation"], "output")
    model = keras.Model(inputs, o)
    if cfg["course_weights"]:
        _course_weights(model.get_layer("hidden"), bias=0.0)
        _course_weights(model.get_layer("output"), bias=0.0)
    return model


def _count_feedforward(cfg: dict) -> int:
    units = _outputs(cfg)
    return (_layers.dense_params(_layers.features(cfg["input_shape"]), 2)
            + _layers.dense_params(2, units)
            + _layers.activation_params(cfg["activation"], (2,))
            + _layers.activation_params(cfg["output_activation"], (units,)))


FEEDFORWARD = Family(
    name="feedforward",
    defaults=dict(input_shape=(2,), num_classes=2, activation="sigmoid",
                  output_activation="sigmoid", course_weights=False),
    build=_build_feedforward,
    count_params=_count_feedforward,
    validate=_validate,
    reference=_REFERENCE,
)


@register_model
def feedforward_2_2_1(**overrides):
    """The course's 2-2-1 sigmoid network (all w=[0,1], b=0: h=0.9526, o1=0.7216)."""
    return FEEDFORWARD.variant(overrides)
