"""Typed errors of the evaluation package.

Every error is a ``utils.errors.ZooError`` (so ``ValueError``) subclass so the command line turns it into one
line on stderr and exit status 2 (``utils.cli.run_cli``); the message names the
bad value and how to fix it.
"""
from __future__ import annotations

from utils.errors import ZooError


class EvaluationError(ZooError):
    """Base class: something about the request cannot be evaluated."""


class ArtifactError(EvaluationError):
    """An artifact is missing, of an unknown kind, or not a valid file of its kind."""


class ArtifactCrashError(ArtifactError):
    """The runtime died (a signal, not a Python exception) while loading or running an artifact."""


class UnsafeArtifactError(ArtifactError):
    """A ``.keras`` file holds arbitrary Python code (a Lambda layer) and safe mode is on."""


class ShapeMismatchError(EvaluationError):
    """The artifact's input or output shape does not fit the dataset."""
