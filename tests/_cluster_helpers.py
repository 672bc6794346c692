"""Two-worker MultiWorkerMirroredStrategy clusters on 127.0.0.1 for the training tests.

Every worker is a real process with its own ``TF_CONFIG`` (ports picked by
``training.cluster.loopback_tf_configs``). Two kinds of worker:

* :func:`cluster` runs ``training.train`` and dumps the worker's final weights
  and result (a non-chief writes nothing into ``--out``);
* :func:`cli_cluster` runs ``train.py``'s own ``main`` under ``run_cli`` (its
  messages and exit status are what users get) and can make one worker
  misbehave once its first epoch is over: ``kill`` (SIGKILL), ``hang`` (sleep
  with every thread alive, which TensorFlow does not notice).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

from _train_helpers import ROOT

# Batch 45 on 448 training images: every global batch splits 23 + 22 between
# the workers and the last one is partial (43 = 22 + 21), so the loss must be
# normalised by the global count, not local count x replicas.
CONFIG = {"model_overrides": {"depth": 2, "width": 32}, "epochs": 2, "batch_size": 45,
          "steps_per_execution": 4}
# The same run through train.py's flags (small_config's other values are its defaults).
CLI_ARGS = ["--model", "deep_mlp", "--model-arg", "depth=2", "--model-arg", "width=32",
            "--num-classes", "auto", "--limit", "640", "--epochs", "2", "--batch-size", "45",
            "--steps-per-execution", "4", "--seed", "7", "--quiet", "--strategy", "multiworker"]

_WORKER = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from _train_helpers import small_config, weights
from training import train
cfg = json.loads(sys.argv[3])
resume = cfg.pop("resume", False)
res = train(small_config(sys.argv[1], **cfg), resume=resume)
np.savez(sys.argv[4], *weights(res.model))
with open(sys.argv[4] + ".json", "w") as f:
    json.dump({"chief": res.chief, "history": res.history,
               "test_accuracy": res.test_accuracy}, f)
"""

_CLI_WORKER = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import training
from _train_helpers import weights
dump, misbehave = sys.argv[2], sys.argv[3]
real_train = training.train

def after_first_epoch(record, model):
    if record["epoch"] == 1:
        if misbehave == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(600)  # "hang": every thread (heartbeats included) goes on

def train(config, **kwargs):
    result = real_train(config, callbacks=[after_first_epoch] if misbehave != "-" else [],
                        **kwargs)
    np.savez(dump, *weights(result.model))
    return result

training.train = train
import train as train_cli
from utils.cli import run_cli
sys.exit(run_cli(train_cli.main, sys.argv[4:], prog="train.py"))
"""


def env(tf_config=None):
    values = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    values.pop("TF_CONFIG", None)
    if tf_config is not None:
        values["TF_CONFIG"] = json.dumps(tf_config)
    return values


def run_worker(out, config, dump, tf_config=None):
    """One ``training.train`` process (a single process when ``tf_config`` is None)."""
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(out), str(ROOT / "tests"), json.dumps(config),
         str(dump)], cwd=ROOT, env=env(tf_config), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def load(dump):
    """``(weights, result)`` dumped by a worker (``result`` only from :func:`cluster`)."""
    with np.load(str(dump) + ".npz") as f:
        arrays = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    result = dump.parent / (dump.name + ".json")
    return arrays, json.loads(result.read_text()) if result.is_file() else None


def cluster(out, tmp_path, tag, extra=None):
    """A fresh two-worker cluster of ``training.train`` on loopback; its processes."""
    from training.cluster import loopback_tf_configs

    return [run_worker(out, {**CONFIG, "strategy": "multiworker", **(extra or {})},
                       tmp_path / f"{tag}{i}", tf_config)
            for i, tf_config in enumerate(loopback_tf_configs(2))]


def cli_cluster(tmp_path, tag, args, misbehave=None):
    """A fresh two-worker cluster of ``train.py`` processes (``args``); ``misbehave``
    is ``(worker index, "kill" | "hang")`` or None."""
    from training.cluster import loopback_tf_configs

    bad = dict([misbehave]) if misbehave else {}
    return [subprocess.Popen(
        [sys.executable, "-c", _CLI_WORKER, str(ROOT / "tests"), str(tmp_path / f"{tag}{i}"),
         bad.get(i, "-"), *map(str, args)], cwd=ROOT, env=env(tf_config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i, tf_config in enumerate(loopback_tf_configs(2))]


def wait_all(procs, timeout=180, codes=None):
    """Wait for every process (one bound for all); kill the rest if one fails or hangs.

    Returns:
        Each process's ``(returncode, stderr)``. Raises AssertionError when a
        return code differs from ``codes`` (default: all 0).
    """
    deadline = time.monotonic() + timeout
    results = []
    try:
        for p, code in zip(procs, codes or [0] * len(procs)):
            _, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert p.returncode == code, stderr[-3000:]
            results.append((p.returncode, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results
