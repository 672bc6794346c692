"""Helpers for the evaluation tests: child-process targets and a small trained export.

The ``child_*`` functions are targets for ``evaluation.isolation.call_isolated``
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


def run_cli(*args, timeout=300):
    """Run ``python evaluate.py ARGS`` from the repository root; return CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


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
