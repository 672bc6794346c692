#!/usr/bin/env python3
"""The exam at its scale: exam_mlp on millions of 32x32 images in 1000 classes, streamed.

1. Synthesises a learnable set (each class a fixed random low-frequency pattern,
   every image that pattern plus per-pixel noise, both deterministic per index)
   straight into the streamed format with ``data.write_dataset`` (parallel
   writer processes), and reports its speed and disk size.
2. Trains exam_mlp on it for one epoch with train.py in a child process and
   reports that child's peak RSS (and per phase: its VmRSS sampled every 0.1 s
   against the phases it marks: training steps, evaluation, checkpoint, dead-unit
   probe, final files), samples/s, the epoch's time and the test accuracy.
3. On a subset that fits in memory, trains the same model from the in-memory
   path (a .npz of the same images) and from the streamed path, at each batch
   size, in this same run, and reports the streamed/in-memory throughput ratio.

    .venv/bin/python bench/exam_scale.py --images 10000000 --work /tmp/exam
    .venv/bin/python bench/exam_scale.py --images 200000 --subset 100000 --work /tmp/exam_small
    .venv/bin/python bench/exam_scale.py --images 1000000 --skip-compare --work /tmp/exam_1m \
        --train-arg=--activation --train-arg=elu --train-arg=--lr --train-arg=1e-3

Everything is written under ``--work`` (never inside the repository); ``--keep``
keeps it, otherwise it is deleted at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = 1000
SIZE = 32


def class_patterns(classes: int, seed: int = 0) -> np.ndarray:
    """``[classes, 32, 32]`` uint8: a sum of 3 random 2-D cosines per class, in 32..223."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    freq = rng.uniform(0.5, 3.0, (classes, 3, 2))
    phase = rng.uniform(0, 2 * np.pi, (classes, 3))
    waves = np.cos(2 * np.pi * (freq[..., 0, None, None] * yy + freq[..., 1, None, None] * xx)
                   + phase[..., None, None]).sum(axis=1)
    return np.rint(128 + 95 * waves / 3).astype(np.uint8)


class SyntheticImages:
    """``x[rows]`` of the synthetic set: pattern of the row's class + hashed noise in +-48."""

    def __init__(self, labels: np.ndarray, patterns: np.ndarray):
        self.labels, self.patterns = labels, patterns
        self.shape = (len(labels), SIZE, SIZE, 1)

    def __getitem__(self, rows):
        rows = np.asarray(rows, dtype=np.uint64)
        h = rows[:, None] * np.uint64(SIZE * SIZE) + np.arange(SIZE * SIZE, dtype=np.uint64)
        h ^= h >> np.uint64(33)  # splitmix-style mixing: deterministic per (row, pixel)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        noise = (h % np.uint64(97)).astype(np.int16) - 48
        image = self.patterns[self.labels[rows.astype(np.int64)]].astype(np.int16)
        return np.clip(image + noise.reshape(-1, SIZE, SIZE), 0, 255).astype(np.uint8)[..., None]


def synthesise(out: Path, images: int, workers: int | None) -> dict:
    import data

    labels = np.arange(images, dtype=np.int64) % CLASSES
    pools = {"all": (SyntheticImages(labels, class_patterns(CLASSES)), labels)}
    t0 = time.perf_counter()
    data.write_dataset(pools, out, num_classes=CLASSES, class_names=[str(i) for i in range(CLASSES)],
                       description=f"{images:,} synthetic 32x32 images in {CLASSES} classes",
                       source="bench/exam_scale.py", workers=workers, progress=True)
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.iterdir())
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds,
            "disk_bytes": size}


# The child marks the phases of a run on stderr ("PHASE name unix-time"), so the parent's
# RSS samples can be attributed to training steps, validation, test evaluation, etc.
_CHILD = """\
import runpy, sys, time
sys.argv = ['train.py'] + sys.argv[1:]

def mark(name):
    print('PHASE', name, time.time(), file=sys.stderr, flush=True)

def phase(owner, attr, name):
    inner = getattr(owner, attr)
    def wrapped(*args, **kwargs):
        mark(name)
        try:
            return inner(*args, **kwargs)
        finally:
            mark('other')
    setattr(owner, attr, wrapped)

import training.loop as loop, training.steps as steps, training.outputs as outputs
phase(loop, '_train_epoch', 'training')
phase(steps.Steps, 'evaluate', 'evaluation')
phase(loop, 'dead_unit_fraction', 'dead_units')
phase(outputs, 'write_final', 'write_final')
phase(loop.ckpt, 'save', 'checkpoint')
mark('start')
try:
    runpy.run_path('train.py', run_name='__main__')
finally:
    mark('end')
    # VmHWM, not getrusage's ru_maxrss: that one keeps the RSS of the process this child
    # was forked from (the bench itself) across the exec.
    hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')]
    print('PEAK_RSS_KB', hwm[0], file=sys.stderr)
"""


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def phase_peaks(samples: list, marks: list) -> dict:
    """Peak RSS (GB) of each phase: samples ``(time, kb)``, marks ``(time, phase)``."""
    peaks: dict = {}
    for t, kb in samples:
        name = "start"
        for mt, mname in marks:
            if mt > t:
                break
            name = mname
        peaks[name] = max(peaks.get(name, 0.0), kb / 2**20)
    return {k: round(v, 3) for k, v in peaks.items()}


def timeline(samples: list, marks: list, points: int = 60) -> list:
    """``[seconds from start, GB, phase]`` at about ``points`` evenly spaced samples."""
    if not samples:
        return []
    t0, step = samples[0][0], max(1, len(samples) // points)
    rows = []
    for t, kb in samples[::step]:
        name = "start"
        for mt, mname in marks:
            if mt > t:
                break
            name = mname
        rows.append([round(t - t0, 1), round(kb / 2**20, 3), name])
    return rows


def train_child(dataset: Path, out: Path, batch_size: int, epochs: int = 1,
                extra: tuple = ()) -> dict:
    """train.py in a child process: its peak RSS (overall and per phase, from VmRSS
    sampled every 0.1 s), samples/s and test accuracy."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", _CHILD, "--dataset", str(dataset), "--epochs", str(epochs),
           "--batch-size", str(batch_size), "--out", str(out), "--overwrite", "--quiet",
           *extra]
    samples = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=ROOT, env=env) as child:
        import threading

        stderr_lines: list = []
        reader = threading.Thread(target=lambda: stderr_lines.extend(child.stderr), daemon=True)
        reader.start()
        while child.poll() is None:
            kb = _rss_kb(child.pid)
            if kb is not None:
                samples.append((time.time(), kb))
            time.sleep(0.1)
        stdout = child.stdout.read()
        reader.join()
    stderr = "".join(stderr_lines)
    if child.returncode != 0:
        raise SystemExit(f"train.py failed ({child.returncode}): {stderr.strip()[-2000:]}"
                         f"{stdout[-500:]}")
    peak = [int(l.split()[1]) for l in stderr.splitlines() if l.startswith("PEAK_RSS_KB")]
    marks = [(float(l.split()[2]), l.split()[1]) for l in stderr.splitlines()
             if l.startswith("PHASE ")]
    history = json.loads((out / "history.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    last = history[-1]
    return {"batch_size": batch_size, "peak_rss_gb": peak[0] / 2**20,
            "phase_peak_rss_gb": phase_peaks(samples, marks),
            "rss_timeline": timeline(samples, marks),
            "samples_per_s": last["samples_per_s"], "epoch_s": last["time_s"],
            "val_accuracy": last["val_accuracy"], "test_accuracy": summary.get("test_accuracy")}


def subset_npz(dataset: Path, n: int, path: Path) -> Path:
    """The first ``n`` examples of each split of ``dataset`` as x/y (+ x_test/y_test) in a .npz."""
    import data

    bundle = data.load_dataset(dataset)
    parts = {}
    for split in ("train", "val", "test"):
        k = min(n if split == "train" else max(n // 7, 1), bundle.sizes[split])
        x, y = bundle.read(split, np.arange(k))
        parts[split] = (np.rint(x[..., 0] * 255).astype(np.uint8), y)
    x = np.concatenate([parts["train"][0], parts["val"][0]])
    y = np.concatenate([parts["train"][1], parts["val"][1]])
    np.savez(path, x=x, y=y, x_test=parts["test"][0], y_test=parts["test"][1])
    return path


def _converted_count(path: Path) -> int | None:
    try:
        meta = json.loads((path / "metadata.json").read_text())
        return sum(int(s["count"]) for s in meta["splits"].values())
    except (OSError, ValueError, KeyError):
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=10_000_000)
    p.add_argument("--subset", type=int, default=200_000,
                   help="training examples of the in-memory vs streamed comparison")
    p.add_argument("--batch-size", default="64,512")
    p.add_argument("--work", type=Path, required=True, help="scratch folder outside the repo")
    p.add_argument("--workers", type=int)
    p.add_argument("--skip-full", action="store_true", help="only the subset comparison")
    p.add_argument("--skip-compare", action="store_true", help="only the full set")
    p.add_argument("--repeats", type=int, default=1,
                   help="in-memory/streamed pairs per batch size (the median ratio is reported)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--reuse", action="store_true",
                   help="use the set already converted under --work/full if it has --images images")
    p.add_argument("--train-arg", dest="train_arg", action="append", default=[],
                   metavar="ARG", help="extra train.py argument for the full-set run, "
                   "repeatable (e.g. --train-arg=--activation --train-arg=elu)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batch_size.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    report = {}
    try:
        full = args.work / "full"
        if args.reuse and _converted_count(full) == args.images:
            print(f"convert: reusing {full}", flush=True)
        else:
            report["convert"] = synthesise(full, args.images, args.workers)
            c = report["convert"]
            print(f"convert: {c['images']:,} images in {c['seconds']:.1f}s "
                  f"({c['images_per_s']:,.0f} images/s), {c['disk_bytes'] / 1e9:.2f} GB on disk",
                  flush=True)
        if not args.skip_full:
            report["full"] = train_child(full, args.work / "run_full", max(batches),
                                         extra=tuple(args.train_arg))
            print(f"full epoch: {json.dumps(report['full'])}", flush=True)
        if args.skip_compare:
            return 0
        npz = subset_npz(full, args.subset, args.work / "subset.npz")
        import data
        sub = data.convert(npz, args.work / "subset", progress=False)
        report["compare"] = []
        for repeat in range(args.repeats):
            for b in batches:
                # Alternating which path goes first: a load change on the shared machine
                # then favours neither.
                order = (("mem", npz), ("disk", sub))[::1 if repeat % 2 == 0 else -1]
                runs = {name: train_child(path, args.work / f"run_{name}_{b}", b, epochs=2)
                        for name, path in order}
                mem, disk = runs["mem"], runs["disk"]
                row = {"batch_size": b, "repeat": repeat, "in_memory": mem, "streamed": disk,
                       "ratio": disk["samples_per_s"] / mem["samples_per_s"]}
                report["compare"].append(row)
                print(f"batch {b}: in-memory {mem['samples_per_s']:,.0f}/s "
                      f"(peak {mem['peak_rss_gb']:.2f} GB), streamed "
                      f"{disk['samples_per_s']:,.0f}/s (peak {disk['peak_rss_gb']:.2f} GB), "
                      f"ratio {row['ratio']:.2f}", flush=True)
        for b in batches:
            ratios = [r["ratio"] for r in report["compare"] if r["batch_size"] == b]
            print(f"batch {b}: median streamed/in-memory ratio {np.median(ratios):.2f} over "
                  f"{len(ratios)} runs ({', '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
