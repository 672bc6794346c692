#!/usr/bin/env python3
"""int8 artifacts of quantization-aware (QAT) runs: agreement and accuracy per runtime.

Each run is what a user does on the command line: ``train.py`` for the float
epochs, then ``train.py --out RUN --resume --qat-epochs K``, then
``python -m export RUN/model.keras --formats tflite,onnx --quantize int8
--representative-data digits`` (via ``export.export_model``, trained ranges,
validated). The TFLite Micro file is converted by ``export.micro`` from the
same frozen graph (trained ranges) and run in the TFLite Micro interpreter
directly, so that the figure exists even where the export refuses it on the
LiteRT step comparison. Every artifact runs through ``export.runtime`` on the
1,000 held-out digits (test split):

* ``agree``: top-1 agreement with the QAT Keras model;
* ``acc``: test accuracy in that runtime, next to the float model's (the one the
  QAT started from), ``float``.

Also reported: the median float and QAT epoch times (first epoch of each
phase, which compiles, left out).

    .venv/bin/python bench/qat_int8.py --json bench/qat_int8.json
    .venv/bin/python bench/qat_int8.py --runs exam_mlp:0:8 --qat-epochs 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# model:seed:float_epochs; exam_mlp over 5 seeds and two lengths, lenet5 and residual_mlp 3 seeds.
DEFAULT_RUNS = ([f"exam_mlp:{s}:{e}" for e in (8, 20) for s in range(5)]
                + [f"lenet5:{s}:10" for s in range(3)] + [f"residual_mlp:{s}:10" for s in range(3)])


def _epoch_times(history, first_qat: int) -> tuple[float, float]:
    times = [r["time_s"] for r in history]
    return (statistics.median(times[1:first_qat]), statistics.median(times[first_qat + 1:]))


def run_one(spec: str, qat_epochs: int, bundle, scratch: Path) -> dict:
    import numpy as np

    import export
    import training
    from export import micro, micro_runtime, qat, runtime
    name, seed, epochs = spec.split(":")
    out = scratch / spec.replace(":", "_")
    base = dict(model=name, seed=int(seed), epochs=int(epochs), out=str(out), quiet=True)
    float_run = training.train(training.TrainConfig(**base), log=lambda *a: None)
    float_model = float_run.model
    result = training.train(training.TrainConfig(**base, qat_epochs=qat_epochs), resume=True,
                            log=lambda *a: None)
    x, _ = bundle.as_numpy("train")
    xt, yt = bundle.as_numpy("test")
    exported = out / "export"
    export.export_model(out / "model.keras", exported, formats=("tflite", "onnx"),
                        quantize=("int8",), representative_data=x, validation_data=xt)
    graph = qat.export_graph(runtime.load_keras_model(out / "model.keras"))
    micro.to_tflite_micro(graph, exported / "model_micro.tflite", representative_data=x,
                          trained_ranges=True)
    arena = micro_runtime.arena_with_margin(micro_runtime.smallest_arena(
        exported / "model_micro.tflite"))
    keras_top1 = np.asarray(graph.predict(xt, verbose=0)).argmax(1)
    row = {"run": spec, "qat_epochs": qat_epochs,
           "float": float(np.mean(np.asarray(float_model.predict(xt, verbose=0)).argmax(1) == yt)),
           "qat_keras": float(np.mean(keras_top1 == yt))}
    runners = {"litert": runtime.load_artifact(exported / "model_int8.tflite"),
               "onnxruntime": runtime.load_artifact(exported / "model_int8.onnx"),
               "tflite_micro": micro_runtime.TFLiteMicroRunner(exported / "model_micro.tflite",
                                                               arena_size=arena)}
    for key, runner in runners.items():
        top1 = np.concatenate([runner.run([xt[i:i + 100]])[0] for i in range(0, len(xt), 100)]
                              ).argmax(1)
        row[f"{key}_agree"] = float(np.mean(top1 == keras_top1))
        row[f"{key}_acc"] = float(np.mean(top1 == yt))
    row["float_epoch_s"], row["qat_epoch_s"] = _epoch_times(result.history, int(epochs))
    return row


def table(rows) -> str:
    head = ("| run (model:seed:float epochs) | float acc | QAT Keras acc | LiteRT agree / acc "
            "| onnxruntime agree / acc | TFLite Micro agree / acc | float / QAT epoch s |")
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        cells = [f"{r[k + '_agree']:.1%} / {r[k + '_acc']:.1%}"
                 for k in ("litert", "onnxruntime", "tflite_micro")]
        lines.append(f"| {r['run']} | {r['float']:.1%} | {r['qat_keras']:.1%} | "
                     + " | ".join(cells) + f" | {r['float_epoch_s']:.2f} / {r['qat_epoch_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=",".join(DEFAULT_RUNS), help="model:seed:epochs,...")
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    import data
    bundle = data.load_dataset("digits", batch_size=64)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-qat-") as scratch:
        for spec in args.runs.split(","):
            rows.append(run_one(spec, args.qat_epochs, bundle, Path(scratch)))
            print(json.dumps(rows[-1]), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
