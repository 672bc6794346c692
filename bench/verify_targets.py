#!/usr/bin/env python3
"""Trained models on another CPU and another vendor's engine: ``export verify``'s figures.

Each model is trained briefly as ``train.py`` trains it (``training.train``),
exported with ``--formats tflite,onnx --quantize none,int8
--representative-data digits`` (``export.export_model``, validated on x86),
then verified with ``python -m export verify`` (``export.verify_export``) on
``--target aarch64`` (QEMU, ``--cpu cortex-a72`` by default) and on
``--target openvino``. Every cell is judged by the export validation's rules on
its batches (1 and 7 held-out digits; int8: top-1 agreement on the 1,000
held-out digits):

* float32: max |diff| vs Keras, then vs the same kernels on x86;
* int8: top-1 agreement with Keras, then with x86 (and the int8 output steps
  from x86 where the output is an int8 tensor);
* the time: milliseconds the runtime took for all those batches (under QEMU:
  emulated time, not a device's), not counting the process start.

The x86 column is the export's own validation (LiteRT XNNPACK for ``.tflite``,
onnxruntime for ``.onnx``); its time is the same runner, one thread as in the
emulated worker, timed here on the same batches. Needs the emulated root:
``python -m export verify --build-root`` once per machine.

    .venv/bin/python bench/verify_targets.py
    .venv/bin/python bench/verify_targets.py --runs exam_mlp:20 --cpu cortex-a53
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# model:epochs, each trained with seed 0 at train.py's other defaults.
DEFAULT_RUNS = ("exam_mlp:20", "lenet5:3", "deep_mlp_8x64:5")
COLUMNS = (("x86", "x86 (export validation)"), ("xnnpack", "aarch64 LiteRT XNNPACK"),
           ("builtin", "aarch64 LiteRT builtin"), ("onnxruntime", "aarch64 onnxruntime"),
           ("openvino", "OpenVINO CPU f32"))


def _x86_seconds(path: Path, xt, int8: bool) -> float:
    """Seconds of the x86 runner of ``path`` on the validation's batches."""
    from export.validate import AGREEMENT_SAMPLES, VALIDATION_BATCHES
    from export.verify_worker import load_runner
    runner = load_runner(path, "onnxruntime" if path.suffix == ".onnx" else "xnnpack")
    batches = [xt[:b] for b in VALIDATION_BATCHES]
    if int8:  # the agreement samples, in the validation's chunks of 256
        batches += [xt[i:i + 256] for i in range(0, min(len(xt), AGREEMENT_SAMPLES), 256)]
    start = time.perf_counter()
    for batch in batches:
        runner.run([batch])
    return time.perf_counter() - start


def run_one(spec: str, cpu: str, bundle, scratch: Path) -> list[dict]:
    """One row per artifact of ``spec``'s export: ``{column key: cell dict}``."""
    import export
    import training
    from export.verify import verify_export
    name, epochs = spec.split(":")
    out = scratch / name
    with contextlib.redirect_stdout(sys.stderr):  # the epoch lines; stdout is the table
        training.train(training.TrainConfig(model=name, epochs=int(epochs), out=str(out),
                                            quiet=True), log=lambda *a: None)
    x, _ = bundle.as_numpy("train")
    xt, _ = bundle.as_numpy("test")
    exported = out / "export"
    export.export_model(out / "model.keras", exported, formats=("tflite", "onnx"),
                        quantize=(None, "int8"), representative_data=x, validation_data=xt)
    walls = {}
    for target in ("aarch64", "openvino"):
        start = time.perf_counter()
        manifest = verify_export(exported, target=target, cpu=cpu if target == "aarch64" else None,
                                 data=xt)
        walls[target] = round(time.perf_counter() - start, 1)
    rows = []
    for a in manifest["artifacts"]:
        seconds = _x86_seconds(exported / a["path"], xt, a.get("quantization") == "int8")
        row = {"model": spec, "artifact": a["path"], "wall_s": walls,
               "x86": {"vs_keras": a["validation"], "seconds": seconds}}
        for key, record in a["verification"].items():
            row[key.rsplit("/", 1)[-1]] = record
        rows.append(row)
    return rows


def _cell(record: dict | None) -> str:
    if record is None:
        return "—"
    keras, x86 = record["vs_keras"], record.get("vs_x86")
    if "top1_agreement" in keras:
        figure = f"{keras['top1_agreement']:.1%}" + (
            f" / {x86['top1_agreement']:.1%}" if x86 else "")
        steps = record.get("int8_steps_vs_x86")
        figure += f", {steps:g} steps" if steps is not None else ""
    else:
        figure = f"{keras['max_abs_diff']:.1e}" + (f" / {x86['max_abs_diff']:.1e}" if x86 else "")
    if record.get("delegate"):
        figure += " (DELEGATE)"
    return f"{figure}; {record['seconds'] * 1000:.1f} ms"


def table(rows) -> str:
    lines = ["| model:epochs | artifact | " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "---|" * (len(COLUMNS) + 2)]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['artifact']}` | "
                     + " | ".join(_cell(r.get(key)) for key, _ in COLUMNS) + " |")
    walls = {r["model"]: r["wall_s"] for r in rows}
    lines.append("")
    lines.append("Wall time of `export verify` per model (process starts included): " + "; ".join(
        f"{m} aarch64 {w['aarch64']} s, openvino {w['openvino']} s" for m, w in walls.items()))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=",".join(DEFAULT_RUNS), help="model:epochs,...")
    p.add_argument("--cpu", default="cortex-a72", help="emulated CPU of the aarch64 target")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    import data
    bundle = data.load_dataset("digits")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as scratch:
        for spec in args.runs.split(","):
            rows += run_one(spec, args.cpu, bundle, Path(scratch))
            print(f"{spec}: done", file=sys.stderr, flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1))
    print(table(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
