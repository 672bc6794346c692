"""``export_model``: convert, validate, write the manifest — all or nothing.

Reads top to bottom: check the request (:mod:`export.checks`), load the
model, prepare the export graph (:mod:`export.graph`), then inside one
temporary directory convert each artifact and validate it in its own
runtime, and write the manifest (:mod:`export.manifest`) only if every
artifact passed.
"""
from __future__ import annotations

import os
import time

from export import manifest as manifest_io
from export import metadata, qat
from export.checks import (DEFAULT_FORMATS, FORMATS, MANIFEST, QUANTIZATIONS, check_data,
                           check_formats, check_model_inputs, check_options, check_out_dir,
                           check_quantize)
from export.errors import ExportError, ValidationError
from export.manifest import MANIFEST_MD, manifest_markdown
from models.card import card_json, model_card

__all__ = ["export_model", "FORMATS", "DEFAULT_FORMATS", "QUANTIZATIONS", "MANIFEST", "MANIFEST_MD",
           "check_formats", "check_quantize", "manifest_markdown"]


def export_model(model_or_path, out_dir, formats=DEFAULT_FORMATS, quantize=None,
                 representative_data=None, opset=None, validate=True, atol=None,
                 allow_flex=False, fixed_batch=None, int8_io=False,
                 logits_only=False, validation_data=None, int8_float_head=True,
                 static_flatten=True, micro_io="int8") -> dict:
    """Export a Keras model to SavedModel / ONNX / TFLite / TFLite Micro,
    validated, atomically.

    Args:
        model_or_path: a ``keras.Model`` or the path of a ``.keras`` file
            (loaded with ``safe_mode=True`` after ``import activations``).
        out_dir: export directory; replaced only when everything succeeded.
        formats: subset of :data:`FORMATS` (or "a,b"); default
            ``("saved_model", "onnx", "tflite")``. "tflite_micro" writes a
            fully-int8 batch-1 ``model_micro.tflite`` with ``model_data.h``,
            ``model_data.cc`` and ``op_resolver.h``, run in the TFLite Micro
            interpreter (arena measured) and checked against LiteRT.
        quantize: TFLite variant(s): None (float32), "float16", "dynamic",
            "int8", or a sequence such as ``(None, "int8")``. With "onnx" in
            ``formats``, "int8" also writes ``model_int8.onnx`` (onnxruntime
            static QDQ quantization on the same calibration samples).
        representative_data: float32 ``[N, ...]`` real inputs (or ``(x, y)``);
            required for "int8" and "tflite_micro" (calibration, and the
            top-1 agreement check unless ``validation_data`` is given).
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
        micro_io: "int8" (default) or "float32" input/output tensors of the
            tflite_micro model.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        ExportError: bad argument, unloadable model, conversion failure.
        UnsupportedOpsError: Flex/custom TFLite ops, non-ONNX nodes, or ops
            TFLite Micro has no kernel for (all named).
        ValidationError: an artifact disagrees with Keras (every failure listed).
        OSError: ``out_dir`` cannot be written.
    """
    options = check_options(
        formats=formats, quantize=quantize, representative_data=representative_data,
        opset=opset, validate=validate, atol=atol, allow_flex=allow_flex,
        fixed_batch=fixed_batch, int8_io=int8_io, logits_only=logits_only,
        int8_float_head=int8_float_head, static_flatten=static_flatten, micro_io=micro_io)
    out = check_out_dir(out_dir)
    model, source = _load_model(model_or_path)
    check_model_inputs(model, options.formats)
    card = model_card(model)
    card_text = card_json(card)
    model = qat.export_graph(model) if qat.is_quantize_aware(model) else model
    check_model_inputs(model, options.formats)
    data, check = check_data(model, representative_data, validation_data)
    reference_model, export_graph, rewrites = _prepare_graph(model, options)

    from export import runtime
    from utils.io import atomic_directory
    reference = runtime.KerasRunner(reference_model) if options.validate else None
    with atomic_directory(out) as tmp:
        artifacts, failures = [], []
        shared_saved_model = None  # a SavedModel the TFLite converter can reuse
        for fmt, quant in _jobs(options):
            name = _artifact_name(fmt, quant, options.fixed_batch if fmt == "tflite" else None)
            start = time.perf_counter()
            info = _convert(fmt, quant, export_graph, tmp / name, options, data,
                            shared_saved_model, card_text)
            metadata.embed(tmp / name, fmt, card_text)
            if fmt == "tflite_micro":
                info = _micro_extras(tmp, name, info, card_text)
            if fmt == "saved_model" and options.fixed_batch is None:
                shared_saved_model = tmp / name
            entry, fails = _describe_and_validate(
                tmp, name, fmt, quant, info, time.perf_counter() - start, reference,
                options=options, data=check, decision=card["decision"],
                agreement=check is not None and qat.is_quantize_aware(model))
            artifacts.append(entry)
            failures += fails
        if failures:
            raise ValidationError(failures)
        manifest = manifest_io.describe(model, source, options, rewrites, artifacts, card)
        manifest_io.write(tmp, manifest)
    return manifest


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
    """``(format, quantization)`` per artifact, in the order they are written
    (the int8 ONNX after the float ONNX it is quantized from)."""
    jobs = []
    for fmt in options.formats:
        if fmt == "tflite":
            jobs += [("tflite", q) for q in options.variants]
        elif fmt == "tflite_micro":
            jobs.append(("tflite_micro", "int8"))
        else:
            jobs.append((fmt, None))
            if fmt == "onnx" and "int8" in options.variants:
                jobs.append(("onnx", "int8"))
    return jobs


def _artifact_name(fmt, quant, fixed_batch) -> str:
    if fmt == "saved_model":
        return "saved_model"
    if fmt == "onnx":
        return "model_int8.onnx" if quant == "int8" else "model.onnx"
    if fmt == "tflite_micro":
        return "model_micro.tflite"
    stem = "model" + (f"_{quant}" if quant else "") + (f"_b{fixed_batch}" if fixed_batch else "")
    return stem + ".tflite"


def _convert(fmt, quant, graph, path, options, data, saved_model, card_text) -> dict:
    """Write one artifact; returns what the converter learned about it."""
    trained = quant == "int8" and qat.is_quantize_aware(graph)
    info = _converted(fmt, quant, graph, path, options, data, saved_model, trained, card_text)
    return {**info, **qat.facts(graph)} if trained else info


def _converted(fmt, quant, graph, path, options, data, saved_model, trained,
               card_text) -> dict:
    from export import convert, micro, onnx_int8, tflite_convert
    if fmt == "saved_model":
        return convert.to_saved_model(graph, path, card_text=card_text)
    if fmt == "onnx" and trained:
        return qat.to_onnx_int8(graph, path, options.opset)
    if fmt == "onnx" and quant == "int8":
        return onnx_int8.to_onnx_int8(path.parent / _artifact_name("onnx", None, None), path,
                                      data)
    if fmt == "onnx":
        to_onnx = qat.to_onnx_float if qat.is_quantize_aware(graph) else convert.to_onnx
        return to_onnx(graph, path, options.opset)
    if fmt == "tflite_micro":
        return micro.to_tflite_micro(graph, path, representative_data=data,
                                     io=options.micro_io, trained_ranges=trained)
    return tflite_convert.to_tflite(
        graph, path, quantization=quant, representative_data=data,
        int8_io=options.int8_io, allow_flex=options.allow_flex,
        batch_size=options.fixed_batch, saved_model=saved_model,
        float_head=options.int8_float_head, trained_ranges=trained)


def _micro_extras(tmp, name, info, card_text) -> dict:
    """The C sources beside a tflite_micro model, and its measured arena."""
    from export import micro, micro_runtime, micro_sources
    content = (tmp / name).read_bytes()
    smallest = micro_runtime.smallest_arena(tmp / name)
    inputs, outputs = micro.edge_quantization(content)
    info["micro"].update(
        flash_bytes=len(content), arena_min_bytes=smallest,
        arena_bytes=micro_runtime.arena_with_margin(smallest),
        arena_margin=f"+{micro_runtime.ARENA_MARGIN:.0%}, at least "
                     f"{micro_runtime.ARENA_MARGIN_MIN} bytes, 16-byte aligned",
        input_quantization=inputs, output_quantization=outputs,
        sources={f: dict(zip(("size_bytes", "sha256"), manifest_io.sha256(tmp / f)))
                 for f in micro_sources.write_sources(tmp, content, info["micro"]["resolver"],
                                                    card_text)})
    return info


def _load_runner(path, fmt, info):
    from export import runtime
    if fmt == "tflite_micro":
        from export.micro_runtime import TFLiteMicroRunner
        # At the arena the manifest promises: validation proves that size works.
        return TFLiteMicroRunner(path, arena_size=info["micro"]["arena_bytes"])
    return runtime.load_artifact(path)


def _describe_and_validate(tmp, name, fmt, quant, info, seconds, reference, *, options,
                           data, decision="argmax", agreement=False):
    """The manifest entry of one written artifact, validated unless
    ``reference`` is None; returns ``(entry, failures)``. ``agreement``: judge it
    by agreement with Keras like int8, whatever its quantization (a QAT model's
    float artifacts round at the same points, and float summation order moves
    a value across a rounding midpoint now and then)."""
    from export.gpu_compat import gpu_compatibility
    from export.validate import compare_with_litert, validate_artifact
    path = tmp / name
    load_start = time.perf_counter()
    runner = _load_runner(path, fmt, info)
    load_seconds = time.perf_counter() - load_start
    size, digest = manifest_io.sha256(path)
    entry = {"path": name, "format": fmt, "quantization": quant,
             "inputs": runner.input_spec, "outputs": runner.output_spec,
             "size_bytes": size, "sha256": digest, **info,
             "conversion_seconds": round(seconds, 3)}
    if fmt in ("tflite", "tflite_micro"):
        entry["fixed_batch"] = options.fixed_batch if fmt == "tflite" else 1
        entry["gpu_delegate"] = gpu_compatibility(path.read_bytes())
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
    result, fails = validate_artifact(name, runner, reference,
                                      quantization="int8" if agreement else quant,
                                      atol=options.atol, data=data, decision=decision)
    if fmt == "tflite_micro":
        steps = [q["scale"] for q in info["micro"]["output_quantization"]]
        litert, more = compare_with_litert(name, runner, path, data, steps, decision)
        result["litert"], result["passed"] = litert, result["passed"] and not more
        fails = fails + more
    # Loading the artifact into its runtime is part of the check.
    result["seconds"] = round(result["seconds"] + load_seconds, 3)
    entry["validation"] = result
    return entry, fails
