#!/usr/bin/env python3
"""What the toolkit adds to the converters' time: MobileNetV2 (no weights) at 96x96.

Ours: ``export.export_model`` to saved_model + onnx + tflite (float32), every
artifact validated in its runtime. Alone: tf2onnx (``from_function``) plus
``tf.lite.TFLiteConverter.from_keras_model`` on the same model, files written.
Each side runs once untimed (first traces, imports), then ``--runs`` times,
interleaved so that the load of a shared machine hits both alike; the ratio
of the medians is printed.

    .venv/bin/python bench/apps_export_time.py --runs 3
    .venv/bin/python bench/apps_export_time.py --profile ours.prof   # cProfile one run of ours
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUILDER, SIZE = "MobileNetV2", 96


def ours(model, x, out: Path) -> None:
    from export.exporter import export_model
    export_model(model, out, formats=("saved_model", "onnx", "tflite"), representative_data=x)


def converters_alone(model, out: Path) -> None:
    import tensorflow as tf
    import tf2onnx
    out.mkdir()
    spec = [tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="input")]
    fn = tf.function(lambda x: model(x, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec)
    (out / "model.onnx").write_bytes(proto.SerializeToString())
    (out / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="timed runs of each side (median)")
    p.add_argument("--profile", default=None, help="write a cProfile of one run of ours here")
    args = p.parse_args(argv)
    from export import apps_builders
    from utils.tf_quiet import silenced_stderr_fd
    model, _, _, x = apps_builders.build_application(BUILDER, SIZE)
    times = {"ours": [], "alone": []}
    with tempfile.TemporaryDirectory(prefix="bench-apps-") as scratch:
        def timed(side, i):
            out = Path(scratch) / f"{side}{i}"
            start = time.perf_counter()
            with silenced_stderr_fd():
                ours(model, x, out) if side == "ours" else converters_alone(model, out)
            return time.perf_counter() - start
        timed("ours", "warm"), timed("alone", "warm")
        if args.profile:
            import cProfile
            cProfile.runctx("timed('ours', 'profile')", globals(), locals(), args.profile)
        for i in range(args.runs):
            for side in times:
                times[side].append(timed(side, i))
    med = {side: statistics.median(t) for side, t in times.items()}
    for side, t in times.items():
        print(f"{side:>5}: median {med[side]:.2f} s over {len(t)} runs "
              f"({', '.join(f'{s:.2f}' for s in t)})")
    print(f"ratio ours / converters alone: {med['ours'] / med['alone']:.2f} "
          f"({BUILDER} {SIZE}x{SIZE}, no weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
