#!/usr/bin/env python3
"""Where a training step's time goes: TensorFlow's profiler on one epoch of train.py.

Runs ``training.train`` (the code train.py runs) on the 21,000-image digits set
of ``bench/strategy_runs.py``: for ``multiworker`` as a two-worker loopback
cluster. The chief records epoch 2 with ``tf.profiler.experimental`` (epoch 1
holds the compiles); the trace (an XSpace protobuf) is then read and each
event put in one phase:

* ``compute``: XLA programs and TensorFlow kernels (matmuls, the optimizer);
* ``all-reduce``: collective ops (``CollectiveReduceV2``), waiting for the
  other workers included;
* ``input``: tf.data (iterators, rebatching, prefetch);
* ``other``: the rest of the epoch (executor, loop control, Python).

Phases are measured as wall time covered by their events (overlaps counted
once, compute first), per optimizer step.

    .venv/bin/python bench/profile_steps.py --strategy multiworker --batch-size 512
    .venv/bin/python bench/profile_steps.py --root /path/to/older/checkout ...

``--root`` profiles another checkout's training code with this script.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

_WORKER = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
from training import TrainConfig, train
strategy, batch, dataset, out, logdir = sys.argv[2:7]
chief = json.loads(os.environ.get("TF_CONFIG", '{"task": {"index": 0}}'))["task"]["index"] == 0
def profile(record, model):
    if chief and record["epoch"] == 1:
        tf.profiler.experimental.start(logdir)
    if chief and record["epoch"] == 2:
        tf.profiler.experimental.stop()
cfg = TrainConfig(model="deep_mlp_8x64", num_classes="auto", dataset=dataset, epochs=2,
                  batch_size=int(batch), out=out, quiet=True, strategy=strategy)
result = train(cfg, callbacks=[profile], log=lambda *a: None)
if chief:
    print(json.dumps({"steps": -(-result.history[-1]["samples"] // int(batch)),
                      "samples_per_s": result.history[-1]["samples_per_s"]}))
"""

# Event names (prefixes) of each phase on the host plane.
_ALL_REDUCE = ("CollectiveReduceV2", "CollectiveOpV2Kernel", "CollectiveExecutor",
               "BaseCollectiveExecutor")
_INPUT = ("Iterator::", "PrefetchProduce", "ParallelMapProduce", "IteratorGetNext",
          "MultiDeviceIterator")
_COMPUTE_LINES = ("tf_Compute", "tf_numa", "tf_XLA", "tf_xla")


def _union(intervals) -> float:
    """Total length covered by ``(start, end)`` intervals."""
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def _subtract(intervals, taken):
    """Parts of ``intervals`` outside the union of ``taken`` (both sorted lists)."""
    out = []
    taken = sorted(taken)
    for a, b in sorted(intervals):
        for c, d in taken:
            if d <= a or c >= b:
                continue
            if c > a:
                out.append((a, c))
            a = max(a, d)
            if a >= b:
                break
        if a < b:
            out.append((a, b))
    return out


def phases(logdir: str) -> dict:
    """Wall seconds of each phase over the profiled epoch (see the module docstring)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(path).read_bytes())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    kinds = {"compute": [], "all-reduce": [], "input": []}
    window = []
    for line in plane.lines:
        for e in line.events:
            start = (line.timestamp_ns * 1000 + e.offset_ps) / 1e12
            span = (start, start + e.duration_ps / 1e12)
            name = plane.event_metadata[e.metadata_id].name
            if name.startswith("EagerLocalExecute: __inference_") and "chunk" in name:
                window.append(span)
            elif any(k in name for k in _ALL_REDUCE):
                kinds["all-reduce"].append(span)
            elif any(name.startswith(k) or k in name for k in _INPUT):
                kinds["input"].append(span)
            elif line.name.startswith(_COMPUTE_LINES) and not name.startswith("ExecutorState"):
                kinds["compute"].append(span)
    total = _union(window)
    lo, hi = min(a for a, _ in window), max(b for _, b in window)
    clip = {k: [(max(a, lo), min(b, hi)) for a, b in v if b > lo and a < hi]
            for k, v in kinds.items()}
    taken, result = [], {}
    for kind in ("compute", "all-reduce", "input"):
        own = _subtract(clip[kind], taken)
        result[kind] = _union(own)
        taken += own
    result["other"] = max(total - sum(result.values()), 0.0)
    result["epoch"] = total
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategy", default="default", help="default, mirrored or multiworker")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--copies", type=int, default=6, help="digits repeated N times (6: 21,000)")
    p.add_argument("--root", default=str(HERE.parent), help="checkout whose training/ is run")
    args = p.parse_args(argv)
    from utils.cli import quiet_tensorflow

    quiet_tensorflow()
    import utils.tf_quiet  # noqa: F401
    from strategy_runs import write_digits_copies
    from training.cluster import loopback_tf_configs

    with tempfile.TemporaryDirectory(prefix="profile-steps-") as tmp:
        tmp = Path(tmp)
        dataset = write_digits_copies(tmp / "digits.npz", args.copies)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=args.root)
        env.pop("TF_CONFIG", None)
        configs = loopback_tf_configs(2) if args.strategy == "multiworker" else [None]
        cmd = [sys.executable, "-c", _WORKER, args.root, args.strategy, str(args.batch_size),
               str(dataset), str(tmp / "run"), str(tmp / "trace")]
        procs = [subprocess.Popen(cmd, cwd=args.root, stdout=subprocess.PIPE, text=True,
                                  env=env if c is None else dict(env, TF_CONFIG=json.dumps(c)))
                 for c in configs]
        outs = [proc.communicate(timeout=900)[0] for proc in procs]
        if any(proc.returncode for proc in procs):
            raise SystemExit(f"a training process failed: {[p.returncode for p in procs]}")
        run = json.loads(outs[0].strip().splitlines()[-1])
        result = phases(str(tmp / "trace"))
    steps = run["steps"]
    print(f"{args.strategy} batch {args.batch_size}: {steps} steps, epoch 2 at "
          f"{run['samples_per_s']:,.0f} samples/s (unprofiled figure: bench/train_throughput.py);"
          f" load average {os.getloadavg()[0]:.1f}")
    for kind in ("compute", "all-reduce", "input", "other", "epoch"):
        ms = result[kind] * 1e3 / steps
        print(f"  {kind:10s} {ms:7.3f} ms/step  {result[kind] / result['epoch']:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
