#!/usr/bin/env python3
"""Training throughput: train.py's own training path vs a plain PyTorch eager loop.

Same model architecture, batch size, optimizer (Adam, lr 1e-3), data (the 3,500
in-memory training images of "digits", reshuffled every epoch) and thread
count. TensorFlow runs through ``training.train`` (exactly what train.py calls:
XLA-compiled step, ``steps_per_execution`` steps per call, in-memory tf.data);
its samples/s are the per-epoch figures train.py itself logs (the first epoch,
which includes tracing/compilation, is dropped). PyTorch is the loop most
people write: per-epoch randperm, index the tensors, forward, loss, backward,
step, timed with 1 thread and with all threads, keeping the faster (its OpenMP
pool slows down a lot on shared cores). Each repetition is a fresh run
(fresh model, fresh compile); the report gives the median over repetitions
of the median over epochs.

    .venv/bin/python bench/train_throughput.py --repeats 5 --epochs 6
    .venv/bin/python bench/train_throughput.py --json bench/results.json

PyTorch is optional (pip install torch==2.13.0); without it only TF is timed.

``--strategy mirrored,multiworker`` times train.py's tf.distribute paths
instead, each next to the single process in the same run (bench/strategy_runs.py;
multiworker launches a loopback cluster of ``--workers`` processes itself):

    .venv/bin/python bench/train_throughput.py --strategy mirrored,multiworker \
        --batch-size 64,512 --repeats 3 --epochs 4
"""
from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.cli import ArgumentParser, quiet_tensorflow, run_cli  # noqa: E402

MODELS = ("exam_mlp", "deep_mlp_8x64")
STRATEGY_MODEL = "deep_mlp_8x64"  # the model of docs/training.md's distributed figures


def _torch_model(name: str):
    import torch.nn as nn

    if name == "exam_mlp":
        # Flatten -> 5 -> 10 -> 10 -> 1000, ReLU hidden; softmax is inside the CE loss.
        sizes, out = [1024, 5, 10, 10], 1000
    elif name == "deep_mlp_8x64":
        sizes, out = [1024] + [64] * 8, 10
    else:
        raise ValueError(f"No PyTorch twin for {name!r}; choose one of {MODELS}.")
    layers = [nn.Flatten()]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


def torch_run(name: str, x, y, batch_size: int, epochs: int, threads: int, seed: int) -> list:
    """Samples/s of each epoch of a plain eager PyTorch loop."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = _torch_model(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NCHW, as PyTorch users hold it
    yt = torch.from_numpy(y)
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(yt))
        total = torch.zeros(())
        for start in range(0, len(yt), batch_size):
            idx = perm[start:start + batch_size]
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach()
        float(total)  # the one sync per epoch a logging loop needs
        rates.append(len(yt) / (time.perf_counter() - t0))
    return rates


def tf_run(name: str, batch_size: int, epochs: int, seed: int, out: Path, **config) -> list:
    """Samples/s of each epoch of training.train (train.py's path), as train.py logs them."""
    from training import TrainConfig, train

    cfg = TrainConfig(model=name, dataset="digits", epochs=epochs, batch_size=batch_size, lr=1e-3,
                      optimizer="adam", seed=seed, out=str(out), quiet=True, **config)
    with contextlib.redirect_stdout(io.StringIO()):  # train.py's per-epoch lines
        result = train(cfg, log=lambda *a: None)
    return [r["samples_per_s"] for r in result.history]


def keras_fit_run(name: str, x, y, batch_size: int, epochs: int, seed: int) -> list:
    """Samples/s of each epoch of plain ``model.fit`` with defaults (the usual starting point)."""
    import keras

    import models

    keras.utils.set_random_seed(seed)
    model = models.create_model(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    times = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: times.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: times.__setitem__(-1, time.perf_counter() - times[-1]))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
              callbacks=[timer])
    return [len(y) / t for t in times]


def main(argv=None) -> int:
    p = ArgumentParser(prog="bench/train_throughput.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None,
                   help=f"default {','.join(MODELS)}; with --strategy, {STRATEGY_MODEL}")
    p.add_argument("--batch-size", default="64",
                   help="train.py's default; with --strategy a comma-separated list, e.g. 64,512")
    p.add_argument("--epochs", type=int, default=6, help="per repetition; the first is dropped")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--keras-fit", action="store_true",
                   help="also time plain model.fit with defaults, for reference")
    p.add_argument("--strategy", metavar="LIST",
                   help="time these train.py --strategy paths (mirrored, multiworker) next to the "
                   "single process, as train.py subprocesses; multiworker = a loopback cluster")
    p.add_argument("--workers", type=int, default=2, help="multiworker cluster size (default 2)")
    p.add_argument("--copies", type=int, default=6,
                   help="with --strategy: the 5,000 digits repeated N times (6: 21,000 training "
                   "images)")
    args = p.parse_args(argv)
    if args.epochs < 2 or args.repeats < 1:
        p.error("--epochs must be >= 2 (the first is warm-up) and --repeats >= 1.")
    try:
        batch_sizes = [int(b) for b in args.batch_size.split(",")]
    except ValueError:
        p.error(f"--batch-size takes integers separated by commas; received {args.batch_size!r}.")
    quiet_tensorflow()
    if args.strategy is not None:
        return _strategy_main(p, args, batch_sizes)
    if len(batch_sizes) != 1:
        p.error("several --batch-size values need --strategy.")
    args.batch_size = batch_sizes[0]
    args.models = args.models or ",".join(MODELS)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
    import data

    x, y = data.load_dataset("digits").as_numpy("train")
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("PyTorch not installed (pip install torch==2.13.0): timing TensorFlow only.")
    results = []
    for name in args.models.split(","):
        tf_rates, torch_rates, fit_rates = [], [], []
        for rep in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                rates = tf_run(name, args.batch_size, args.epochs, rep, Path(tmp) / "run")
            tf_rates.append(statistics.median(rates[1:]))
            if args.keras_fit:
                fit_rates.append(statistics.median(
                    keras_fit_run(name, x, y, args.batch_size, args.epochs, rep)[1:]))
            if have_torch:
                # PyTorch's OpenMP pool degrades badly when the cores are shared; its
                # baseline is the faster of 1 thread and all threads (the fairest for it).
                torch_rates.append(max(
                    statistics.median(torch_run(name, x, y, args.batch_size, args.epochs,
                                                threads, rep)[1:])
                    for threads in sorted({1, args.threads})))
        row = {"model": name, "batch_size": args.batch_size, "threads": args.threads,
               "repeats": args.repeats, "tf_samples_per_s": statistics.median(tf_rates),
               "tf_runs": tf_rates}
        if have_torch:
            row.update(torch_samples_per_s=statistics.median(torch_rates), torch_runs=torch_rates,
                       ratio=statistics.median(tf_rates) / statistics.median(torch_rates))
        if fit_rates:
            row.update(keras_fit_samples_per_s=statistics.median(fit_rates), keras_fit_runs=fit_rates)
        results.append(row)
        ratio = f"  ratio {row['ratio']:.2f}x" if have_torch else ""
        torch_txt = f"  torch {row['torch_samples_per_s']:>10,.0f}" if have_torch else ""
        fit_txt = (f"  model.fit {row['keras_fit_samples_per_s']:>10,.0f}" if fit_rates else "")
        print(f"{name:15s} batch {args.batch_size}  train.py {row['tf_samples_per_s']:>10,.0f}"
              f"{torch_txt}{fit_txt} samples/s{ratio}  (median of {args.repeats})", flush=True)
    if args.json:
        from utils.io import atomic_write_json
        atomic_write_json(args.json, results)
    return 0


def _strategy_main(p, args, batch_sizes) -> int:
    import strategy_runs

    strategies = args.strategy.split(",")
    unknown = sorted(set(strategies) - set(strategy_runs.STRATEGIES))
    if unknown:
        p.error(f"unknown --strategy {','.join(unknown)}; choose from "
                f"{','.join(strategy_runs.STRATEGIES)}.")
    if args.workers < 2 or args.copies < 1:
        p.error("--workers must be >= 2 and --copies >= 1.")
    model = args.models or STRATEGY_MODEL
    print(f"{model}: single process vs {', '.join(strategies)}; {args.repeats} repetitions of "
          f"{args.epochs} epochs; load average now {os.getloadavg()[0]:.1f}", flush=True)
    rows = strategy_runs.compare(strategies, model, batch_sizes, args.epochs, args.repeats,
                                 args.copies, args.workers,
                                 log=lambda *a: print(*a, flush=True))
    strategy_runs.print_table(rows, model, args.repeats)
    if args.json:
        from utils.io import atomic_write_json
        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="train_throughput.py"))
