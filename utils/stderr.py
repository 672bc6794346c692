"""Keep native libraries' informational lines off stderr (fd 2)."""
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
