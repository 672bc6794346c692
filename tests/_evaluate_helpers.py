"""Helpers for the evaluation tests: child-process targets and a small trained export.

The ``child_*`` functions are targets for ``utils.isolation.call_isolated``
(they run in a fresh interpreter, so they must be importable module-level functions).
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child_echo(payload, report_progress):
    for done in payload["progress"]:
        report_progress(done)
    return {"echo": payload["value"], "pid": os.getpid()}


def child_segfault(payload, report_progress):
    report_progress(1)
    os.kill(os.getpid(), signal.SIGSEGV)


def child_exit_without_result(payload, report_progress):
    print("runtime gave up: out of cheese", file=sys.stderr, flush=True)
    os._exit(3)


def child_shape_error(payload, report_progress):
    from evaluation.errors import ShapeMismatchError
    raise ShapeMismatchError("expects (None, 28, 28, 1) but got (None, 32, 32, 1)")


def child_file_error(payload, report_progress):
    raise FileNotFoundError(f"no such file: {payload['path']}")


def child_bug(payload, report_progress):
    raise RuntimeError("an internal bug")


def run_cli(*args, cwd=ROOT, timeout=300):
    """Run ``python evaluate.py ARGS`` (from ``cwd``); return the CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_main(*args, cwd=ROOT):
    """``evaluate.py ARGS`` in this process, through the same ``run_cli`` as the script.

    For the bad-input cases: the exit status and the Python-level stdout and
    stderr are the script's, without paying a fresh interpreter and TensorFlow
    import per case (artifacts still run in their isolated child). The
    subprocess form, :func:`run_cli`, stays for what only a fresh process
    shows (native start-up lines on fd 2).
    """
    import contextlib
    import importlib.util
    import io

    from utils.cli import run_cli as run
    spec = importlib.util.spec_from_file_location("evaluate_script", ROOT / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(script.main, [str(a) for a in args], prog="evaluate.py")
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(["evaluate.py", *map(str, args)], code,
                                       out.getvalue(), err.getvalue())


def train_and_export(directory: Path, *, epochs: int = 3, seed: int = 0):
    """Train exam_mlp (10 classes) briefly on digits, save it and export every kind.

    Returns:
        ``(keras_path, export_dir, manifest)``; the export has SavedModel, ONNX,
        float32 TFLite and int8 TFLite (float I/O).
    """
    import keras

    import data
    import export
    import models

    keras.utils.set_random_seed(seed)
    x, y = data.load_dataset("digits").as_numpy("train")
    model = models.create_model("exam_mlp", num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    keras_path = directory / "exam.keras"
    model.save(keras_path)
    manifest = export.export_model(model, directory / "export", quantize=(None, "int8"),
                                   representative_data=x[:256])
    return keras_path, directory / "export", manifest


def crashing_tflite(source: Path, target: Path, rows: int = 1_000_000) -> Path:
    """Write a copy of a float ``.tflite`` that makes LiteRT die with SIGSEGV.

    The flatbuffer stays structurally valid (it passes LiteRT's verifier and
    our "TFL3" check): the last FULLY_CONNECTED layer's weights claim ``rows``
    output units but hold 16 bytes. Marking the tensor sparse skips the
    interpreter's buffer-size check, and packing the weights then reads ~40 MB
    past the buffer. This is the kind of crafted file the isolation exists for.
    """
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(source.read_bytes(), 0))
    graph = model.subgraphs[0]
    fc = [op for op in graph.operators
          if model.operatorCodes[op.opcodeIndex].builtinCode
          == schema.BuiltinOperator.FULLY_CONNECTED][-1]
    weights = graph.tensors[fc.inputs[1]]
    weights.shape = np.array([rows, weights.shape[1]], np.int32)

    def int32_vector(values):
        vector = schema.Int32VectorT()
        vector.values = np.array(values, np.int32)
        return vector

    dense = schema.DimensionMetadataT()
    dense.format, dense.denseSize = schema.DimensionType.DENSE, rows
    csr = schema.DimensionMetadataT()
    csr.format = schema.DimensionType.SPARSE_CSR
    csr.arraySegmentsType = csr.arrayIndicesType = schema.SparseIndexVector.Int32Vector
    csr.arraySegments, csr.arrayIndices = int32_vector(range(0, 21, 2)), int32_vector([3] * 20)
    weights.sparsity = schema.SparsityParametersT()
    weights.sparsity.traversalOrder = np.array([0, 1], np.int32)
    weights.sparsity.dimMetadata = [dense, csr]
    model.buffers[weights.buffer].data = np.zeros(16, np.uint8)
    fc.inputs = np.array([fc.inputs[0], fc.inputs[1], -1], np.int32)  # no bias to size-check
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(builder.Output())
    return target
