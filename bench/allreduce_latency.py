#!/usr/bin/env python3
"""The floor under a loopback cluster's step: one all-reduce between two workers.

Launches two ``MultiWorkerMirroredStrategy`` workers on 127.0.0.1 (as
``--strategy multiworker`` does) and times ``--iterations`` chained
all-reduces inside one ``tf.function`` (no Python between them) for vectors of
several sizes: 4 bytes (pure latency) and the size of deep_mlp_8x64's
gradient (95,370 float32, what training.distributed all-reduces per step).
Each size is timed with and without ``CommunicationOptions(timeout_seconds=)``.
Then it tries to XLA-compile an all-reduce on these CPU devices, which
TensorFlow refuses: that is why the distributed step is three pieces.

    .venv/bin/python bench/allreduce_latency.py --iterations 300
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_WORKER = """
import json, os, sys, time
import tensorflow as tf
iterations, sizes, timeout = int(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout or None)
strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
chief = json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 0
SUM = tf.distribute.ReduceOp.SUM

def step(v):
    # tf.identity puts the input on this replica's device (all_reduce needs one).
    return tf.distribute.get_replica_context().all_reduce(SUM, tf.identity(v)) * 0.5

@tf.function(autograph=False)  # the source of "-c" code is invisible to AutoGraph
def chained(v, n):
    return tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, strategy.run(step, args=(v,))),
                         (tf.constant(0), v))[1]

results = {}
for size in sizes:
    v = tf.ones([size])
    chained(v, tf.constant(2)).numpy()  # trace, connect
    start = time.perf_counter()
    chained(v, tf.constant(iterations)).numpy()
    results[size] = (time.perf_counter() - start) / iterations

@tf.function(jit_compile=True)
def compiled(v):
    return strategy.run(step, args=(v,))

try:
    compiled(tf.ones([4]))
    xla = "compiled and ran"
except Exception as exc:  # the point: what TensorFlow says
    xla = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}"
if chief:
    print(json.dumps({"seconds": results, "xla": xla}))
"""


def run(iterations: int, sizes: list[int], timeout: float) -> dict:
    """One two-worker cluster: ``{"seconds": {size: per all-reduce}, "xla": outcome}``."""
    from training.cluster import loopback_tf_configs

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(iterations), json.dumps(sizes),
                               str(timeout)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=dict(env, TF_CONFIG=json.dumps(c)))
             for c in loopback_tf_configs(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: exit {[p.returncode for p in procs]}: "
                         f"{outs[0][1][-1500:]}")
    return json.loads(outs[0][0].strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--sizes", default="1,95370", help="float32 elements, comma-separated")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from utils.cli import quiet_tensorflow

    quiet_tensorflow()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"two workers on 127.0.0.1, {args.iterations} chained all-reduces per size; "
          f"load average {os.getloadavg()[0]:.1f}")
    for timeout in (0.0, 60.0):
        result = run(args.iterations, sizes, timeout)
        label = f"timeout_seconds={timeout:g}" if timeout else "no timeout"
        for size, seconds in result["seconds"].items():
            print(f"  {label:20s} {int(size) * 4:>9,} bytes: {float(seconds) * 1e6:8.0f} us "
                  "per all-reduce")
    print(f"  XLA (jit_compile=True) all-reduce on CPU: {result['xla']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
