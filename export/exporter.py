"""``export_model``: convert, validate, write the manifest — all or nothing."""
from __future__ import annotations

import difflib
import hashlib
import os
import platform
import time
from pathlib import Path

import numpy as np

from export.errors import ExportError, ValidationError

FORMATS = ("saved_model", "onnx", "tflite")
QUANTIZATIONS = (None, "float16", "dynamic", "int8")
MANIFEST = "manifest.json"
MANIFEST_MD = "manifest.md"
_QUANT_ALIASES = {"none": None, "float32": None, "fp32": None, "fp16": "float16"}


# ------------------------------------------------------------ argument checks
def _closest(value, choices) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=2, cutoff=0.4)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_formats(formats) -> list[str]:
    """Normalise ``formats`` (a sequence or comma-separated string).

    Raises:
        ExportError: empty, or a name outside :data:`FORMATS`.
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


def _check_out_dir(out_dir) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"out_dir {str(out)!r} exists and is not a directory. "
                          "Choose a new or export directory.")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists():
        # Replacing the directory would delete files that are not ours.
        raise ExportError(f"out_dir {str(out)!r} is not empty and holds no {MANIFEST}; "
                          "refusing to replace it. Choose a new or empty directory.")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot create out_dir {str(out)!r}: {str(parent)!r} is "
                          "not a writable directory. Choose another output path.")
    return out


def _representative(data, model):
    """Real inputs as float32 ``[N, ...]`` matching the model's input."""
    if data is None:
        return None
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


def _tool_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert",
                "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


# ------------------------------------------------------------------ hashing
def _sha256(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file, or of a directory's sorted (name, bytes) pairs."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h, size = hashlib.sha256(), 0
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        data = f.read_bytes()
        size += len(data)
        h.update(data)
    return size, h.hexdigest()


# ------------------------------------------------------------------ export
def _artifact_name(fmt, quant, fixed_batch) -> str:
    if fmt == "saved_model":
        return "saved_model"
    if fmt == "onnx":
        return "model.onnx"
    stem = "model" + (f"_{quant}" if quant else "") + (f"_b{fixed_batch}" if fixed_batch else "")
    return stem + ".tflite"


def export_model(model_or_path, out_dir, formats=FORMATS, quantize=None,
                 representative_data=None, opset=None, validate=True, atol=None,
                 allow_flex=False, fixed_batch=None, int8_io=False,
                 logits_only=False, validation_data=None, int8_float_head=True,
                 static_flatten=True) -> dict:
    """Export a Keras model to SavedModel / ONNX / TFLite, validated, atomically.

    Args:
        model_or_path: a ``keras.Model`` or the path of a ``.keras`` file
            (loaded with ``safe_mode=True`` after ``import activations``).
        out_dir: export directory; replaced only when everything succeeded.
        formats: subset of ``("saved_model", "onnx", "tflite")`` (or "a,b").
        quantize: TFLite variant(s): None (float32), "float16", "dynamic",
            "int8", or a sequence such as ``(None, "int8")``.
        representative_data: float32 ``[N, ...]`` real inputs (or ``(x, y)``);
            required for "int8" (calibration and the top-1 agreement check).
        opset: ONNX opset; default the newest both tf2onnx and onnxruntime
            support (see ``export.onnx_ops.default_opset``).
        validate: run every artifact in its runtime and compare with Keras.
        atol: absolute tolerance override for float comparisons.
        allow_flex: accept Select-TF (Flex) ops in TFLite (not edge-ready).
        fixed_batch: TFLite only: a static batch size (e.g. 1 for edge
            devices); the runner feeds other batch sizes in chunks.
        int8_io: with "int8", int8 input/output tensors (scale and zero
            point recorded in the manifest).
        logits_only: drop a final softmax (top-1 unchanged; faster int8).
        validation_data: real inputs for the comparisons and the int8 top-1
            agreement (default: ``representative_data``); pass held-out data
            so that agreement is not measured on the calibration samples.
        int8_float_head: with "int8" (float I/O), keep the output layer and
            its softmax in float (selective quantization): int8 output steps
            tie the top classes of a wide classifier (exam_mlp: 97-98% top-1
            agreement fully int8, 99.6% with a float head). The ops kept
            float are listed in the manifest (``float_head``).
        static_flatten: export each Flatten as ``reshape(x, [-1, n])``;
            Keras' Flatten reshapes to ``[shape(x)[0], -1]``, which costs
            SHAPE/STRIDED_SLICE/PACK ops that TFLite runs outside XNNPACK.
            Same function; False reproduces Keras' own export graph.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        ExportError: bad argument, unloadable model, conversion failure.
        UnsupportedOpsError: Flex/custom TFLite ops or non-ONNX nodes.
        ValidationError: an artifact disagrees with Keras (every failure listed).
        OSError: ``out_dir`` cannot be written.
    """
    formats = check_formats(formats)
    variants = check_quantize(quantize)
    if any(variants) and "tflite" not in formats:
        raise ExportError(f"quantize={quantize!r} applies to TFLite only; add 'tflite' "
                          f"to formats (received formats={formats}).")
    if "int8" in variants and representative_data is None:
        raise ExportError("quantize='int8' needs representative_data: real inputs [N, ...] "
                          "for calibration and the top-1 check (CLI: --representative-data "
                          "digits).")
    if fixed_batch is not None and (not isinstance(fixed_batch, (int, np.integer))
                                    or isinstance(fixed_batch, bool) or fixed_batch < 1):
        raise ExportError(f"fixed_batch must be a positive integer or None. "
                          f"Received: fixed_batch={fixed_batch!r}")
    if atol is not None and not (isinstance(atol, (int, float)) and atol > 0):
        raise ExportError(f"atol must be a positive number. Received: atol={atol!r}")
    if int8_io and "int8" not in variants:
        raise ExportError("int8_io=True needs quantize='int8'.")
    from export import onnx_ops
    max_opset = onnx_ops.default_opset()
    if "onnx" in formats:
        if opset is None:
            opset = max_opset
        elif not isinstance(opset, (int, np.integer)) or not 9 <= opset <= max_opset:
            raise ExportError(f"opset must be an integer in 9..{max_opset} (newest supported "
                              f"by both tf2onnx and onnxruntime). Received: opset={opset!r}")
    out = _check_out_dir(out_dir)

    import keras

    from export import convert, runtime
    source = None
    if isinstance(model_or_path, keras.Model):
        model = model_or_path
    elif isinstance(model_or_path, (str, os.PathLike)):
        source = os.path.abspath(model_or_path)  # bench finds it from any directory
        model = runtime.load_keras_model(model_or_path)
    else:
        raise ExportError(f"model_or_path must be a keras.Model or a .keras path. "
                          f"Received: {type(model_or_path).__name__}")
    for t in model.inputs:
        if any(d is None for d in t.shape[1:]):
            raise ExportError(f"Input {t.name!r} has unknown dimensions {list(t.shape)}; "
                              "export needs every non-batch dimension fixed.")
    data = _representative(representative_data, model)
    check_data = _representative(validation_data, model) if validation_data is not None else data
    if data is not None and len(model.inputs) != 1:
        raise ExportError("representative_data supports single-input models only.")

    reference_model = convert.strip_softmax(model) if logits_only else model
    export_graph, rewrites = (convert.static_flatten(reference_model) if static_flatten
                              else (reference_model, []))
    reference = runtime.KerasRunner(reference_model)

    jobs = [(f, None) for f in formats if f != "tflite"]
    jobs += [("tflite", q) for q in variants] if "tflite" in formats else []
    from utils.io import atomic_directory, atomic_write_json, atomic_write_text

    artifacts, failures = [], []
    shared_saved_model = None
    with atomic_directory(out) as tmp:
        for fmt, quant in jobs:
            name = _artifact_name(fmt, quant, fixed_batch if fmt == "tflite" else None)
            start = time.perf_counter()
            if fmt == "saved_model":
                info = convert.to_saved_model(export_graph, tmp / name)
                shared_saved_model = tmp / name if fixed_batch is None else None
            elif fmt == "onnx":
                info = convert.to_onnx(export_graph, tmp / name, opset)
            else:
                info = convert.to_tflite(export_graph, tmp / name, quantization=quant,
                                         representative_data=data, int8_io=int8_io,
                                         allow_flex=allow_flex, batch_size=fixed_batch,
                                         saved_model=shared_saved_model,
                                         float_head=int8_float_head)
            entry, fails = _describe_and_validate(
                tmp, name, fmt, quant, info, time.perf_counter() - start,
                reference if validate else None, atol=atol, data=check_data,
                fixed_batch=fixed_batch)
            artifacts.append(entry)
            failures += fails
        if failures:
            raise ValidationError(failures)
        manifest = {
            "manifest_version": 1,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"path": source, "name": model.name,
                       "params": int(model.count_params()),
                       "logits_only": bool(logits_only)},
            "graph_rewrites": rewrites,
            "validated": bool(validate),
            "tool_versions": _tool_versions(),
            "artifacts": artifacts,
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        atomic_write_text(tmp / MANIFEST_MD, manifest_markdown(manifest))
    return manifest


def _describe_and_validate(tmp, name, fmt, quant, info, seconds, reference, *, atol, data,
                           fixed_batch):
    """The manifest entry of one written artifact, validated unless
    ``reference`` is None; returns ``(entry, failures)``."""
    from export import runtime
    from export.validate import validate_artifact
    path = tmp / name
    load_start = time.perf_counter()
    runner = runtime.load_artifact(path)
    load_seconds = time.perf_counter() - load_start
    size, digest = _sha256(path)
    entry = {"path": name, "format": fmt, "quantization": quant,
             "inputs": runner.input_spec, "outputs": runner.output_spec,
             "size_bytes": size, "sha256": digest, **info,
             "conversion_seconds": round(seconds, 3)}
    if fmt == "tflite":
        entry["fixed_batch"] = fixed_batch
    else:
        # A SavedModel needs full TensorFlow: edge readiness does not apply.
        entry.update(uses_flex=False, custom_ops=[],
                     edge_ready=None if fmt == "saved_model" else True)
    if reference is None:
        entry["validation"] = None
        return entry, []
    if getattr(runner, "unavailable", None):
        # Only reachable with allow_flex=True: the user opted in.
        entry["validation"] = {"passed": None, "skipped": runner.unavailable}
        return entry, []
    result, fails = validate_artifact(name, runner, reference, quantization=quant,
                                      atol=atol, data=data)
    # Loading the artifact into its runtime is part of the check.
    result["seconds"] = round(result["seconds"] + load_seconds, 3)
    entry["validation"] = result
    return entry, fails


def _fmt_size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.2f} MiB"


def _validation_cell(v) -> str:
    if not v:
        return "not validated"
    if v.get("skipped"):
        return "SKIPPED: " + v["skipped"]
    if "top1_agreement" in v:
        return (f"top-1 agreement {v['top1_agreement']:.2%} on {v['samples']} samples "
                f"(bound {v['top1_bound']:.0%})")
    return f"max abs diff {v['max_abs_diff']:.2e} (atol {v['atol']:g}, rtol {v['rtol']:g})"


def manifest_markdown(manifest: dict) -> str:
    """The Markdown summary written beside ``manifest.json``."""
    src = manifest["source"]
    lines = [f"# Export of `{src['name']}` ({src['params']:,} parameters)", "",
             f"Created {manifest['created_utc']}"
             + (f" from `{src['path']}`" if src["path"] else "") + ".", "",
             "| artifact | format | quantization | size | ops | edge ready | validation |",
             "|---|---|---|---|---|---|---|"]
    for a in manifest["artifacts"]:
        ops = f"opset {a['opset']}" if a["format"] == "onnx" else ", ".join(a.get("ops", []))
        if a["format"] == "saved_model":
            ops = "TensorFlow"
        edge = {True: "yes", False: "no", None: "n/a"}[a.get("edge_ready")]
        lines.append(f"| `{a['path']}` | {a['format']} | {a['quantization'] or 'float32'} | "
                     f"{_fmt_size(a['size_bytes'])} | {ops} | {edge} | "
                     f"{_validation_cell(a['validation'])} |")
    if manifest["graph_rewrites"]:
        lines += ["", "Graph rewrites for export: "
                  + "; ".join(manifest["graph_rewrites"]) + "."]
    versions = ", ".join(f"{k} {v}" for k, v in manifest["tool_versions"].items() if v)
    lines += ["", f"Tools: {versions}.", ""]
    return "\n".join(lines)
