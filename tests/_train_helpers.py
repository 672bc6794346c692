"""Shared fixtures for the training tests: small, fast, real runs."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def small_config(out, **overrides):
    """A dropout MLP on 640 real digits (448 train = 14 batches of 32): learns in a few epochs, ~1 s per run after tracing."""
    from training import TrainConfig

    values = dict(model="deep_mlp", model_overrides={"depth": 2, "width": 32, "dropout": 0.3},
                  num_classes="auto", dataset="digits", limit=640, epochs=3, batch_size=32,
                  lr=3e-3, seed=7, steps_per_execution=7, out=str(out), quiet=True)
    values.update(overrides)
    return TrainConfig(**values)


def weights(model):
    return [np.asarray(v.numpy()) for v in model.variables]


def assert_bitwise_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)


def sigterm_after_epoch(k):
    """A callback that sends this process SIGTERM once epoch ``k`` is checkpointed."""
    def callback(record, model):
        if record["epoch"] == k:
            os.kill(os.getpid(), signal.SIGTERM)
    return callback


def run_cli(*args, timeout=300):
    """Run train.py in a subprocess; returns CompletedProcess with text output."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def error_lines(stderr: str) -> list[str]:
    """stderr lines that are ours (TensorFlow's C++ start-up chatter filtered out)."""
    return [l for l in stderr.splitlines() if l.startswith("train.py")]


def converted_digits(tmp):
    """small_config's 640 digits (its three splits pooled) converted into a streamed set in
    ``tmp``; the converter splits them anew, so it is a set of its own, not small_config's."""
    import data

    bundle = data.load_dataset("digits", limit=640)
    x = np.concatenate([bundle.as_numpy(s)[0] for s in ("train", "val", "test")])
    y = np.concatenate([bundle.as_numpy(s)[1] for s in ("train", "val", "test")])
    np.savez(tmp / "d.npz", x=np.rint(x[..., 0] * 255).astype(np.uint8), y=y)
    return str(data.convert(tmp / "d.npz", tmp / "ds", shards=2, progress=False))
