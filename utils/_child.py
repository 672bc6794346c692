"""Entry point of the isolated child process (see ``utils.isolation``).

Usage (by ``call_isolated`` only): ``python -m utils._child REQUEST RESULT PROGRESS_FD``.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

# The command line's own rule decides what is bad input (exit 2) and what is a bug.
from utils.cli import error_line, is_user_error


def main(argv: list[str]) -> int:
    request_path, result_path, progress_fd = argv[0], argv[1], int(argv[2])
    with open(request_path) as f:
        request = json.load(f)
    progress = os.fdopen(progress_fd, "w", buffering=1)

    def report_progress(done: int) -> None:
        progress.write(f"{int(done)}\n")

    try:
        module_name, func_name = request["target"].split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        answer = {"result": func(request["payload"], report_progress)}
    except Exception as exc:  # noqa: BLE001 - everything is reported to the parent
        answer = {"error": {"type": type(exc).__name__, "module": type(exc).__module__,
                            "message": error_line(exc),
                            "user_error": is_user_error(exc),
                            "traceback": traceback.format_exc()}}
    finally:
        progress.close()
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(answer, f)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
