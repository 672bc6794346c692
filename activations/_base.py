"""Shared pieces of every activation layer: the base class and argument checks."""
from __future__ import annotations

import functools

import keras

from activations._registry import ActivationParameterError
from utils import checks


class ActivationLayer(keras.layers.Layer):
    """Base class of the zoo's layers: element-wise (or per-axis), shape-preserving.

    Subclasses implement ``call`` with their functional form and list their
    parameters in an explicit ``get_config``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


#: A finite real number, optionally bounded; raises ActivationParameterError.
check_number = functools.partial(checks.check_number, error=ActivationParameterError)


def check_bool(name: str, value) -> bool:
    """Return ``value`` after checking it is a bool (not a truthy stand-in).

    Raises:
        ActivationParameterError: ``value`` is not a bool.
    """
    if not isinstance(value, bool):
        raise ActivationParameterError(
            f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def check_int(name: str, value) -> int:
    """Return ``value`` after checking it is an int (not a bool).

    Raises:
        ActivationParameterError: ``value`` is not an int.
    """
    if not checks.is_int(value):
        raise ActivationParameterError(
            f"`{name}` must be an integer. Received: {name}={value!r}")
    return int(value)
