"""Import TensorFlow without its C++ start-up chatter on stderr.

TensorFlow's CUDA stub logs "Could not find cuda drivers..." and an absl
warning straight to file descriptor 2 while the shared library loads, before
``TF_CPP_MIN_LOG_LEVEL`` is consulted. On a CPU machine these lines are
noise that breaks the "one line on stderr" promise of our command lines, so
the first import of TensorFlow runs with fd 2 pointed at /dev/null. Python
exceptions are unaffected: they propagate after stderr is restored.

Import this module before anything that imports keras or tensorflow.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

if "tensorflow" not in sys.modules and os.environ.get("ZOO_TF_VERBOSE") != "1":
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    _saved = os.dup(2)
    _null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(_null, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(_saved, 2)
        os.close(_saved)
        os.close(_null)
