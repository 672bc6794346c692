"""Evaluation's use of the one child-process runner (``utils.isolation``).

An artifact that crashes its runtime raises :class:`ArtifactCrashError`; a user
error in the child that is not one of our typed classes (a missing file, ...)
becomes :class:`ArtifactError`; a bug in the child is a ``ChildError``.
"""
from __future__ import annotations

import functools

from utils.isolation import ChildError, call_isolated as _call_isolated

from .errors import ArtifactCrashError, ArtifactError

call_isolated = functools.partial(_call_isolated, user_error=ArtifactError,
                                  crash_error=ArtifactCrashError)
call_isolated.__doc__ = _call_isolated.__doc__

__all__ = ["call_isolated", "ChildError"]
