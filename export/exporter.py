"""``export_model``: convert, validate, write the manifest, publish what passed.

Reads top to bottom: check the request (:mod:`export.checks`), load the
model, prepare the export graph (:mod:`export.graph`), then inside one
temporary directory convert each artifact and validate it in its own
runtime. An artifact that fails its validation, or meets an op its format lacks,
is refused (:mod:`export.refusals`): its files are deleted and the manifest
(:mod:`export.manifest`) lists it under ``refused``. The directory is published
with the artifacts that passed, and ``PartialExportError`` follows; with
``strict=True``, or when nothing passed, nothing is published.
"""
from __future__ import annotations

import os
import time

from export import formats as registry
from export import manifest as manifest_io
from export import qat, refusals
from export.checks import (DEFAULT_FORMATS, FORMATS, MANIFEST, QUANTIZATIONS, check_data,
                           check_formats, check_model_inputs, check_options, check_out_dir,
                           check_quantize)
from export.errors import ExportError, PartialExportError, UnsupportedOpsError, ValidationError
from export.manifest import MANIFEST_MD, manifest_markdown
from export.options import with_options
from models.card import card_json, model_card

__all__ = ["export_model", "FORMATS", "DEFAULT_FORMATS", "QUANTIZATIONS", "MANIFEST", "MANIFEST_MD",
           "check_formats", "check_quantize", "manifest_markdown"]


@with_options
def export_model(model_or_path, out_dir, **options) -> dict:
    """Export a Keras model to SavedModel / ONNX / TFLite / TFLite Micro,
    validated, atomically.

    Each format is one entry of :mod:`export.formats`; the options below are declared
    once in :mod:`export.options`, which also makes the command line's flags.

    Args:
        model_or_path: a ``keras.Model`` or the path of a ``.keras`` file
            (loaded with ``safe_mode=True`` after ``import activations``).
        out_dir: export directory; replaced only by a directory of validated artifacts.
        {options}

    Returns:
        The manifest (also written to ``out_dir/manifest.json``), when every artifact
        passed.

    Raises:
        PartialExportError: some artifacts were refused, the others published; its
            ``manifest`` is the published one, ``manifest["refused"]`` the refused
            artifacts with their figures and fixes (not with ``strict=True``).
        ExportError: bad argument, unloadable model, conversion failure.
        UnsupportedOpsError: Flex/custom TFLite ops, non-ONNX nodes, or ops
            TFLite Micro has no kernel for (all named): with ``strict=True``, or
            when no artifact was written.
        ValidationError: an artifact disagrees with Keras (every failure listed): with
            ``strict=True``, or when no artifact passed. Nothing is published.
        OSError: ``out_dir`` cannot be written.
    """
    checked = check_options(**options)
    out = check_out_dir(out_dir)
    model, source = _load_model(model_or_path)
    check_model_inputs(model, checked.formats)
    card = model_card(model)
    card_text = card_json(card)
    model = qat.export_graph(model) if qat.is_quantize_aware(model) else model
    check_model_inputs(model, checked.formats)
    data, check = check_data(model, options["representative_data"],
                             options["validation_data"])
    reference_model, export_graph, rewrites = _prepare_graph(model, checked)
    trained_model = qat.is_quantize_aware(export_graph)

    from export import runtime
    from utils.io import atomic_directory
    reference = runtime.KerasRunner(reference_model) if checked.validate else None
    with atomic_directory(out) as tmp:
        artifacts, refused, failures, unconverted, written = [], [], [], [], {}
        produced = {}  # path -> what a refused artifact's job wrote
        for fmt, quant in _jobs(checked):
            name = fmt.file_name(quant, checked)
            start, before = time.perf_counter(), set(tmp.iterdir())
            trained = quant == "int8" and trained_model
            job = registry.Job(graph=export_graph, path=tmp / name, quantization=quant,
                               options=checked, data=data, trained=trained,
                               card_text=card_text, written=dict(written))
            try:
                info = _convert(fmt, job, card_text, unconverted)
            except UnsupportedOpsError as exc:
                if checked.strict:
                    raise
                unconverted.append((fmt.name, exc))
                refused.append(refusals.unconverted_entry(name, fmt, quant, exc))
                _remove(set(tmp.iterdir()) - before)
                continue
            info = {**info, **qat.facts(export_graph)} if trained else info
            written[fmt.name, quant] = tmp / name
            entry, fails = _describe_and_validate(
                tmp, name, fmt, quant, info, time.perf_counter() - start, reference,
                options=checked, data=check, decision=card["decision"],
                agreement=check is not None and qat.is_quantize_aware(model))
            if fails:
                failures += fails
                refused.append(refusals.refused_entry(entry, fails, fmt, checked))
                produced[name] = set(tmp.iterdir()) - before
            else:
                artifacts.append(entry)
        if refused and (checked.strict or not artifacts):
            # All or nothing, as asked or because nothing passed: the earlier directory stays.
            if unconverted:
                raise unconverted[0][1]
            raise ValidationError(failures)
        # Deleted only now: a later artifact may be made from a refused one's file
        # (model_int8.onnx quantizes model.onnx), and is validated on its own.
        for entry in refused:
            _remove(produced.get(entry["path"], ()))
        manifest = manifest_io.describe(model, source, checked, rewrites, artifacts, card,
                                        refused)
        manifest_io.write(tmp, manifest)
    if refused:
        raise PartialExportError(manifest, out)
    return manifest


def _convert(fmt, job, card_text, unconverted) -> dict:
    """Write one artifact (and the files beside it); what the converter learned.

    Raises:
        UnsupportedOpsError: the format lacks an op, or an earlier artifact of the same
            format met that already (its variants trace the same graph; ONNX int8 is
            made from the float file).
    """
    earlier = next((exc for name, exc in unconverted if name == fmt.name), None)
    if earlier is not None:
        raise earlier
    info = fmt.convert(job)
    fmt.write_card(job.path, card_text)
    return info if fmt.finish is None else fmt.finish(job.path, info, card_text)


def _remove(paths) -> None:
    """Delete what a refused artifact left in the temporary export directory."""
    import shutil
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _load_model(model_or_path):
    """The model, and its absolute source path (None for an in-memory model)."""
    import keras

    from export import runtime
    if isinstance(model_or_path, keras.Model):
        return model_or_path, None
    if isinstance(model_or_path, (str, os.PathLike)):
        # Absolute, so that bench finds the source from any directory.
        return runtime.load_keras_model(model_or_path), os.path.abspath(model_or_path)
    raise ExportError(f"model_or_path must be a keras.Model or a .keras path. "
                      f"Received: {type(model_or_path).__name__}")


def _prepare_graph(model, options):
    """``(reference, export_graph, rewrites)``: the Keras model the artifacts
    are compared with, the graph the converters trace, and what was rewritten."""
    from export import graph
    reference = graph.strip_softmax(model) if options.logits_only else model
    if not options.static_flatten:
        return reference, reference, []
    export_graph, rewrites = graph.static_flatten(reference)
    return reference, export_graph, rewrites


def _jobs(options) -> list[tuple]:
    """``(format entry, quantization)`` per artifact, in the order they are written
    (each format's float artifact before the int8 one quantized from it)."""
    return [(fmt, q) for fmt in map(registry.get, options.formats) for q in fmt.variants(options)]


def _describe_and_validate(tmp, name, fmt, quant, info, seconds, reference, *, options,
                           data, decision="argmax", agreement=False):
    """The manifest entry of one written artifact, validated unless
    ``reference`` is None; returns ``(entry, failures)``. ``agreement``: judge it
    by agreement with Keras like int8, whatever its quantization (a QAT model's
    float artifacts round at the same points, and float summation order moves
    a value across a rounding midpoint now and then)."""
    from export.validate import validate_artifact
    path = tmp / name
    load_start = time.perf_counter()
    runner = fmt.load_runner(path, info)
    load_seconds = time.perf_counter() - load_start
    size, digest = manifest_io.sha256(path)
    entry = {"path": name, "format": fmt.name, "quantization": quant,
             "inputs": runner.input_spec, "outputs": runner.output_spec,
             "size_bytes": size, "sha256": digest, **info,
             "conversion_seconds": round(seconds, 3), **fmt.facts(path, options)}
    if reference is None:
        entry["validation"] = None
        return entry, []
    if getattr(runner, "unavailable", None):
        # Only reachable with allow_flex=True: the user opted in.
        entry["validation"] = {"passed": None, "skipped": runner.unavailable}
        return entry, []
    quantization = "int8" if agreement else quant
    result, fails = validate_artifact(name, runner, reference, quantization=quantization,
                                      tolerance=fmt.tolerance(quantization),
                                      atol=options.atol, data=data, decision=decision)
    if fmt.cross_check is not None:
        second, more = fmt.cross_check(name, runner, path, data, info, decision)
        result["litert"], result["passed"] = second, result["passed"] and not more
        fails = fails + more
    # Loading the artifact into its runtime is part of the check.
    result["seconds"] = round(result["seconds"] + load_seconds, 3)
    entry["validation"] = result
    return entry, fails
