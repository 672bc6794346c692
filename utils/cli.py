"""The one place where errors become what a command line prints and its exit status.

The policy:

* bad input -- a typed error of ours (:class:`utils.errors.ZooError`) or an
  ``OSError`` about a path (missing file, no permission, disk full) -- is one
  line ``PROG: error: ...`` on stderr and exit status 2;
* anything else is a bug of ours: one line ``PROG: internal error: ...`` and
  exit status 1; ``ZOO_DEBUG=1`` in the environment adds the traceback.

:class:`ArgumentParser` makes argparse follow the same rule (one line plus
"see PROG --help" instead of the usage block), and every command line uses it.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import traceback
from typing import Callable, Sequence

from utils.errors import UsageError, ZooError

BAD_INPUT_EXIT, INTERNAL_ERROR_EXIT = 2, 1
# A command that published part of what it was asked for (``python -m export``: the
# validated artifacts, the refused ones listed in the manifest): a script must notice.
PARTIAL_EXIT = 3
DEBUG_ENV = "ZOO_DEBUG"

# OSError subclasses and errno values that are about a path the user gave (or the
# disk behind it), not about our code: an unwritable or full --out is bad input.
_PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
                NotADirectoryError)
_PATH_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EEXIST, errno.EISDIR,
                errno.ENOTDIR, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG,
                errno.ENOTEMPTY, errno.ELOOP, errno.EFBIG, errno.EXDEV}
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
FULL_HINT = " (the output location is full: free space there or choose another one)"


def filesystem_failure(text: str) -> str | None:
    """The file-system error a third-party message reports without an errno
    (TensorFlow's writers: "...; File too large [Op:SaveV2]"), with the hint
    :func:`error_line` gives an ``OSError``; None when it names none."""
    for code in sorted(_PATH_ERRNOS):
        if os.strerror(code) in text:
            return os.strerror(code) + (FULL_HINT if code in _FULL_ERRNOS else "")
    return None


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` means "bad input" (exit 2) rather than a bug of ours (exit 1).

    True for our typed errors (``ZooError`` subclasses) and for an ``OSError``
    about a path: one of the file-system subclasses, or one carrying a file
    name or a file-system errno (``ENOSPC``, ``EROFS``, ...). Connection errors,
    timeouts and everything else are bugs.
    """
    if isinstance(exc, ZooError):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError, BlockingIOError, ChildProcessError)):
        return False
    if isinstance(exc, OSError):
        return (isinstance(exc, _PATH_ERRORS) or exc.filename is not None
                or exc.errno in _PATH_ERRNOS)
    return False


def error_line(exc: BaseException) -> str:
    """The one line that stands for ``exc``: the message's first line.

    Traced TensorFlow errors open with "in user code:"; their cause is the last
    line. ``OSError`` loses its ``[Errno N]`` prefix; ``KeyError`` its quotes.
    """
    if isinstance(exc, OSError) and exc.strerror:
        msg = exc.strerror + (f": {exc.filename}" if exc.filename is not None else "")
        if exc.filename2 is not None:
            msg += f" -> {exc.filename2}"
        if exc.errno in _FULL_ERRNOS:
            msg += FULL_HINT
        return msg
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    msg = lines[0] if lines else type(exc).__name__
    if msg.endswith(":") and len(lines) > 1:
        msg = lines[-1]
    if isinstance(exc, KeyError):
        msg = msg.strip("'\"")
    return msg


EXIT_STATUS_HELP = (f"exit status: 0 done; {BAD_INPUT_EXIT} bad input (one line on stderr); "
                    f"{INTERNAL_ERROR_EXIT} internal error, a bug in this tool ({DEBUG_ENV}=1 "
                    "prints the traceback).")


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors follow the bad-input rule.

    A missing or invalid argument raises :class:`utils.errors.UsageError`
    ("... (see PROG --help)"), which ``run_cli`` prints as one line with exit
    status 2, instead of argparse's usage block. Subcommand parsers made with
    ``add_subparsers`` are of this class too (argparse's default). Without an
    epilog of its own, ``--help`` ends with :data:`EXIT_STATUS_HELP`.
    """

    def __init__(self, *args, **kwargs):
        if kwargs.get("epilog") is None:
            kwargs["epilog"] = EXIT_STATUS_HELP
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def key_value(text: str) -> tuple[str, object]:
    """argparse ``type=`` for ``KEY=VALUE`` options (``--model-arg``, ``--set``, ...).

    ``"depth=6"`` -> ``("depth", 6)``: the value is JSON where it parses
    (numbers, true/false/null, lists), else the plain string.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, received {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def run_cli(main: Callable[[Sequence[str] | None], int | None],
            argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``main(argv)`` and turn what it raises into a message and an exit status.

    Returns:
        ``main``'s status (0 when it returns None); 2 for bad input
        (:func:`is_user_error`), 1 for an internal error, 130 on Ctrl-C.
    """
    prog = prog or os.path.basename(sys.argv[0])
    quiet_tensorflow()
    import utils.tf_quiet  # noqa: F401  (TensorFlow's start-up lines bypass its log level; imported when needed)
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
    except Exception as exc:  # noqa: BLE001 - the policy below decides
        if is_user_error(exc):
            print(f"{prog}: error: {error_line(exc)}", file=sys.stderr)
            return BAD_INPUT_EXIT
        if os.environ.get(DEBUG_ENV) == "1":
            traceback.print_exc()
            hint = "please report it with the traceback above"
        else:
            hint = f"rerun with {DEBUG_ENV}=1 for the traceback and report it"
        print(f"{prog}: internal error: {type(exc).__name__}: {error_line(exc)} "
              f"(a bug in this tool, not in your input; {hint})", file=sys.stderr)
        return INTERNAL_ERROR_EXIT
