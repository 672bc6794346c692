"""The keras.applications export matrix: every builder, no weights, its
smallest input, exported to SavedModel, ONNX and TFLite (float32, float16,
dynamic) by ``export_model``, with Keras' own ``model.export(format="onnx")``
beside it as the baseline.

The builders are read from ``keras.applications`` itself (every public
function that takes ``include_top``, ``weights`` and ``input_shape``), so a
new Keras version is covered the day it is installed. Each model runs in its
own child process (``utils.isolation``: a converter crash or a 1.4 GB model
cannot take the run down or keep its memory), and each result is cached as
``<work_dir>/<Builder>.json``, so a killed run continues where it stopped.

A row: ``{"builder", "input_size", "size_note", "params", "formats":
{column: {"status": "validated", "max_abs_diff", "seconds", "size_bytes"} |
{"status": "refused", "reason"}}}`` with the columns of :data:`COLUMNS`.
"""
from __future__ import annotations

import fnmatch
import inspect
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np

# Table columns: (column, export format, TFLite quantization); keras_onnx is
# Keras' own exporter, validated like ours.
COLUMNS = (("saved_model", "saved_model", None), ("onnx", "onnx", None),
           ("tflite", "tflite", None), ("tflite_float16", "tflite", "float16"),
           ("tflite_dynamic", "tflite", "dynamic"), ("keras_onnx", None, None))
OURS = tuple(c for c, fmt, _ in COLUMNS if fmt is not None)
# Tried in this order until the builder accepts one (a floor named in its error
# is tried next); 32 is imagenet_utils' own floor for every builder.
CANDIDATE_SIZES = (32, 64, 96, 128, 224, 331)
SAMPLES = 32  # random inputs: calibration-free formats only need a validation set
# Largest float32 rounding error (vs float64) of a stable untrained model: a
# quarter of the float32 validation tolerance (export.formats.TOLERANCES), so
# that validation judges the conversion, not the random network's sensitivity.
STABLE = 2.5e-6
SEED = 0
WORK_DIR = "runs/apps_matrix"  # runs/ is git-ignored
_BUILDER_ARGS = {"include_top", "weights", "input_shape"}


def application_builders(pattern: str = "*") -> dict:
    """``{name: builder}`` of every model builder in ``keras.applications``
    matching the fnmatch ``pattern``, sorted by name."""
    import keras
    found = {n: f for n, f in vars(keras.applications).items()
             if not n.startswith("_") and inspect.isfunction(f)
             and _BUILDER_ARGS <= set(inspect.signature(f).parameters)}
    return {n: found[n] for n in sorted(found) if fnmatch.fnmatchcase(n, pattern)}


def preprocess_function(name: str):
    """``(module, preprocess_input)`` of the ``keras.applications`` module that
    defines builder ``name`` (what the model expects its pixels to be)."""
    import importlib
    module_name = application_builders()[name].__module__.rsplit(".", 1)[-1]
    module = importlib.import_module(f"keras.applications.{module_name}")
    return module_name, module.preprocess_input


def fresh_model(builder, size: int):
    """``builder``'s model without weights at ``size`` x ``size`` x 3, seeded, in a
    cleared Keras session (so its layer names are the builder's own, unnumbered)."""
    import keras
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    return builder(weights=None, input_shape=(size, size, 3))


def minimum_input(name: str):
    """``(model, size, note)``: the builder's model (no weights) at its smallest
    input: the first of :data:`CANDIDATE_SIZES` it accepts, or the floor its
    own error names ("Input size must be at least 75x75"); ``note`` quotes the
    first refusal (one line), "" when 32 was accepted."""
    builder = application_builders()[name]
    sizes, note = sorted(CANDIDATE_SIZES), ""
    while sizes:
        size = sizes.pop(0)
        try:
            return fresh_model(builder, size), size, note
        except ValueError as exc:  # the builder's own refusal
            line = " ".join(str(exc).split())
            note = note or f"{size} refused: {line[:120]}"
            floor = re.search(r"at least (\d+)x\1", line)
            if floor and int(floor.group(1)) > size:
                floor = int(floor.group(1))
                sizes = [floor] + [s for s in sizes if s > floor]
    raise ValueError(f"{name} accepts none of the sizes {CANDIDATE_SIZES}: {note}")


def build_application(name: str, size: int | None = None):
    """``(model, size, note, x)``: the model (no weights) with its card attached
    and :data:`SAMPLES` random preprocessed inputs (fixed seed) of its size.

    ``size`` None: the smallest input (:func:`minimum_input`) at which the
    untrained network is numerically stable: its float32 rounding error
    (:func:`float32_error`) is within :data:`STABLE`; ``note`` says why each
    smaller size was passed over.
    """
    builder = application_builders()[name]
    if size is not None:
        model = fresh_model(builder, size)
        return model, size, "", _inputs(name, model, size)
    model, size, note = minimum_input(name)
    while True:
        x = _inputs(name, model, size)
        larger = [s for s in CANDIDATE_SIZES if s > size]
        error = float32_error(model, builder, size, x)
        if error <= STABLE or not larger:
            break
        note = "; ".join(n for n in (note, f"{size} unstable untrained: Keras float32 vs "
                                     f"float64 differ by {error:.0e}") if n)
        size = larger[0]
        model = fresh_model(builder, size)
    return model, size, note, x


def _inputs(name, model, size):
    """Random preprocessed inputs; sets the batch statistics and the card."""
    from models.card import attach_card, build_card
    module_name, preprocess = preprocess_function(name)
    pixels = np.random.default_rng(SEED).uniform(0, 255, (SAMPLES, size, size, 3))
    x = np.asarray(preprocess(pixels.astype("float32")), dtype=np.float32)
    batch_statistics(model, x)
    attach_card(model, build_card(
        model, name=name, family="keras.applications", num_classes=model.outputs[0].shape[-1],
        value_range=(float(x.min()), float(x.max())),
        preprocessing=f"keras.applications.{module_name}.preprocess_input of 0-255 RGB"))
    return x


def float32_error(model, builder, size, x) -> float:
    """Max abs difference between ``model`` (float32) and its float64 twin (same
    builder and weights) on ``x[:7]``: the rounding error of float32 itself in
    this network, which every float32 runtime has too and no artifact can beat."""
    import keras
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        twin = builder(weights=None, input_shape=(size, size, 3))
    finally:
        keras.config.set_dtype_policy(policy)
    twin.set_weights([w.astype(np.float64) for w in model.get_weights()])
    exact = np.asarray(keras.tree.flatten(twin(x[:7].astype(np.float64), training=False))[0])
    got = np.asarray(keras.tree.flatten(model(x[:7], training=False))[0])
    return float(np.abs(got.astype(np.float64) - exact).max())


def batch_statistics(model, x) -> None:
    """Set every BatchNormalization's moving mean and variance to its batch
    statistics on ``x`` (one training-mode pass with momentum 0).

    Without weights the moving statistics are (0, 1), which leaves the
    features of most of these networks at zero: their softmax is 1/1000 for
    any input, and validation would compare constants. With batch
    statistics the outputs depend on the input (MobileNetV2 at 32x32: a
    spread of 4e-3 over inputs instead of 0).
    """
    import keras
    norms = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    momenta = [l.momentum for l in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def _export(model, x, jobs, out) -> dict:
    """``{column: cell}`` for one ``export_model`` call over ``jobs`` (columns): the
    published artifacts validated, the ones a partial export refused with its reason."""
    from export.errors import PartialExportError
    from export.exporter import export_model
    formats = list(dict.fromkeys(fmt for c, fmt, _ in COLUMNS if c in jobs))
    quant = [q for c, fmt, q in COLUMNS if c in jobs and fmt == "tflite"] or None
    try:
        manifest = export_model(model, out, formats=formats, quantize=quant,
                                representative_data=x)
    except PartialExportError as exc:
        manifest = exc.manifest
    cells = {}
    for a in manifest["artifacts"]:
        cells[_column(a)] = {"status": "validated",
                             "max_abs_diff": a["validation"]["max_abs_diff"],
                             "seconds": a["conversion_seconds"], "size_bytes": a["size_bytes"]}
    for r in manifest.get("refused", []):
        cells[_column(r)] = {"status": "refused", "reason": " ".join(r["reason"].split())}
    return cells


def _column(artifact: dict) -> str:
    return next(c for c, fmt, q in COLUMNS
                if fmt == artifact["format"] and q == artifact["quantization"])


def _refusal(exc) -> dict:
    return {"status": "refused", "reason": " ".join(f"{type(exc).__name__}: {exc}".split())}


def export_columns(model, x, columns, work) -> dict:
    """Our exporter's cells: the ``columns`` in one call (one traced SavedModel;
    a refused artifact leaves the others published); when nothing could be
    published, each column alone, so each refusal is its own."""
    from export.errors import ExportError
    try:
        return _export(model, x, columns, Path(work) / "all")
    except (ExportError, ValueError) as exc:
        if len(columns) == 1:
            return {columns[0]: _refusal(exc)}
    cells = {}
    for column in columns:
        cells.update(export_columns(model, x, (column,), Path(work) / column))
    return cells


def keras_onnx_cell(model, x, work) -> dict:
    """Keras' own ``model.export(format="onnx")``, validated as ours is: in
    onnxruntime against the Keras model, at the same tolerance and inputs."""
    import onnx

    from export import op_origin
    from export.runtime import KerasRunner, load_artifact
    from export.validate import validate_artifact
    from utils.errors import ZooError
    path = Path(work) / "keras.onnx"
    start = time.perf_counter()
    try:
        model.export(str(path), format="onnx", verbose=False)
    except Exception as exc:  # Keras' exporter raises whatever tf2onnx raises
        return _refusal(exc)
    seconds = time.perf_counter() - start
    proto = onnx.load(str(path), load_external_data=False)
    unknown = op_origin.onnx_unknown_nodes(proto)
    if unknown:
        return {"status": "refused", "reason": "Keras' exporter left TF op "
                f"{op_origin.describe(unknown, model)} unconverted (not an ONNX op)."}
    extra = [("captured constant", i.name) for i in proto.graph.input[len(model.inputs):]]
    if extra:
        return {"status": "refused", "reason": f"Keras' exporter made {len(extra)} "
                f"{op_origin.describe(extra, model)} graph inputs beside the image."}
    try:
        runner = load_artifact(path)
    except ZooError as exc:  # an invalid graph: onnxruntime names the first bad node
        return _refusal(exc)
    result, fails = validate_artifact(path.name, runner, KerasRunner(model), data=x)
    if fails:
        return {"status": "refused", "reason": "; ".join(f["message"] for f in fails)}
    return {"status": "validated", "max_abs_diff": result["max_abs_diff"],
            "seconds": round(seconds, 3), "size_bytes": path.stat().st_size}


def run_application(payload: dict, report_progress=None) -> dict:
    """One row (the child process's entry): build ``payload["builder"]``, export
    it to every column, validate. ``payload["columns"]`` limits the columns;
    ``payload["keep"]``: a directory that keeps the artifacts (else a temporary one)."""
    name = payload["builder"]
    columns = tuple(payload.get("columns") or (c for c, _, _ in COLUMNS))
    model, size, note, x = build_application(name)
    row = {"builder": name, "input_size": size, "size_note": note,
           "params": int(model.count_params()), "formats": {}}
    with tempfile.TemporaryDirectory(prefix="apps-matrix-") as scratch:
        work = payload.get("keep") or scratch
        ours = tuple(c for c in columns if c in OURS)
        if ours:
            row["formats"].update(export_columns(model, x, ours, work))
        if "keras_onnx" in columns:
            row["formats"]["keras_onnx"] = keras_onnx_cell(model, x, work)
    return row


def run_applications_matrix(pattern: str = "*", work_dir=WORK_DIR, columns=None,
                            log=None, timeout=None) -> dict:
    """Every builder matching ``pattern``, each in a child process, smallest
    models first; cached rows in ``work_dir`` are reused (delete a JSON file to
    redo that model).

    Returns:
        ``{builder: row}`` (see the module docstring).
    """
    from utils.io import atomic_write_json
    from utils.errors import ZooError
    from utils.isolation import ChildCrashError, ChildError, call_isolated
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    names = sorted(application_builders(pattern), key=_cost_order)
    if not names:
        from export.errors import ExportError
        from utils.names import did_you_mean
        raise ExportError(f"No keras.applications builder matches --pattern {pattern!r}."
                          f"{did_you_mean(pattern, application_builders(), quote=True)} "
                          "Patterns are fnmatch globs over builder names, e.g. 'MobileNet*'.")
    rows = {}
    for name in names:
        rows.update(cached_rows([name], work))
        if name in rows:
            continue
        cached = work / f"{name}.json"
        start = time.perf_counter()
        try:
            row = call_isolated("export.apps_matrix:run_application",
                                {"builder": name, "columns": list(columns or ())},
                                what=f"the {name} export", timeout=timeout)
        except (ChildCrashError, ChildError, ZooError) as exc:  # that model's row only
            line = f"{type(exc).__name__}: " + " ".join(str(exc).split("\n")[0].split())
            # A crash or a bug of ours is not a refusal of the model.
            status = "crashed" if isinstance(exc, (ChildCrashError, ChildError)) else "refused"
            row = {"builder": name, "input_size": None, "size_note": "", "params": None,
                   "formats": {c: {"status": status, "reason": line}
                               for c in (columns or [c for c, _, _ in COLUMNS])}}
        row["wall_seconds"] = round(time.perf_counter() - start, 1)
        atomic_write_json(cached, row, indent=1)
        rows[name] = row
        if log:
            log(f"{name}: " + ", ".join(f"{c} {v['status']}" for c, v in row["formats"].items()))
    return rows


def cached_rows(names, work_dir=WORK_DIR) -> dict:
    """``{builder: row}`` of the ``names`` that have a cached row in ``work_dir``."""
    paths = {n: Path(work_dir) / f"{n}.json" for n in names}
    return {n: json.loads(p.read_text()) for n, p in paths.items() if p.exists()}


def _cost_order(name: str):
    """Likely small models first (no model is built to order them): the size
    word of a family's variant (Tiny, Small, Mobile < Base < Large), then its
    trailing number (B0 < B7, ResNet50 < ResNet152)."""
    word = re.search(r"(Tiny|Small|Mobile|Base|XLarge|Large|[SML])$", name)
    number = re.search(r"(\d+)(V2)?$", name)
    rank = {"Tiny": 0, "Small": 0, "Mobile": 0, "S": 1, "Base": 2, "M": 2,
            "Large": 3, "L": 3, "XLarge": 4}.get(word.group(1) if word else "", 1)
    return (rank, int(number.group(1)) if number else 0, name)
