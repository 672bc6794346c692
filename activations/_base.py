"""Shared pieces of every activation layer: the base class and argument checks."""
from __future__ import annotations

import math
import numbers

import keras

from activations._registry import ActivationParameterError


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


def check_number(name: str, value, *, minimum: float | None = None,
                 strict: bool = False) -> float:
    """Return ``value`` as a float after checking it is a finite real number.

    Args:
        name: parameter name used in the error message.
        value: the received value.
        minimum: lower bound (inclusive unless ``strict``); None for no bound.
        strict: require ``value > minimum`` instead of ``>=``.

    Raises:
        ActivationParameterError: not a finite number, or below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)):
        raise ActivationParameterError(
            f"`{name}` must be a finite number. Received: {name}={value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        bound = ">" if strict else ">="
        raise ActivationParameterError(
            f"`{name}` must be {bound} {minimum}. Received: {name}={value!r}")
    return float(value)


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
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ActivationParameterError(
            f"`{name}` must be an integer. Received: {name}={value!r}")
    return int(value)
