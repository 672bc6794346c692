"""The activation registry: one dict, filled by ``@register_activation``."""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Callable

import keras

from activations.errors import ActivationParameterError, UnknownActivationError  # noqa: F401
from utils.names import did_you_mean


@dataclass(frozen=True)
class ActivationEntry:
    name: str
    layer_cls: type            # keras.layers.Layer subclass
    fn: Callable               # plain functional form fn(x, **params)
    catalogue: dict = field(default_factory=dict)


_REGISTRY: dict[str, ActivationEntry] = {}


def register_activation(name: str, *, fn: Callable, catalogue: dict | None = None):
    """Class decorator: register a Keras layer class as activation ``name``.

    A duplicate name is an error (unlike timm, which only warns).
    """
    def wrap(cls):
        if name in _REGISTRY:
            raise ValueError(f"Activation {name!r} is already registered "
                             f"(by {_REGISTRY[name].layer_cls.__name__}).")
        _REGISTRY[name] = ActivationEntry(name, cls, fn, dict(catalogue or {}))
        return cls
    return wrap


def _entry(name) -> ActivationEntry:
    if not isinstance(name, str):
        raise UnknownActivationError(
            f"Activation name must be a string. Received: name={name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownActivationError(
            f"Unknown activation {name!r}.{did_you_mean(name, _REGISTRY)} "
            f"See activations.list_activations() for all {len(_REGISTRY)} names."
        ) from None


def list_activations(pattern: str = "*") -> list[str]:
    """Sorted names of registered activations matching an fnmatch ``pattern``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get(name, /, **params) -> keras.layers.Layer:
    """Return a new layer instance of activation ``name`` with ``params``.

    ``name`` may also be an existing layer (returned as is, no params allowed).
    It is positional-only so that ``get("relu", name="act1")`` names the layer.

    Raises:
        UnknownActivationError: ``name`` is not registered (closest matches named).
        ActivationParameterError: a parameter is unknown or has an invalid value.
    """
    if isinstance(name, keras.layers.Layer):
        if params:
            raise ActivationParameterError(
                f"Parameters cannot be applied to an existing layer. Received: {params}")
        return name
    entry = _entry(name)
    accepted = list(parameters(name))
    for key in params:
        if key not in accepted and key not in ("name", "dtype"):
            raise ActivationParameterError(
                f"Unknown parameter {key!r} for activation {name!r} "
                f"(accepted: {', '.join(accepted) or 'none'}). Received: {key}={params[key]!r}")
    return entry.layer_cls(**params)


def get_function(name: str) -> Callable:
    """Return the plain functional form ``fn(x, **params)`` of activation ``name``."""
    return _entry(name).fn


def parameters(name: str) -> dict:
    """Parameter names of activation ``name`` mapped to their defaults."""
    signature = inspect.signature(_entry(name).layer_cls.__init__)
    return {p.name: p.default for p in signature.parameters.values()
            if p.name not in ("self", "kwargs", "args")}


def describe(name: str) -> dict:
    """Catalogue entry of activation ``name``.

    Returns:
        dict with ``name``, ``layer`` (class name), ``parameters`` (defaults,
        read from the layer's signature so they cannot drift), and the
        catalogue keys ``formula``, ``derivative`` (LaTeX), ``range``,
        ``zero_centered``, ``monotonic``, ``saturates``,
        ``vanishing_gradient``, ``computation``, ``typical_use``, ``reference``.

    Raises:
        UnknownActivationError: ``name`` is not registered.
    """
    entry = _entry(name)
    return {"name": entry.name, "layer": entry.layer_cls.__name__,
            "parameters": parameters(name), **entry.catalogue}
