"""Run a function in a child Python process so a runtime crash cannot kill the caller.

TFLite's interpreter does not verify the flatbuffer it is given and ONNX
Runtime / TensorFlow run native code on whatever a file says: a crafted or
bit-flipped artifact can end the process with SIGSEGV. ``call_isolated`` runs
``module:function`` in a fresh interpreter (``python -m evaluation._child``,
the equivalent of multiprocessing's "spawn": nothing of the parent is
inherited) and turns every way that child can end into either its return
value or one typed exception:

* returned normally         -> the function's JSON-able return value;
* raised a user error       -> re-raised here with the child's message: our
  own error classes keep their class, other ``ValueError``/``OSError``/...
  become :class:`ArtifactError` (the CLI prints one line and exits 2);
* raised anything else      -> :class:`ChildError` carrying the traceback (a bug);
* killed by a signal        -> :class:`ArtifactCrashError` naming the signal.

Large arrays do not travel through the pipe: the function reads and writes
``.npy`` files named in its payload, and reports progress (an integer) through
a dedicated pipe so it can never interleave with a runtime's own output.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from . import errors
from .errors import ArtifactCrashError, ArtifactError, EvaluationError

_ROOT = Path(__file__).resolve().parent.parent


class ChildError(RuntimeError):
    """The child raised an exception that is not a user error (a bug): carries its traceback."""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def call_isolated(target: str, payload: dict, *, on_progress: Callable[[int], None] | None = None,
                  what: str = "the child process", crash_hint: str = "",
                  timeout: float | None = None) -> dict:
    """Call ``target(payload, report_progress)`` in a child process and return its result.

    Args:
        target: ``"package.module:function"``; the function takes the payload
            dict and a ``report_progress(int)`` callable and returns a JSON-able dict.
        payload: JSON-able arguments (paths, numbers, strings).
        on_progress: called in this process with each integer the child reports.
        what: how to name the thing being run in error messages ("artifact 'm.tflite'").
        crash_hint: appended to the crash message ("the file is corrupt or not a valid ...").
        timeout: seconds before the child is killed (None: no limit).

    Returns:
        The dict the target returned.

    Raises:
        ArtifactCrashError: the child died from a signal or exited without a result.
        ArtifactError: the target raised a user error (ValueError, OSError, ...).
        ChildError: the target raised anything else (the child's traceback is attached).
    """
    with tempfile.TemporaryDirectory(prefix="evaluate-child-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({"target": target, "payload": payload}))
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
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
                    [sys.executable, "-P", "-m", "evaluation._child", str(request), str(result),
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
                raise ArtifactCrashError(
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
            raise ArtifactCrashError(
                f"{what} crashed its runtime ({_signal_name(-returncode)}, signal {-returncode})"
                + (f": {crash_hint}" if crash_hint else ""))
        if not result.exists():
            last = stderr_tail[-1] if stderr_tail else "no output"
            raise ArtifactCrashError(
                f"{what} ended its runtime with exit status {returncode} and no result ({last})"
                + (f": {crash_hint}" if crash_hint else ""))
        answer = json.loads(result.read_text())
    if "error" in answer:
        error = answer["error"]
        if error["user_error"]:
            # Keep the child's error class when it is one of ours (ShapeMismatchError, ...).
            cls = getattr(errors, error["type"], None)
            if not (isinstance(cls, type) and issubclass(cls, EvaluationError)):
                cls = ArtifactError
            raise cls(error["message"])
        raise ChildError(f"{what} failed with {error['type']}: {error['message']}\n"
                         f"{error['traceback']}")
    return answer["result"]


def _pump_progress(fd: int, on_progress) -> None:
    with os.fdopen(fd, "r") as stream:
        for line in stream:
            if on_progress is not None and line.strip().isdigit():
                on_progress(int(line))
