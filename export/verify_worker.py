"""The program ``export.verify`` runs inside the emulated aarch64 root.

Usage: ``python -P verify_worker.py JOB.json`` under ``qemu-aarch64-static``
(``export.verify_root.emulated``). The job names one artifact, one engine and
an ``.npz`` of input batches; the worker runs every batch through the very
runner that runs the artifact on x86 (``export.runtime_tflite`` /
``export.runtime_onnx``, imported from this checkout), writes the outputs to an
``.npz`` and a report of what ran: the kernels (ops of the interpreter's
execution plan, a ``DELEGATE`` node when XNNPACK applied; onnxruntime's
providers) and the time.

Only numpy, LiteRT and onnxruntime exist in the root: nothing here may import
TensorFlow or Keras (``export/__init__.py`` imports the exporter only on
first use, so importing the runtime modules does not reach it).
"""
from __future__ import annotations

import json
import platform
import sys
import time

import numpy as np

ENGINES = ("xnnpack", "builtin", "onnxruntime")


def batches(npz) -> list[list[np.ndarray]]:
    """The input batches of an ``.npz`` written by :func:`save_batches`."""
    with np.load(npz) as f:
        count = int(f["count"])
        return [[f[f"b{j}_i{k}"] for k in range(int(f[f"b{j}_n"]))] for j in range(count)]


def save_batches(path, items: list[list[np.ndarray]]) -> None:
    """Write a list of batches (each a list of arrays) to one ``.npz``."""
    arrays = {"count": np.array(len(items))}
    for j, arrays_j in enumerate(items):
        arrays[f"b{j}_n"] = np.array(len(arrays_j))
        arrays.update({f"b{j}_i{k}": a for k, a in enumerate(arrays_j)})
    np.savez(path, **arrays)


def load_runner(path, engine: str):
    """The x86 code path's runner of ``path`` for ``engine``, one thread."""
    if engine == "onnxruntime":
        from export.runtime_onnx import OnnxRunner
        return OnnxRunner(path, num_threads=1)
    from export.runtime_tflite import TFLiteRunner
    return TFLiteRunner(path, num_threads=1,
                        kernels="xnnpack" if engine == "xnnpack" else "builtin")


def kernels(runner, engine: str) -> list[str]:
    """What ran: the op names of the interpreter's nodes, or onnxruntime's providers."""
    if engine == "onnxruntime":
        return list(runner.session.get_providers())
    return [op["op_name"] for op in runner.interpreter._get_ops_details()]


def main(job_path: str) -> int:
    with open(job_path) as f:
        job = json.load(f)
    runner = load_runner(job["artifact"], job["engine"])
    inputs = batches(job["inputs"])
    start = time.perf_counter()
    outputs = [runner.run(b) for b in inputs]
    seconds = time.perf_counter() - start
    save_batches(job["outputs"], outputs)
    report = {"kernels": kernels(runner, job["engine"]), "seconds": round(seconds, 4),
              "machine": platform.machine()}
    with open(job["report"], "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
