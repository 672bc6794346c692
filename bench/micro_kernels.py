#!/usr/bin/env python3
"""Where TFLite Micro and LiteRT part on an int8 file, op by op, against numpy.

Trains a registered model briefly (``export.matrix_models.train_briefly``, as
the matrices do) or takes a ``.keras`` file, exports it to ``tflite_micro``
unvalidated, and rewrites the flatbuffer (TensorFlow's own schema module) so
that every operator's output is also a graph output. Both interpreters run
that file on the held-out digits: TFLite Micro's, and LiteRT's with its
reference kernels (``BUILTIN_REF``; ``--litert-kernels builtin``: its optimized
ones). Printed per operator: the largest
difference between the two, in int8 steps of that tensor. Each
FULLY_CONNECTED is also recomputed in numpy from the tensor each engine fed
it, ``round(((q_in - z_in) . q_w + bias) * s_in * s_w / s_out) + z_out``
(clamped by its fused activation), and the outputs each engine got wrong are
counted. Last, how often the two engines' final outputs make the same top-1
decision.

    .venv/bin/python bench/micro_kernels.py --model residual_mlp
    .venv/bin/python bench/micro_kernels.py --keras runs/lenet/model.keras --samples 300
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def every_output_visible(src: Path, dst: Path) -> list[str]:
    """Copy ``src`` with every operator's first output added to the graph outputs."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    names = [codes[max(model.operatorCodes[op.opcodeIndex].builtinCode,
                       model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
             for op in graph.operators]
    graph.outputs = np.array([int(op.outputs[0]) for op in graph.operators], np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(builder.Output())
    return names


def fully_connected(interp, op, q_in) -> np.ndarray:
    """The exact int8 FULLY_CONNECTED of ``op`` on ``q_in``, before activation clamping."""
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    i, w, b = (int(t) for t in op["inputs"][:3])
    o = int(op["outputs"][0])
    s_in, z_in = tensors[i]["quantization"]
    s_out, z_out = tensors[o]["quantization"]
    s_w = tensors[w]["quantization_parameters"]["scales"]
    weights = interp.get_tensor(w).astype(np.int64)
    bias = interp.get_tensor(b).astype(np.int64) if b >= 0 else 0
    acc = (q_in.astype(np.int64).reshape(1, -1) - z_in) @ weights.T + bias
    return np.clip(np.round(acc * (s_in * s_w / s_out)) + z_out, -128, 127)


def compare(path: Path, x: np.ndarray, kernels: str = "reference") -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro import runtime
    with tempfile.TemporaryDirectory() as tmp:
        visible = Path(tmp) / "visible.tflite"
        names = every_output_visible(path, visible)
        ref = Interpreter(model_path=str(visible), experimental_preserve_all_tensors=True,
                          experimental_op_resolver_type=OpResolverType.BUILTIN_REF
                          if kernels == "reference"
                          else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        ref.allocate_tensors()
        micro = runtime.Interpreter.from_file(str(visible), arena_size=1 << 24)
    ops = ref._get_ops_details()
    inp = ref.get_input_details()[0]
    outs = ref.get_output_details()
    scale, zero = inp["quantization"]
    steps = np.zeros(len(names), int)
    wrong = {j: [0, 0, 0] for j, n in enumerate(names) if n == "FULLY_CONNECTED"}
    same = 0
    for xi in x:
        q = np.clip(np.round(xi / scale) + zero, -128, 127).astype(np.int8)[None]
        ref.set_tensor(inp["index"], q)
        ref.invoke()
        micro.set_input(q, 0)
        micro.invoke()
        got_ref = [ref.get_tensor(d["index"]).astype(int) for d in outs]
        got_micro = [micro.get_output(j).astype(int) for j in range(len(names))]
        steps = np.maximum(steps, [np.abs(a - b).max() for a, b in zip(got_ref, got_micro)])
        same += int(got_ref[-1].argmax() == got_micro[-1].argmax())
        for j in wrong:
            # Each engine's own input to this op: the previous op's output, or the image.
            src = int(ops[j]["inputs"][0])
            prev = [k for k, op in enumerate(ops) if int(op["outputs"][0]) == src]
            in_ref = got_ref[prev[0]] if prev else q
            in_micro = got_micro[prev[0]] if prev else q
            floor = min(got_ref[j].min(), got_micro[j].min())  # a fused ReLU's clamp
            exact_ref = np.maximum(fully_connected(ref, ops[j], in_ref), floor)
            exact_micro = np.maximum(fully_connected(ref, ops[j], in_micro), floor)
            wrong[j][0] += int((got_ref[j] != exact_ref).sum())
            wrong[j][1] += int((got_micro[j] != exact_micro).sum())
            wrong[j][2] += exact_ref.size
    print(f"| op | kind | max steps, Micro vs LiteRT {kernels} | LiteRT {kernels} vs numpy "
          "| TFLite Micro vs numpy |\n|---:|---|---:|---|---|")
    for j, name in enumerate(names):
        r, m, n = wrong.get(j, (None, None, None))
        cells = (f"{r} of {n} off", f"{m} of {n} off") if n else ("", "")
        print(f"| {j} | {name} | {steps[j]} | {cells[0]} | {cells[1]} |")
    print(f"\nsame top-1 decision at the output: {same / len(x):.2%} of {len(x)} samples")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="residual_mlp", help="registered model to train briefly")
    p.add_argument("--keras", help="a trained .keras file instead of --model")
    p.add_argument("--samples", type=int, default=300, help="held-out digits to run")
    p.add_argument("--litert-kernels", choices=("reference", "builtin"), default="reference",
                   help="LiteRT's reference kernels (BUILTIN_REF) or its optimized builtin ones")
    args = p.parse_args()
    from export.exporter import export_model
    from export.matrix_models import digits_bundle, train_briefly
    bundle = digits_bundle()
    x_train, _ = bundle.as_numpy("train")
    x_test, _ = bundle.as_numpy("test")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        keras_path = Path(args.keras) if args.keras else train_briefly(args.model, bundle,
                                                                       work / "run")
        export_model(keras_path, work / "out", formats=["tflite_micro"],
                     representative_data=x_train[:1000], validate=False)
        compare(work / "out" / "model_micro.tflite", x_test[:args.samples], args.litert_kernels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
