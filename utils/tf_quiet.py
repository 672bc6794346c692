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
import os
import sys

from utils.stderr import silenced_stderr_fd


def import_tensorflow() -> None:
    """Import TensorFlow once, with fd 2 silenced for the duration of the import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with silenced_stderr_fd():
            import tensorflow  # noqa: F401


import_tensorflow()
