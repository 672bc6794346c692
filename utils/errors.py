"""The root of every typed error of this project, and the few errors shared by all packages.

Each package keeps its own classes (``models.errors``, ``data._errors``,
``training.errors``, ``export.errors``, ``evaluation.errors``,
``activations.errors``); every one of them subclasses :class:`ZooError`. That
is what the command lines (``utils.cli.run_cli``) and the isolated children of
``evaluation`` treat as *bad input* (one line, exit status 2). Anything else
raised by our code is a bug and is reported as an internal error (exit 1).

:class:`ZooError` is a ``ValueError`` so that callers (and tests) written
against ``except ValueError`` keep working.

This module imports nothing, so light processes (the isolated children of
``evaluation``, ``export.runtime`` without TensorFlow) can use it. That is also
why :class:`ModelLoadError` lives here: ``models`` (the ``.keras`` loader),
``export`` (the runtime loaders) and ``evaluation`` all raise or catch it, and
``models`` cannot be imported without TensorFlow. ``models.ModelLoadError`` and
``export.ModelLoadError`` are this class.
"""
from __future__ import annotations


class ZooError(ValueError):
    """Base class: the user asked for something that cannot be done; the message says
    what was wrong and how to fix it."""


class ModelLoadError(ZooError):
    """A file that cannot be loaded (safely) as a model of its kind: a ``.keras``
    archive, a SavedModel, an ONNX or a TFLite file."""


class UsageError(ZooError):
    """A command-line argument is missing or invalid (raised by ``utils.cli.ArgumentParser``)."""
