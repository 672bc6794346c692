"""Throughput of train.py's strategy paths, each next to the single process in the same run.

Every figure comes from a real ``train.py`` process (the command users run),
read from the ``samples_per_s`` that train.py writes into ``history.json``
for epochs 2.. (epoch 1 holds the start-up and the compiles). ``multiworker``
launches a cluster of ``--workers`` processes on 127.0.0.1 itself (TF_CONFIG
with free loopback ports); its figure is the chief's, which counts the samples
of every worker, i.e. the cluster's total. The paths of one repetition run
back to back (single, then each strategy), so a change of machine load
touches all of them alike; the load average is recorded beside each run.

The data: the 5,000 real MNIST digits of the default ``digits`` set repeated
``copies`` times into a ``.npz`` (6 copies: 21,000 training images, the
set-up of docs/training.md), held in memory by every process.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("mirrored", "multiworker")


def write_digits_copies(path: Path, copies: int) -> Path:
    """All 5,000 digits (every split of ``digits``), repeated ``copies`` times, as x/y in a .npz."""
    import numpy as np

    import data

    bundle = data.load_dataset("digits")
    parts = [bundle.as_numpy(split) for split in ("train", "val", "test")]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    np.savez(path, x=np.tile(x, (copies, 1, 1, 1)), y=np.tile(y, copies))
    return path


def _train_command(model: str, dataset: Path, batch: int, epochs: int, seed: int, out: Path,
                   strategy: str | None) -> list[str]:
    cmd = [sys.executable, str(ROOT / "train.py"), "--model", model, "--num-classes", "auto",
           "--dataset", str(dataset), "--epochs", str(epochs), "--batch-size", str(batch),
           "--seed", str(seed), "--out", str(out), "--quiet"]
    return cmd + (["--strategy", strategy] if strategy else [])


def _wait(procs: list, timeout: float) -> None:
    """Wait for every process of one run; stop all of them if one fails or the time is up."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if p.returncode != 0:
                tail = " | ".join(err.strip().splitlines()[-3:])
                raise RuntimeError(f"a train.py process exited {p.returncode}: {tail}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def run_once(strategy: str | None, model: str, dataset: Path, batch: int, epochs: int, seed: int,
             workdir: Path, workers: int = 2, timeout: float = 600) -> dict:
    """One train.py run (a cluster of ``workers`` processes for multiworker).

    Returns:
        ``{"samples_per_s": median over epochs 2.., "epochs": every epoch's figure,
        "load": 1-minute load average before the run}``.
    """
    out = workdir / f"{strategy or 'single'}-{batch}-{seed}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.pop("TF_CONFIG", None)
    cmd = _train_command(model, dataset, batch, epochs, seed, out, strategy)
    load = os.getloadavg()[0]
    if strategy == "multiworker":
        from training.cluster import loopback_tf_configs

        procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, env=dict(env, TF_CONFIG=json.dumps(tf_config)))
                 for tf_config in loopback_tf_configs(workers)]
    else:
        procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, env=env)]
    _wait(procs, timeout)
    rates = [r["samples_per_s"] for r in json.loads((out / "history.json").read_text())]
    return {"samples_per_s": statistics.median(rates[1:]), "epochs": rates, "load": load}


def compare(strategies: list[str], model: str, batch_sizes: list[int], epochs: int, repeats: int,
            copies: int, workers: int = 2, log=print) -> list[dict]:
    """Median throughput of the single process and of each strategy, per batch size.

    Returns:
        One row per (batch size, path): ``{"batch_size", "path", "samples_per_s"
        (median over repetitions), "runs", "loads", "ratio" (to the single process
        of the same repetitions)}``.
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-strategy-") as tmp:
        dataset = write_digits_copies(Path(tmp) / f"digits_x{copies}.npz", copies)
        for batch in batch_sizes:
            runs: dict = {None: [], **{s: [] for s in strategies}}
            for rep in range(repeats):
                for strategy in runs:
                    result = run_once(strategy, model, dataset, batch, epochs, rep, Path(tmp),
                                      workers)
                    runs[strategy].append(result)
                    log(f"  batch {batch:4d} rep {rep + 1}/{repeats} {strategy or 'single':12s} "
                        f"{result['samples_per_s']:>10,.0f} samples/s  (load {result['load']:.1f})")
            single = statistics.median(r["samples_per_s"] for r in runs[None])
            for strategy, results in runs.items():
                median = statistics.median(r["samples_per_s"] for r in results)
                # Ratio of medians, and the median of the per-repetition ratios
                # (each against the single run right before it: same load).
                per_rep = [r["samples_per_s"] / s["samples_per_s"]
                           for r, s in zip(results, runs[None])]
                rows.append({"batch_size": batch, "path": strategy or "single",
                             "workers": workers if strategy == "multiworker" else 1,
                             "samples_per_s": median, "ratio": median / single,
                             "ratio_per_repeat_median": statistics.median(per_rep),
                             "runs": [r["samples_per_s"] for r in results],
                             "loads": [r["load"] for r in results]})
    return rows


def print_table(rows: list[dict], model: str, repeats: int, log=print) -> None:
    log(f"\n{model}: samples/s (all workers together), median of {repeats}; "
        "ratio = to the single process")
    log(f"{'path':24s} {'batch':>6s} {'samples/s':>11s} {'ratio':>6s} {'ratio/rep':>9s}  loads")
    for r in rows:
        name = r["path"] + (f" ({r['workers']} workers)" if r["path"] == "multiworker" else "")
        loads = " ".join(f"{x:.1f}" for x in r["loads"])
        log(f"{name:24s} {r['batch_size']:6d} {r['samples_per_s']:11,.0f} {r['ratio']:6.2f} "
            f"{r['ratio_per_repeat_median']:9.2f}  {loads}")
