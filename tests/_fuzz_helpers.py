"""The child side of the loader fuzz (tests/test_fuzz_loaders.py).

``load_batch`` runs in a process of its own (``utils.isolation.call_isolated``):
it takes each mutated artifact through what ``evaluate.py`` does with a file
(resolve, the cheap checks, the runtime loader, one batch) and records how
each one ended. It reports the index of a case before starting it, so when a
native runtime kills the process the parent knows which file did it.
"""
from __future__ import annotations

import time


def load_batch(payload: dict, report_progress) -> dict:
    """Outcomes ``[kind, message]`` (ok / user / bug) of ``payload["paths"]`` in order,
    stopping early when ``payload["budget_s"]`` seconds have passed (after the
    imports, with ``payload["warm_up"]``), and the seconds that took."""
    import numpy as np

    from evaluation import execute
    from evaluation.artifacts import check, resolve
    from utils.cli import error_line, is_user_error

    if payload.get("warm_up"):
        # Import TensorFlow and the .keras loader before the clock starts: start-up
        # is not fuzzing.
        import models  # noqa: F401
        from utils.tf_quiet import import_tensorflow

        import_tensorflow()
    started = time.monotonic()
    deadline = started + float(payload["budget_s"])
    x = np.random.default_rng(0).random([2, *payload["input_shape"]], dtype=np.float32)
    outcomes = []
    for i, path in enumerate(payload["paths"]):
        if time.monotonic() > deadline:
            break
        report_progress(i)
        try:
            artifact = resolve([path])[0]
            check(artifact)
            runner = execute.load(artifact.path, artifact.kind)
            outputs = runner.run(x)
            outcomes.append(["ok", f"{len(outputs)} output(s)"])
        except Exception as exc:  # noqa: BLE001 - classifying every ending is the point
            kind = "user" if is_user_error(exc) else "bug"
            outcomes.append([kind, f"{type(exc).__name__}: {error_line(exc)}"])
    return {"outcomes": outcomes, "seconds": time.monotonic() - started}
