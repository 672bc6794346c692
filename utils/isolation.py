"""Run a function in a child Python process so a crash there cannot kill the caller.

The one child-process runner of the project (``evaluation`` runs artifacts
with it, ``export.bench`` its per-thread-count timings). TFLite's interpreter
does not verify the flatbuffer it is given and ONNX Runtime / TensorFlow run
native code on whatever a file says: a crafted or bit-flipped artifact can end
the process with SIGSEGV. ``call_isolated`` runs ``module:function`` in a
fresh interpreter (``python -m utils._child``, the equivalent of
multiprocessing's "spawn": nothing of the parent is inherited) and turns every
way that child can end into either its return value or one exception:

* returned normally         -> the function's JSON-able return value;
* raised bad input          -> re-raised here with the child's message (the
  rule of ``utils.cli.is_user_error``): a typed error of ours keeps its class
  when it takes just a message, anything else becomes ``user_error``;
* raised anything else      -> :class:`ChildError` carrying the traceback (a bug);
* killed by a signal, or exited without a result, or timed out
                            -> ``crash_error`` naming the signal or the last stderr line.

Large arrays do not travel through the pipe: the function reads and writes
``.npy`` files named in its payload, and reports progress (an integer) through
a dedicated pipe so it can never interleave with a runtime's own output.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from utils.errors import ZooError

_ROOT = Path(__file__).resolve().parent.parent


class ChildError(RuntimeError):
    """The child raised an exception that is not a user error (a bug): carries its traceback."""


class ChildCrashError(ZooError):
    """The child died (a signal, no result, or out of time) instead of returning or raising."""


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def call_isolated(target: str, payload: dict, *, on_progress: Callable[[int], None] | None = None,
                  what: str = "the child process", crash_hint: str = "",
                  timeout: float | None = None, env: dict | None = None,
                  user_error: type[ZooError] = ZooError,
                  crash_error: type[ZooError] = ChildCrashError) -> dict:
    """Call ``target(payload, report_progress)`` in a child process and return its result.

    Args:
        target: ``"package.module:function"``; the function takes the payload
            dict and a ``report_progress(int)`` callable and returns a JSON-able dict.
        payload: JSON-able arguments (paths, numbers, strings).
        on_progress: called in this process with each integer the child reports.
        what: how to name the thing being run in error messages ("artifact 'm.tflite'").
        crash_hint: appended to the crash message ("the file is corrupt or not a valid ...").
        timeout: seconds before the child is killed (None: no limit).
        env: extra environment variables for the child (thread counts, ...).
        user_error: the class a user error of the child becomes when its own
            class cannot be rebuilt here (an ``OSError``, a class with more arguments).
        crash_error: the class of a crash (signal, no result, timeout).

    Returns:
        The dict the target returned.

    Raises:
        crash_error: the child died from a signal, exited without a result or timed out.
        ZooError: the target raised a user error (its own class, or ``user_error``).
        ChildError: the target raised anything else (the child's traceback is attached).
    """
    with tempfile.TemporaryDirectory(prefix="evaluate-child-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({"target": target, "payload": payload}))
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, **(env or {}))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        env.setdefault("KERAS_BACKEND", "tensorflow")
        # The child's stderr goes to a file (a pipe nobody drains could block it);
        # its last line explains an exit that left no result.
        with open(Path(tmp) / "stderr.txt", "w+b") as err:
            try:
                proc = subprocess.Popen(
                    # -P: the caller's working directory is not put on sys.path, so a
                    # folder there named like one of our packages cannot shadow it.
                    [sys.executable, "-P", "-m", "utils._child", str(request), str(result),
                     str(write_fd)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    pass_fds=(write_fd,), env=env)
            except BaseException:
                os.close(read_fd)
                raise
            finally:
                os.close(write_fd)
            reader = threading.Thread(target=_pump_progress, args=(read_fd, on_progress),
                                      daemon=True)
            reader.start()
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise crash_error(
                    f"{what} did not finish within {timeout:g} s and was stopped.") from None
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                reader.join()
            err.seek(0)
            stderr_tail = [line for line in err.read().decode("utf-8", "replace").splitlines()
                           if line.strip()]
        if returncode < 0:
            raise crash_error(
                f"{what} crashed its runtime ({signal_name(-returncode)}, signal {-returncode})"
                + (f": {crash_hint}" if crash_hint else ""))
        if not result.exists():
            last = stderr_tail[-1] if stderr_tail else "no output"
            raise crash_error(
                f"{what} ended its runtime with exit status {returncode} and no result ({last})"
                + (f": {crash_hint}" if crash_hint else ""))
        answer = json.loads(result.read_text())
    if "error" in answer:
        error = answer["error"]
        if error["user_error"]:
            raise _rebuild(error, user_error)
        raise ChildError(f"{what} failed with {error['type']}: {error['message']}\n"
                         f"{error['traceback']}")
    return answer["result"]


def _rebuild(error: dict, default: type[ZooError]) -> ZooError:
    """The child's typed error as the same class here, when it takes just a message."""
    try:
        cls = getattr(importlib.import_module(error.get("module", "")), error["type"])
    except (ImportError, AttributeError, ValueError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, ZooError)
            and cls.__init__ is ValueError.__init__):
        cls = default
    return cls(error["message"])


def _pump_progress(fd: int, on_progress) -> None:
    with os.fdopen(fd, "r") as stream:
        for line in stream:
            if on_progress is not None and line.strip().isdigit():
                on_progress(int(line))
