"""Argument checks for ``export_model``: every user input is normalised or
refused here, before a model is loaded or a file written.

:func:`check_options` turns the keyword arguments (the options declared in
:mod:`export.options`) into one frozen :class:`Options`; :func:`check_out_dir` and
:func:`check_data` check the output path and the real-data arrays. Each failure is an
:class:`~export.errors.ExportError` naming the value and the fix.
"""
from __future__ import annotations

import os
from dataclasses import make_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export import formats as registry
from export.errors import ExportError
from export.formats import DEFAULT_FORMATS, FORMATS, QUANTIZATIONS  # noqa: F401  (re-exported)
from export.options import BY_NAME, MICRO_IO, OPTIONS, defaults
from utils.names import did_you_mean
from utils.checks import is_count, is_int, is_number

MANIFEST = "manifest.json"
_QUANT_ALIASES = {"none": None, "float32": None, "fp32": None, "fp16": "float16"}

Options = make_dataclass("Options", [(o.name, Any) for o in OPTIONS if not o.data],
                         frozen=True, namespace={"__module__": __name__})
Options.__doc__ = """The checked, normalised export request: one field per option of
``export.options.OPTIONS`` under the option's name (the data options excepted, which
``check_data`` checks with the model). ``formats`` and ``quantize`` are tuples, the
latter of TFLite variants (None = float32)."""


def _closest(value, choices) -> str:
    return did_you_mean(value, choices, n=2, cutoff=0.4, quote=True)


def check_formats(formats) -> list[str]:
    """Normalise ``formats`` (a sequence or comma-separated string).

    Raises:
        ExportError: empty, or a name outside :data:`FORMATS` (``export.formats``).
    """
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    formats = list(dict.fromkeys(formats or ()))
    if not formats:
        raise ExportError(f"No export format given. Choose from {', '.join(FORMATS)}.")
    for f in formats:
        if f not in FORMATS:
            raise ExportError(f"Unknown export format {f!r}.{_closest(f, FORMATS)} "
                              f"Valid formats: {', '.join(FORMATS)}. Received: formats={formats}")
    return formats


def check_quantize(quantize) -> list:
    """Normalise ``quantize`` to a list of TFLite variants (None = float32).

    Accepts None, one name, a comma-separated string or a sequence;
    "none"/"float32" stand for the unquantized model.

    Raises:
        ExportError: a name outside :data:`QUANTIZATIONS`.
    """
    if quantize is None:
        return [None]
    items = quantize.split(",") if isinstance(quantize, str) else list(quantize)
    out = []
    for q in items:
        q = q.strip().lower() if isinstance(q, str) else q
        q = _QUANT_ALIASES.get(q, q)
        if q not in QUANTIZATIONS:
            names = [n for n in QUANTIZATIONS if n] + ["none"]
            raise ExportError(f"Unknown quantization {q!r}.{_closest(q, names)} Valid: "
                              f"{', '.join(names)}. Received: quantize={quantize!r}")
        if q not in out:
            out.append(q)
    return out or [None]


def _check_applies(quantize, variants, formats) -> None:
    """Every quantization asked for is written by one of the formats asked for."""
    for q in filter(None, variants):
        takers = registry.takers(q)
        if not any(f.name in formats for f in takers):
            where = " and ".join(f.title for f in takers) + (" only" if len(takers) == 1 else "")
            add = " or ".join(repr(f.name) for f in takers)
            raise ExportError(f"quantize={quantize!r} applies to {where}; add {add} to formats "
                              f"(received formats={formats}).")


def _check_opset(opset, formats):
    if registry.ONNX.name not in formats:
        return opset
    from export import onnx_ops
    max_opset = onnx_ops.default_opset()
    if opset is None:
        return max_opset
    if not is_int(opset) or not 9 <= opset <= max_opset:
        raise ExportError(f"opset must be an integer in 9..{max_opset} (newest supported "
                          f"by both tf2onnx and onnxruntime). Received: opset={opset!r}")
    return int(opset)


def check_options(**values) -> Options:
    """Check every option of ``export_model`` that needs no model
    (``export.options.OPTIONS``; one not given takes its default).

    Returns:
        The normalised :class:`Options`.

    Raises:
        ExportError: naming the bad argument, what was received and the fix.
    """
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise TypeError(f"check_options() got unknown option(s) {unknown}")
    values = {**defaults(), **values}
    quantize, representative_data = values["quantize"], values["representative_data"]
    formats = check_formats(values["formats"])
    variants = check_quantize(quantize)
    _check_applies(quantize, variants, formats)
    for f in formats:
        if registry.get(f).needs_data and representative_data is None:
            raise ExportError(registry.get(f).needs_data)
    micro_io = values["micro_io"]
    if micro_io not in MICRO_IO:
        raise ExportError(f"micro_io must be one of {', '.join(MICRO_IO)}."
                          f"{_closest(micro_io, MICRO_IO)} Received: micro_io={micro_io!r}")
    if "int8" in variants and representative_data is None:
        raise ExportError("quantize='int8' needs representative_data: real inputs [N, ...] "
                          "for calibration and the top-1 check (CLI: --representative-data "
                          "digits).")
    fixed_batch, atol = values["fixed_batch"], values["atol"]
    if fixed_batch is not None and not is_count(fixed_batch):
        raise ExportError(f"fixed_batch must be a positive integer or None. "
                          f"Received: fixed_batch={fixed_batch!r}")
    if atol is not None and not (is_number(atol) and atol > 0):
        raise ExportError(f"atol must be a positive number. Received: atol={atol!r}")
    if values["int8_fallback"] not in (None, "auto"):
        raise ExportError(f"int8_fallback must be 'auto' or None. "
                          f"Received: int8_fallback={values['int8_fallback']!r}")
    if values["int8_fallback"] and not ("int8" in variants and "tflite" in formats):
        raise ExportError("int8_fallback='auto' applies to the int8 TFLite; pass "
                          "formats including 'tflite' and quantize='int8' (CLI: --quantize int8).")
    if values["int8_fallback"] and values["int8_io"]:
        raise ExportError("int8_fallback='auto' keeps layers float, which needs float I/O; "
                          "drop int8_io (--no-int8-io) or the fallback.")
    if values["int8_io"] and "int8" not in variants:
        raise ExportError("int8_io=True needs quantize='int8'.")
    checked = {"formats": tuple(formats), "quantize": tuple(variants),
               "opset": _check_opset(values["opset"], formats)}
    return Options(**{o.name: checked.get(o.name, bool(values[o.name]) if o.flag == "switch"
                                          else values[o.name])
                      for o in OPTIONS if not o.data})


def check_out_dir(out_dir, *, marker: str = MANIFEST, label: str = "out_dir",
                  kind: str = "export") -> Path:
    """``out_dir`` as a Path, if it can be (re)placed by an export (or by another
    output directory that ``marker`` identifies, e.g. an explain report).

    Raises:
        ExportError: a file, a foreign non-empty directory, or unwritable.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{label} {str(out)!r} exists and is not a directory. "
                          f"Choose a new or {kind} directory.")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        # Replacing the directory would delete files that are not ours.
        raise ExportError(f"{label} {str(out)!r} is not empty and holds no {marker}; "
                          "refusing to replace it. Choose a new or empty directory.")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot create {label} {str(out)!r}: {str(parent)!r} is "
                          "not a writable directory. Choose another output path.")
    return out


def check_model_inputs(model, formats=()) -> None:
    """Refuse inputs with unknown non-batch dimensions (no converter fixes them).

    Raises:
        ExportError: naming the input and its shape.
    """
    try:
        inputs = model.inputs
    except AttributeError:  # a subclassed keras.Model has no symbolic inputs
        inputs = None
    if not inputs:
        raise ExportError(f"Model {model.name!r} has no symbolic inputs (a subclassed "
                          "keras.Model); export traces functional and Sequential models. "
                          "Build it as keras.Model(keras.Input(...), outputs) or "
                          "keras.Sequential([keras.Input(...), ...]).")
    for f in formats:
        if registry.get(f).check_model is not None:
            registry.get(f).check_model(model)
    for t in model.inputs:
        if any(d is None for d in t.shape[1:]):
            raise ExportError(f"Input {t.name!r} has unknown dimensions {list(t.shape)}; "
                              "export needs every non-batch dimension fixed.")


def _real_inputs(data, model):
    """Real inputs as float32 ``[N, ...]`` matching the model's input."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not np.isscalar(data[1]):
        data = data[0]  # (x, y) as returned by DatasetBundle.as_numpy
    x = np.asarray(data, dtype=np.float32)
    want = list(model.inputs[0].shape[1:])
    if x.ndim != len(want) + 1 or any(w is not None and w != g for w, g in zip(want, x.shape[1:])):
        raise ExportError(f"representative/validation data must be [N, {', '.join(map(str, want))}] "
                          f"for this model. Received shape {list(x.shape)}.")
    if len(x) < 7:
        raise ExportError(f"representative/validation data needs at least 7 samples. Received {len(x)}.")
    return x


def check_data(model, representative_data, validation_data):
    """The calibration and the checking inputs (checking defaults to calibration).

    Returns:
        ``(calibration, checking)``: float32 arrays, or None where not given.

    Raises:
        ExportError: wrong shape, fewer than 7 samples, or a multi-input model.
    """
    data = None if representative_data is None else _real_inputs(representative_data, model)
    check = data if validation_data is None else _real_inputs(validation_data, model)
    if data is not None and len(model.inputs) != 1:
        raise ExportError("representative_data supports single-input models only.")
    return data, check
