"""The one place where library errors become a one-line message and exit 2."""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

# Errors that mean "the user asked for something wrong": one line, exit 2.
USER_ERRORS = (ValueError, TypeError, KeyError, OSError, ImportError)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def run_cli(main: Callable[[Sequence[str] | None], int | None],
            argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``main(argv)``; turn known errors into ``prog: error: ...`` + exit 2."""
    prog = prog or os.path.basename(sys.argv[0])
    quiet_tensorflow()
    import utils.tf_quiet  # noqa: F401  (TensorFlow's own start-up lines bypass its log level)
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the reader left: not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except USER_ERRORS as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        msg = lines[0] if lines else type(exc).__name__
        if msg.endswith(":") and len(lines) > 1:
            # Traced TensorFlow errors open with "in user code:"; the cause is last.
            msg = lines[-1]
        if isinstance(exc, KeyError):
            msg = msg.strip("'\"")
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
