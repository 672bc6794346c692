"""The registry-model matrices: every registered model, briefly trained, to every format.

Random weights hide exactly the failures users meet (an untrained classifier's
logits span a fraction of a unit, so its int8 scale is tiny and near-ties are
everywhere), so each model is first trained the way ``train.py`` trains it: a
couple of epochs of backpropagation on the digits, or one epoch of its own
learning rule for the classic nets (the rule comes from the model card). It is
then exported from its ``model.keras`` (as a user would), one artifact per
export call so that one refusal cannot hide the other cells:

* ``saved_model``, ``onnx``, ``tflite``: float32, checked by max abs diff;
* ``tflite int8`` (float head), ``onnx int8``: calibrated on training images
  and judged, like every int8 file, by the agreement of what the model's
  output decides (its card) on held-out test images;
* ``tflite_micro``: fully int8, run in TFLite Micro's own interpreter.

``trained=False`` gives the quick conversion check of the tests: default
size, untrained, uniform [0, 1) calibration, no validation.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

from export.errors import ExportError

TRAIN_EPOCHS = 2
CALIBRATION_IMAGES = 1000
FLOAT_FORMATS = ("saved_model", "onnx", "tflite")
INT8_CELLS = {"tflite int8": "tflite", "onnx int8": "onnx"}  # TFLite keeps its float head


def digits_bundle(seed: int = 0):
    """The embedded digits, split as ``train.py`` splits them."""
    import data
    return data.load_dataset("digits", seed=seed)


def train_briefly(name: str, bundle, out: Path, *, epochs: int = TRAIN_EPOCHS,
                  seed: int = 0) -> Path:
    """Train registered model ``name`` as ``train.py`` would, briefly; return its ``model.keras``."""
    import models
    from training import TrainConfig, train

    rule = models.model_card(models.create_model(name))["learning_rule"]
    if rule is None:
        config = TrainConfig(model=name, dataset="digits", epochs=epochs, batch_size=64,
                             num_classes="auto", seed=seed, out=str(out), quiet=True,
                             jit_compile=False)
    else:  # its own rule, with its own defaults
        config = TrainConfig(model=name, dataset="digits", epochs=1, seed=seed,
                             out=str(out), quiet=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the epoch lines; the table is the output
        result = train(config, bundle=bundle, log=lambda *_: None)
    return Path(result.paths["model"])


def _cell(model_path, fmt, quant, data, **options) -> dict | str:
    """One export of one artifact: its validation figures, or the one-line refusal."""
    from export.exporter import export_model
    with tempfile.TemporaryDirectory(prefix="export-cell-") as work:
        try:
            # strict: a cell is one artifact's verdict, not a partial export's.
            manifest = export_model(model_path, Path(work) / "out", formats=[fmt],
                                    quantize=[quant], strict=True, **{**data, **options})
        except (ExportError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
    # The int8 ONNX is made from a float one, which the export writes beside it.
    arts = [a for a in manifest["artifacts"] if a["format"] == fmt]
    art = next((a for a in arts if (a.get("quantization") or None) == quant), arts[-1])
    cell = dict(art.get("validation") or {})
    if "micro" in art:
        cell.update(flash_bytes=art["micro"]["flash_bytes"],
                    arena_bytes=art["micro"]["arena_bytes"], ops=art["ops"])
    return cell


def _trained_inputs(bundle) -> dict:
    x_train, _ = bundle.as_numpy("train")
    x_test, _ = bundle.as_numpy("test")
    return dict(representative_data=x_train[:CALIBRATION_IMAGES], validation_data=x_test)


def _untrained(name: str, work: Path) -> tuple[Path, dict]:
    """Default-size untrained ``name`` saved to ``work``, with uniform [0, 1) calibration."""
    import models
    model = models.create_model(name)
    inputs = getattr(model, "inputs", None) or []  # none: export names the problem
    shape = [d if d is not None else 1 for d in (inputs[0].shape[1:] if inputs else [1])]
    x = np.random.default_rng(0).random([64] + shape, dtype=np.float32)
    path = work / f"{name}.keras"
    model.save(path)
    return path, dict(representative_data=x)


def run_model_matrix(pattern: str = "*", formats=FLOAT_FORMATS, *, int8: bool = True,
                     micro: bool = False, trained: bool = True, bundle=None) -> dict:
    """Every registered model matching ``pattern``, briefly trained, to every cell.

    Returns:
        ``{model: {cell: validation dict (plus flash/arena/ops for TFLite
        Micro) | "error text"}}``; cells are ``formats``, then ``tflite int8``
        and ``onnx int8`` (``int8``), then ``tflite_micro`` (``micro``).
    """
    import models
    if trained and bundle is None:
        bundle = digits_bundle()
    results = {}
    for name in models.list_models(pattern):
        with tempfile.TemporaryDirectory(prefix="export-models-") as work:
            work = Path(work)
            row = results.setdefault(name, {})
            path = None
            if trained:
                from training import TrainingError
                try:
                    path = train_briefly(name, bundle, work / "run")
                    data = _trained_inputs(bundle)
                except TrainingError as exc:  # e.g. Rosenblatt's step unit: no gradient
                    row["training"] = {"note": f"untrained: {exc}"}
            if path is None:
                path, data = _untrained(name, work)
            # Float32 needs no calibration; untrained, it is checked on random inputs.
            float_data = {k: v for k, v in data.items() if k != "representative_data"}
            for fmt in formats:
                row[fmt] = _cell(path, fmt, None, float_data)
            for cell, fmt in (INT8_CELLS.items() if int8 else ()):
                row[cell] = _cell(path, fmt, "int8", data)
            if micro:  # untrained: conversion and a run only (agreement needs real data)
                row["tflite_micro"] = _cell(path, "tflite_micro", None, data,
                                            **({} if trained else {"validate": False}))
    return results


def run_micro_matrix(pattern: str = "*", *, trained: bool = True, bundle=None) -> dict:
    """Every registered model matching ``pattern`` to TFLite Micro only (see :func:`run_model_matrix`)."""
    return run_model_matrix(pattern, formats=(), int8=False, micro=True, trained=trained,
                            bundle=bundle)
