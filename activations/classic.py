"""The classic activations of the course's first table: linear, binary step,
sigmoid, tanh, ReLU, and the softmax output layer."""
from __future__ import annotations

import keras
from keras import ops

from activations._base import ActivationLayer, check_int, check_number
from activations._registry import register_activation

_SERIALIZABLE = keras.saving.register_keras_serializable(package="activations")
_COURSE = "Course notes, 'Non-linear Activation Function' table"


def linear(x):
    """Identity: ``f(x) = x``."""
    return ops.convert_to_tensor(x)


def binary_step(x, threshold=0.0):
    """``1`` where ``x >= threshold``, else ``0`` (zero gradient everywhere)."""
    x = ops.convert_to_tensor(x)
    return ops.where(x >= threshold, ops.ones_like(x), ops.zeros_like(x))


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``; exactly 0 (not NaN) at -1000."""
    return ops.sigmoid(x)


def tanh(x):
    """Hyperbolic tangent."""
    return ops.tanh(x)


def relu(x):
    """``max(0, x)``."""
    return ops.relu(x)


def softmax(x, axis=-1):
    """``exp(x_i) / sum_j exp(x_j)`` along ``axis`` (max-shifted, so finite for large x)."""
    return ops.softmax(x, axis=axis)


@_SERIALIZABLE
@register_activation("linear", fn=linear, catalogue={
    "formula": r"f(x) = x",
    "derivative": r"f'(x) = 1",
    "range": r"(-\infty, \infty)",
    "zero_centered": True, "monotonic": True, "saturates": "no",
    "vanishing_gradient": False, "computation": "cheap",
    "typical_use": "regression outputs; logits fed to a loss with from_logits=True",
    "reference": _COURSE,
})
class Linear(ActivationLayer):
    """Identity activation layer."""

    def call(self, inputs):
        return linear(inputs)


@_SERIALIZABLE
@register_activation("binary_step", fn=binary_step, catalogue={
    "formula": r"f(x) = \begin{cases} 0 & x < \theta \\ 1 & x \geq \theta \end{cases}",
    "derivative": r"f'(x) = 0 \ (x \neq \theta), \text{ undefined at } x = \theta",
    "range": r"\{0, 1\}",
    "zero_centered": False, "monotonic": True, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "cheap",
    "typical_use": "perceptron-style threshold units; not trainable by gradient descent",
    "reference": _COURSE,
})
class BinaryStep(ActivationLayer):
    """Heaviside step: 1 where ``x >= threshold``, else 0.

    Args:
        threshold: the step position (default 0.0).
    """

    def __init__(self, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.threshold = check_number("threshold", threshold)

    def call(self, inputs):
        return binary_step(inputs, threshold=self.threshold)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@_SERIALIZABLE
@register_activation("sigmoid", fn=sigmoid, catalogue={
    "formula": r"f(x) = \sigma(x) = \frac{1}{1 + e^{-x}}",
    "derivative": r"f'(x) = f(x)\,(1 - f(x))",
    "range": r"(0, 1)",
    "zero_centered": False, "monotonic": True, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "expensive",
    "typical_use": "binary / multi-label output layer; gates; avoid in hidden layers",
    "reference": _COURSE + "; 'Summary' table",
})
class Sigmoid(ActivationLayer):
    """Logistic sigmoid layer."""

    def call(self, inputs):
        return sigmoid(inputs)


@_SERIALIZABLE
@register_activation("tanh", fn=tanh, catalogue={
    "formula": r"f(x) = \tanh(x) = \frac{e^x - e^{-x}}{e^x + e^{-x}}",
    "derivative": r"f'(x) = 1 - f(x)^2",
    "range": r"(-1, 1)",
    "zero_centered": True, "monotonic": True, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "expensive",
    "typical_use": "recurrent cells; zero-centred alternative to sigmoid in shallow nets",
    "reference": _COURSE + "; 'Summary' table",
})
class Tanh(ActivationLayer):
    """Hyperbolic tangent layer."""

    def call(self, inputs):
        return tanh(inputs)


@_SERIALIZABLE
@register_activation("relu", fn=relu, catalogue={
    "formula": r"f(x) = \max(0, x)",
    "derivative": r"f'(x) = \begin{cases} 0 & x < 0 \\ 1 & x > 0 \end{cases}",
    "range": r"[0, \infty)",
    "zero_centered": False, "monotonic": True, "saturates": "negative side",
    "vanishing_gradient": "less prone", "computation": "cheap",
    "typical_use": "default for hidden layers (CNNs, MLPs); beware dying neurons",
    "reference": "Nair & Hinton 2010; " + _COURSE + "; 'Summary' table",
})
class ReLU(ActivationLayer):
    """Rectified linear unit layer."""

    def call(self, inputs):
        return relu(inputs)


@_SERIALIZABLE
@register_activation("softmax", fn=softmax, catalogue={
    "formula": r"f(\vec{z})_i = \frac{e^{z_i}}{\sum_{j=1}^K e^{z_j}}",
    "derivative": r"\frac{\partial f_i}{\partial z_j} = f_i\,(\delta_{ij} - f_j)",
    "range": r"(0, 1), \sum_i f_i = 1",
    "zero_centered": False, "monotonic": False, "saturates": "both sides",
    "vanishing_gradient": True, "computation": "moderate",
    "typical_use": "multi-class (single-label) classification output layer",
    "reference": "Course notes, 'Softmax' section",
})
class Softmax(ActivationLayer):
    """Softmax over one axis.

    Args:
        axis: the axis that sums to one (default -1).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = check_int("axis", axis)

    def call(self, inputs):
        return softmax(inputs, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
