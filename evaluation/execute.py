"""Load one artifact into its runtime and run a whole split through it in batches.

This is the code that runs inside the isolated child (``run_artifact``) and, for
``.keras`` files, in the calling process (``run``). Timing is
taken around each runtime call only, so neither process start-up nor moving
the data between processes counts towards throughput.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from export.runtime import WARMUP_RUNS
from utils.errors import ModelLoadError

from .errors import ArtifactError, EvaluationError, ShapeMismatchError, UnsafeArtifactError


# Seconds between progress reports.
PROGRESS_INTERVAL = 0.1


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def load(path: str | Path, kind: str, *, unsafe: bool = False, num_threads: int | None = None):
    """Load an artifact with the export package's runtime loaders.

    Args:
        path: the artifact.
        kind: ``"keras"``, ``"saved_model"``, ``"onnx"`` or ``"tflite"``.
        unsafe: allow ``.keras`` files with Lambda layers (``safe_mode=False``).
        num_threads: runtime intra-op threads (None: the runtime's default).

    Returns:
        An ``export.runtime.Runner``.

    Raises:
        UnsafeArtifactError: a ``.keras`` file with a Lambda layer and ``unsafe`` is False.
        ArtifactError: the runtime cannot load the file.
    """
    from export.runtime import load_artifact
    from export.runtime_tf import KerasRunner

    path = Path(path)
    if kind in ("keras", "saved_model"):
        from utils.tf_quiet import import_tensorflow

        import_tensorflow()
    try:
        if kind == "keras" and not unsafe:
            from models.loading import lambda_layers, read_config

            if lambda_layers(read_config(path)):
                raise UnsafeArtifactError(
                    f"'{path}' contains a Lambda layer (arbitrary Python code), which safe "
                    "mode refuses to load. Pass --unsafe (unsafe=True) only if you trust the "
                    "file.")
        if kind == "keras" and unsafe:
            return KerasRunner(path, num_threads=num_threads, safe_mode=False)
        return load_artifact(path, num_threads=num_threads)
    except ModelLoadError as exc:
        from .artifacts import describe_kind

        raise ArtifactError(f"Not a valid {describe_kind(kind)}: {exc}") from exc


def check_input_shape(runner, image_shape: tuple, *, label: str, dataset: str) -> None:
    """Raise ShapeMismatchError unless the runner takes one input of the dataset's image shape."""
    specs = runner.input_spec
    if len(specs) != 1:
        raise ShapeMismatchError(
            f"Artifact '{label}' takes {len(specs)} inputs; an image classifier with one input "
            f"is needed to evaluate it on dataset '{dataset}'.")
    want = list(specs[0]["shape"])[1:]
    if len(want) != len(image_shape) or any(w is not None and w != g
                                            for w, g in zip(want, image_shape)):
        raise ShapeMismatchError(
            f"Artifact '{label}' expects inputs of shape {_shape(specs[0]['shape'])} but dataset "
            f"'{dataset}' has images of shape {_shape((None, *image_shape))}. Evaluate it on a "
            f"dataset with {_shape(specs[0]['shape'][1:])} images, or build the model with "
            f"input_shape={_shape(image_shape)} and export it again.")


def run_batches(runner, x: np.ndarray, batch_size: int,
                report_progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, dict]:
    """Run ``x`` through ``runner`` in batches of ``batch_size``.

    The first batch is run ``WARMUP_RUNS`` times untimed beforehand (as
    ``python -m export bench`` does): graph tracing, tensor allocation, weight
    packing and cold caches are start-up costs, not throughput.

    Returns:
        ``(outputs [N, C] float32, timing)`` where timing has ``seconds`` (sum of
        the runtime calls), ``throughput`` (images/s), ``latency_ms`` (median ms
        per full batch) and ``batches``.

    Raises:
        EvaluationError: the model's first output is not ``[batch, classes]``.
    """
    n = int(x.shape[0])
    if n == 0:
        raise EvaluationError("The split is empty: there is nothing to evaluate.")
    # ``x`` may be a data.StreamedImages: each slice is read from disk as it is run.
    # Keep each result alive until the next one exists, warm-up included: a
    # runtime returns fresh arrays per call, and freeing one before the next is
    # allocated lets malloc hand the pages back to the OS, so the next call
    # page-faults its output (measured: the first timed batches ran 2-3x slower).
    result = None
    first = np.ascontiguousarray(x[:batch_size], dtype=np.float32)
    for _ in range(WARMUP_RUNS):
        result = runner.run(first)
    outputs = None
    times = []
    last_report = time.perf_counter()
    for start in range(0, n, batch_size):
        batch = np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32)
        t0 = time.perf_counter()
        result = runner.run(batch)
        times.append(time.perf_counter() - t0)
        out = np.asarray(result[0])
        if outputs is None:
            if out.ndim != 2 or out.shape[0] != batch.shape[0]:
                raise EvaluationError(
                    f"The model's output has shape {out.shape} for a batch of {batch.shape[0]}; "
                    f"a classifier returning [batch, classes] scores is needed.")
            outputs = np.empty((n, out.shape[1]), dtype=np.float32)
        outputs[start:start + batch.shape[0]] = out
        done = start + batch.shape[0]
        # A few updates a second are plenty for a bar; from the isolated child
        # each one is a pipe write that wakes the parent, so do not send 40 of
        # them for a split that takes 20 ms.
        if report_progress is not None and (done == n or t0 - last_report >= PROGRESS_INTERVAL):
            report_progress(done)
            last_report = t0
    # The partial last batch is not a batch of batch_size: leave it out of the latency.
    full = times[:n // batch_size] or times
    seconds = float(sum(times))
    return outputs, {
        "seconds": seconds,
        "throughput": n / seconds if seconds > 0 else float("inf"),
        "latency_ms": float(np.median(full) * 1e3),
        "batches": len(times),
    }


def run(path, kind: str, x: np.ndarray, batch_size: int, *, label: str, dataset: str,
        unsafe: bool = False, num_threads: int | None = None,
        report_progress=None) -> tuple[np.ndarray, dict]:
    """Load an artifact, check its input shape, run ``x`` through it in batches.

    Returns:
        ``(outputs, info)``: the timing dict of :func:`run_batches` plus
        ``load_seconds``, ``kind``, ``input_spec`` and ``output_spec``.
    """
    t0 = time.perf_counter()
    runner = load(path, kind, unsafe=unsafe, num_threads=num_threads)
    load_seconds = time.perf_counter() - t0
    check_input_shape(runner, tuple(x.shape[1:]), label=label, dataset=dataset)
    outputs, info = run_batches(runner, x, batch_size, report_progress)
    info.update(load_seconds=load_seconds, kind=runner.kind, input_spec=runner.input_spec,
                output_spec=runner.output_spec)
    return outputs, info


def run_artifact(payload: dict, report_progress=None) -> dict:
    """Child-process entry point (see ``utils.isolation.call_isolated``).

    Payload keys: ``path``, ``kind``, ``label``, ``dataset``, ``inputs`` (.npy of
    the images, or a streamed split's ``data.StreamedImages.spec()``), ``outputs``
    (.npy to write the ``[N, C]`` outputs to), ``batch_size``, ``unsafe``, ``num_threads``.

    Returns:
        The info dict of :func:`run`.
    """
    inputs = payload["inputs"]
    if isinstance(inputs, dict):  # a streamed split: read from its shards batch by batch
        from data import StreamedImages

        x = StreamedImages.from_spec(inputs)
    else:
        x = np.load(inputs)
    outputs, info = run(payload["path"], payload["kind"], x,
                        int(payload["batch_size"]), label=payload["label"],
                        dataset=payload["dataset"], unsafe=payload.get("unsafe", False),
                        num_threads=payload.get("num_threads"), report_progress=report_progress)
    np.save(payload["outputs"], outputs)
    return info
