"""``evaluate()``: score artifacts side by side on one split of one dataset."""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.progress import Progress

from . import artifacts as _artifacts
from . import execute, metrics
from .errors import EvaluationError
from .isolation import call_isolated
from utils.checks import is_count


# Seed of the --limit subset: fixed, so limited runs are comparable with each other.
LIMIT_SEED = 0


@dataclass
class ArtifactResult:
    """Scores of one artifact (see ``docs/evaluation.md`` for every field).

    Timing: ``runtime_seconds`` is the sum of the runtime calls (what
    ``throughput`` and ``latency_ms`` are computed from); ``load_seconds`` the
    artifact's loading; ``wall_seconds`` everything for this artifact as seen
    by the caller (child start, data hand-over, load, run, reading outputs).

    ``predictions`` (top-1 class per example) is kept for callers but left out
    of :meth:`to_dict`; everything else is JSON-able.
    """

    label: str
    path: str
    kind: str
    quantization: str | None
    accuracy: float
    top5_accuracy: float
    loss: float
    output_kind: str
    agreement: float
    precision: list
    recall: list
    confusion_matrix: list
    out_of_range_predictions: int
    throughput: float
    latency_ms: float
    batches: int
    runtime_seconds: float
    load_seconds: float
    wall_seconds: float
    isolated: bool
    input_spec: list = field(default_factory=list)
    output_spec: list = field(default_factory=list)
    predictions: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """All fields except ``predictions``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.pop("predictions")
        return out


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns: the request plus one :class:`ArtifactResult` each.

    The first artifact is the reference for ``agreement``.
    """

    dataset: str
    split: str
    num_examples: int
    num_classes: int
    class_names: list
    batch_size: int
    artifacts: list
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-able dict (artifacts as dicts)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["artifacts"] = [a.to_dict() for a in self.artifacts]
        return out

    def to_json(self) -> str:
        """Indented JSON text; non-finite floats become null; number lists on one line."""
        text = json.dumps(_finite(self.to_dict()), indent=2)
        # A 10x10 confusion matrix would otherwise take 120 lines per artifact.
        return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(
            v.strip() for v in m.group(1).split(",") if v.strip()) + "]", text) + "\n"

    def table(self) -> str:
        """The terminal table (see ``evaluation.report.format_table``)."""
        from .report import format_table

        return format_table(self)

    def write_json(self, path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically."""
        from utils.io import atomic_write_text

        return atomic_write_text(path, self.to_json())

    def write_report(self, directory) -> Path:
        """Write the Markdown report with confusion-matrix plots (see ``evaluation.report``)."""
        from .report import write_report

        return write_report(self, directory)


# An innermost JSON array holding only numbers / nulls.
_NUMBER_LIST = re.compile(r"\[((?:[-+0-9.eE,\s]|null)*)\]")


def _finite(obj):
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def evaluate(artifacts: list, dataset: str = "digits", split: str = "test", batch_size: int = 256,
             unsafe: bool = False, progress: bool = True, limit: int | None = None,
             num_threads: int | None = None) -> EvaluationResult:
    """Evaluate artifacts side by side on one split of a dataset.

    Every artifact other than a ``.keras`` file is loaded and run in a separate
    process: a runtime that crashes on a corrupt file (TFLite does not verify
    its flatbuffer) raises :class:`ArtifactCrashError` here instead of killing
    the caller. The whole split goes to that process once, and all batches run
    there; throughput and latency are measured around the runtime calls only.

    Args:
        artifacts: paths: ``.keras``, ``.onnx``, ``.tflite`` files, SavedModel
            directories, or export directories with ``manifest.json`` (all of
            their artifacts). The first is the reference for ``agreement``.
        dataset: a ``data.load_dataset`` name ("digits", "fashion_mnist", ...).
        split: "train", "val" or "test".
        batch_size: examples per runtime call.
        unsafe: allow ``.keras`` files with Lambda layers (arbitrary code).
        progress: show progress on stderr (``utils.progress``): a bar on a terminal,
            one line per artifact otherwise.
        limit: evaluate only ``limit`` examples of the split: a fixed random subset
            (seed ``LIMIT_SEED``, the same every run), in the split's order.
        num_threads: runtime intra-op threads (None: each runtime's default).

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        ArtifactError: missing, unsupported or corrupt artifact (ArtifactCrashError
            when its runtime crashed, UnsafeArtifactError for a refused Lambda layer).
        ShapeMismatchError: an artifact's input shape is not the dataset's image shape.
        data.UnknownDatasetError: unknown dataset name.
        EvaluationError: bad ``batch_size``/``limit``/``num_threads``, empty split, too few
            outputs.

    Example:
        >>> result = evaluate(["runs/exam/model.keras", "exports/exam"], dataset="digits")
        >>> print(result.table())
    """
    started = time.perf_counter()
    if isinstance(artifacts, (str, Path)):
        artifacts = [artifacts]
    if not is_count(batch_size):
        raise EvaluationError(
            f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if limit is not None and not is_count(limit):
        raise EvaluationError(
            f"limit must be a positive integer or None. Received: limit={limit!r}")
    if num_threads is not None and not is_count(num_threads):
        raise EvaluationError(
            f"num_threads must be a positive integer or None. Received: num_threads={num_threads!r}")
    resolved = _artifacts.resolve(list(artifacts))
    for art in resolved:
        _artifacts.check(art)
    resolved = [dataclasses.replace(art, card=_artifacts.read_card(art)) for art in resolved]

    import data

    bundle = data.load_dataset(dataset)
    if split not in data.SPLITS:
        raise data.DatasetError(f"Unknown split {split!r}; choose one of {data.SPLITS}.")
    keep, n = None, bundle.sizes[split]
    if limit is not None and limit < n:
        # A fixed random subset (same every run, original order kept), not the
        # first `limit`: some splits are stored sorted by class (digits' test
        # split starts with 100 zeros), and a prefix would score one class only.
        keep = np.sort(np.random.default_rng(LIMIT_SEED).choice(n, limit, replace=False))
    # A streamed dataset's images stay on disk (data.StreamedImages): batches are read
    # as they are run, here and in the isolated children.
    x, y = bundle.images(split, keep), bundle.labels(split, keep)
    if len(y) == 0:
        raise EvaluationError(
            f"Split '{split}' of dataset '{dataset}' is empty; choose another split.")
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)

    results = []
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        inputs_path = Path(tmp) / "inputs.npy"
        for i, art in enumerate(resolved):
            t0 = time.perf_counter()
            with Progress(art.label, len(y), unit="images", stream=sys.stderr,
                          silent=not progress, delay=0.5) as bar:
                if art.kind == "keras":
                    # In this process: loading a .keras file runs no native parser
                    # on untrusted bytes beyond zip/h5py, and safe mode already
                    # refuses embedded code.
                    outputs, info = execute.run(art.path, art.kind, x, batch_size,
                                                label=art.label, dataset=str(dataset),
                                                unsafe=unsafe, num_threads=num_threads,
                                                report_progress=bar.update)
                else:
                    inputs = inputs_path
                    if isinstance(x, data.StreamedImages):
                        inputs = x.spec()  # the child reads the shards itself
                    elif not inputs_path.exists():
                        np.save(inputs_path, x)  # once, shared by every isolated artifact
                    outputs, info = _run_isolated(art, inputs, Path(tmp) / f"out{i}.npy",
                                                  batch_size, unsafe, num_threads, dataset,
                                                  bar.update)
            wall = time.perf_counter() - t0
            scores = metrics.classification_metrics(outputs, y, bundle.num_classes)
            predicted = scores.pop("predictions")
            reference = results[0].predictions if results else predicted
            results.append(ArtifactResult(
                label=art.label, path=str(art.path), kind=art.kind, quantization=art.quantization,
                agreement=metrics.agreement(predicted, reference), **scores,
                throughput=info["throughput"], latency_ms=info["latency_ms"],
                batches=info["batches"], runtime_seconds=info["seconds"],
                load_seconds=info["load_seconds"], wall_seconds=wall, isolated=art.kind != "keras",
                input_spec=info["input_spec"], output_spec=info["output_spec"],
                predictions=predicted))
    return EvaluationResult(
        dataset=str(dataset), split=split, num_examples=int(len(y)),
        num_classes=int(bundle.num_classes), class_names=[str(c) for c in bundle.class_names],
        batch_size=batch_size, artifacts=results, wall_seconds=time.perf_counter() - started)


def _run_isolated(art, inputs, outputs_path, batch_size, unsafe, num_threads, dataset,
                  on_progress):
    payload = {"path": str(art.path), "kind": art.kind, "label": art.label, "dataset": str(dataset),
               "inputs": inputs if isinstance(inputs, dict) else str(inputs),
               "outputs": str(outputs_path),
               "batch_size": batch_size, "unsafe": unsafe, "num_threads": num_threads}
    info = call_isolated(
        "evaluation.execute:run_artifact", payload, on_progress=on_progress,
        what=f"Artifact '{art.label}'",
        crash_hint=f"the file is corrupt or not a valid {art.description}; re-export it")
    return np.load(outputs_path), info
