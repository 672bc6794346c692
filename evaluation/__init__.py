"""Evaluation of trained models and exported artifacts on the same data, side by side.

``evaluate(["model.keras", "exports/exam"], dataset="digits")`` scores every
artifact with the same numpy metrics (``evaluation.metrics``), running each
non-Keras artifact in an isolated child process so a runtime crash on a
corrupt file becomes an :class:`ArtifactCrashError`, not a dead caller.
Importing this package is cheap: TensorFlow and the runtimes load only when an
artifact of theirs is run. See docs/evaluation.md.
"""
from .artifacts import Artifact, resolve
from .core import ArtifactResult, EvaluationResult, evaluate
from .errors import (ArtifactCrashError, ArtifactError, EvaluationError, ShapeMismatchError,
                     UnsafeArtifactError)

__all__ = ["evaluate", "EvaluationResult", "ArtifactResult", "Artifact", "resolve",
           "EvaluationError", "ArtifactError", "ArtifactCrashError", "UnsafeArtifactError",
           "ShapeMismatchError"]
