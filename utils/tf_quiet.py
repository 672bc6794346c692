"""Import TensorFlow without its C++ start-up chatter on stderr.

TensorFlow's CUDA stub logs "Could not find cuda drivers..." and an absl
warning straight to file descriptor 2 while the shared library loads, before
``TF_CPP_MIN_LOG_LEVEL`` is consulted. On a CPU machine these lines are
noise that breaks the "one line on stderr" promise of our command lines, so
the first import of TensorFlow runs with fd 2 pointed at /dev/null. Python
exceptions are unaffected: they propagate after stderr is restored.

Importing this module does the quiet import (packages that need keras import
it first); ``import_tensorflow()`` does it on demand for lazy callers.
Every command line goes through ``utils.cli.run_cli``, which imports it.
Set ``ZOO_TF_VERBOSE=1`` to see TensorFlow's start-up lines.
"""
import contextlib
import os
import sys


@contextlib.contextmanager
def silenced_stderr_fd():
    """Point file descriptor 2 at /dev/null for the block (C++ chatter only).

    Python-level errors still propagate with their messages; use this only
    around native calls that report failures through exceptions too (the
    TFLite converter's and interpreter's informational lines).
    """
    if os.environ.get("ZOO_TF_VERBOSE") == "1":
        yield
        return
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def import_tensorflow() -> None:
    """Import TensorFlow once, with fd 2 silenced for the duration of the import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with silenced_stderr_fd():
            import tensorflow  # noqa: F401


import_tensorflow()
