"""Typed errors of the activations package (``utils.errors.ZooError`` subclasses, so the
command lines turn them into one line and exit status 2)."""
from __future__ import annotations

from utils.errors import ZooError


class ActivationError(ZooError):
    """Base class: an activation request that cannot be carried out."""


class UnknownActivationError(ActivationError):
    """Raised for a name that is not in the registry."""


class ActivationParameterError(ActivationError):
    """Raised for an unknown or invalid activation parameter."""
