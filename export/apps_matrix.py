"""The keras.applications export matrix: every builder, no weights, its
smallest input, exported to SavedModel, ONNX and TFLite (float32, float16,
dynamic) by ``export_model``, with Keras' own ``model.export(format="onnx")``
beside it as the baseline.

The models come from :mod:`export.apps_builders`. Each model runs in its
own child process (``utils.isolation``: a converter crash or a 1.4 GB model
cannot take the run down or keep its memory), and each result is cached as
``<work_dir>/<Builder>.json``, so a killed run continues where it stopped.

A row: ``{"builder", "input_size", "size_note", "params", "formats":
{column: {"status": "validated", "max_abs_diff", "seconds", "size_bytes"} |
{"status": "refused" | "crashed", "reason"}}}`` with the columns of :data:`COLUMNS`.
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from export.apps_builders import application_builders, build_application

# Table columns: (column, export format, TFLite quantization); keras_onnx is
# Keras' own exporter, validated like ours.
COLUMNS = (("saved_model", "saved_model", None), ("onnx", "onnx", None),
           ("tflite", "tflite", None), ("tflite_float16", "tflite", "float16"),
           ("tflite_dynamic", "tflite", "dynamic"), ("keras_onnx", None, None))
OURS = tuple(c for c, fmt, _ in COLUMNS if fmt is not None)
WORK_DIR = "runs/apps_matrix"  # runs/ is git-ignored


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
