"""Latency of every artifact of an export directory in its own runtime.

``benchmark(dir)`` times each artifact listed in ``manifest.json`` (and the
source Keras model when its file still exists) through the same loaders as
validation (:mod:`export.runtime`), at batch 1 and 256, with one thread and
with all threads, reporting the median of repeated runs.

TensorFlow fixes its thread pools when it first runs, so each thread count is
measured in a fresh worker process (``utils.isolation``, the project's one
child runner: a crash or a bad file there is one typed error here).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from export import manifest as manifest_io
from export.errors import ExportError
from export.manifest import MANIFEST
from export.runtime import WARMUP_RUNS

BATCHES = (1, 256)
# Per (artifact, batch): stop after this many timed runs or this many
# seconds, whichever comes first (at least MIN_RUNS).
MAX_RUNS, MIN_RUNS, TIME_BUDGET_S = 200, 5, 1.0


def _targets(export_dir: Path, manifest: dict, keras_path=None) -> list[dict]:
    targets = []
    source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
    keras_path = keras_path or source.get("path")
    if keras_path and Path(keras_path).is_file():
        targets.append({"path": str(keras_path), "label": Path(keras_path).name,
                        "quantization": None})
    for a in manifest["artifacts"]:
        path = manifest_io.artifact_path(export_dir, a)
        manifest_io.verify(path, a)  # time the artifact that was exported, not a changed one
        target = {"path": str(path), "label": a["path"], "quantization": a.get("quantization")}
        if a.get("micro"):  # timed in TFLite Micro, at the arena the manifest promises
            target["micro_arena"] = a["micro"]["arena_bytes"]
        targets.append(target)
    return targets


def _load(target, threads):
    from export.runtime import load_artifact
    if target.get("micro_arena"):
        from export.micro_runtime import TFLiteMicroRunner
        return TFLiteMicroRunner(target["path"], arena_size=target["micro_arena"])
    return load_artifact(target["path"], num_threads=threads)


def time_runner(runner, batch: int, rng) -> float:
    """Median wall time (ms) of ``runner.run`` on a random batch."""
    x = [rng.random([batch] + list(s["shape"][1:]), dtype=np.float32)
         for s in runner.input_spec]
    for _ in range(WARMUP_RUNS):
        runner.run(x)
    times = []
    start = time.perf_counter()
    while len(times) < MAX_RUNS and (len(times) < MIN_RUNS
                                     or time.perf_counter() - start < TIME_BUDGET_S):
        t0 = time.perf_counter()
        runner.run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _measure(targets, threads: int, batches) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for t in targets:
        runner = _load(t, threads)
        row = {"artifact": t["label"], "runtime": runner.kind, "threads": threads,
               "quantization": t["quantization"]}
        for b in batches:
            # A Flex artifact where no Flex delegate is linked cannot run here.
            row[f"batch_{b}_ms"] = (None if getattr(runner, "unavailable", None)
                                    else round(time_runner(runner, b, rng), 4))
        rows.append(row)
    return rows


def _worker(spec: dict, report_progress=None) -> dict:
    """Entry point of a worker process (``utils.isolation.call_isolated``)."""
    return {"rows": _measure(spec["targets"], spec["threads"], spec["batches"])}


def benchmark(export_dir, *, keras_path=None, threads=(1, None), batches=BATCHES) -> dict:
    """Benchmark an export directory.

    Args:
        export_dir: a directory written by :func:`export.export_model`.
        keras_path: the Keras model to time beside the artifacts (default:
            the manifest's source path, when that file exists).
        threads: thread counts; None means all cores.
        batches: batch sizes.

    Returns:
        ``{"rows": [...], "sizes": {artifact: bytes}, "cpu_count": n}``; each
        row has artifact, runtime, threads, quantization, ``batch_<b>_ms``.

    Raises:
        FileNotFoundError: no ``manifest.json`` in ``export_dir``.
        ManifestError: an unreadable manifest, a path outside ``export_dir``, or
            an artifact that no longer matches its manifest.
        ModelLoadError: an artifact its runtime cannot load.
        ExportError: a worker process crashed.
    """
    from utils.isolation import call_isolated

    export_dir = Path(export_dir)
    if not (export_dir / MANIFEST).is_file():
        raise FileNotFoundError(f"No {MANIFEST} in {str(export_dir)!r}: pass a directory "
                                "written by `python -m export MODEL.keras --out DIR`.")
    manifest = manifest_io.read(export_dir)
    targets = _targets(export_dir, manifest, keras_path)
    rows = []
    for n in threads:
        n = int(n or os.cpu_count() or 1)
        env = {"TF_NUM_INTRAOP_THREADS": str(n), "TF_NUM_INTEROP_THREADS": "1",
               "OMP_NUM_THREADS": str(n), "TF_CPP_MIN_LOG_LEVEL": "3"}
        spec = {"targets": targets, "threads": n, "batches": list(batches)}
        rows += call_isolated("export.bench:_worker", spec, env=env, crash_error=ExportError,
                              what=f"The benchmark worker (threads={n})",
                              crash_hint="an artifact crashed its runtime; evaluate.py on "
                              "each artifact names which")["rows"]
    sizes = {a["path"]: a.get("size_bytes") for a in manifest["artifacts"]}
    sizes.update({t["label"]: Path(t["path"]).stat().st_size for t in targets
                  if Path(t["path"]).suffix.lower() == ".keras"})
    return {"rows": rows, "sizes": sizes, "cpu_count": os.cpu_count(),
            "source_params": (manifest.get("source") or {}).get("params")}


def bench_markdown(result: dict) -> str:
    """Markdown table of :func:`benchmark` results (median ms per batch)."""
    batches = sorted({int(k.split("_")[1]) for r in result["rows"] for k in r
                      if k.startswith("batch_")})
    head = "| artifact | runtime | quantization | size | threads | " + " | ".join(
        f"batch {b} (ms)" for b in batches) + " |"
    lines = [head, "|---" * (5 + len(batches)) + "|"]
    for r in result["rows"]:
        size = result["sizes"].get(r["artifact"])
        size = f"{size / 1024:.1f} KiB" if size is not None else "-"
        lines.append(f"| `{r['artifact']}` | {r['runtime']} | {r['quantization'] or 'float32'} "
                     f"| {size} | {r['threads']} | "
                     + " | ".join("n/a" if r[f"batch_{b}_ms"] is None
                                  else f"{r[f'batch_{b}_ms']:.3f}" for b in batches) + " |")
    return "\n".join(lines) + "\n"
