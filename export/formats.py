"""The export formats, one registry entry each (:data:`REGISTRY`).

An :class:`ExportFormat` owns all that differs between formats: which quantizations a
request makes it write, the file name of each, its converter, the writer that stores
the model card in the format's own metadata (:mod:`export.metadata`), the runner that
validates it, the tolerance a float artifact is held to, and the facts the manifest
records about where it can run. The exporter, validation, the manifest and the command
line look a format up here; none of them branches on a format's name.

The converters stay in their modules (:mod:`export.convert`,
:mod:`export.tflite_convert`, :mod:`export.micro`, :mod:`export.onnx_int8`,
:mod:`export.qat`); the adapters here only hand a :class:`Job` to them. Every import
of a converter or runtime is lazy, so reading the registry loads no TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

# TFLite variants a request can ask for (None = float32).
QUANTIZATIONS = (None, "float16", "dynamic", "int8")
# (atol, rtol) a float artifact is held to, per quantization. float32: the runtimes
# reorder float sums, a few ulp. float16 weights: ~2**-11 relative error per weight,
# accumulated over a layer. Dynamic range: int8 weights per channel and activations
# quantized on the fly per batch, ~1% of the output range. Measured margins are in
# docs/export.md. int8 is judged by agreement instead (export.validate).
TOLERANCES = {None: (1e-5, 1e-5), "float16": (1e-2, 1e-2), "dynamic": (1e-1, 5e-2)}


@dataclass(frozen=True)
class Job:
    """One artifact to write: what a converter is handed.

    Attributes:
        graph: the export graph (``keras.Model``) the converter traces.
        path: where the artifact goes (inside the export's temporary directory).
        quantization: None (float32), "float16", "dynamic" or "int8".
        options: the checked request, ``export.checks.Options``.
        data: float32 calibration inputs ``[N, ...]``, or None.
        trained: int8 from the trained ranges of a quantization-aware graph.
        card_text: the model card's JSON (a SavedModel serves it as a signature).
        written: the artifacts of this export written so far, by (format, quantization).
    """

    graph: Any
    path: Path
    quantization: str | None
    options: Any
    data: Any = None
    trained: bool = False
    card_text: str | None = None
    written: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class ExportFormat:
    """Everything the toolkit knows about one export format.

    Attributes:
        name: the format's name in ``formats=`` and in the manifest.
        title: how messages name it ("TFLite").
        kind: the runtime kind its files load as (``export.runtime.KINDS``).
        file_name: ``(quantization, options) -> str``, the artifact's name.
        convert: ``(job) -> dict``: writes the artifact; returns what the converter
            learned about it (ops, opset, ...) for the manifest.
        write_card: ``(path, card_text)``: stores the model card in the written file.
        load_runner: ``(path, info) -> Runner`` (``info``: what ``convert`` returned).
        facts: ``(path, options) -> dict``: the manifest's deployment facts.
        ops_cell: ``(entry) -> str``: the "ops" column of ``manifest.md``.
        always: quantizations it writes whatever ``quantize`` says.
        quantizations: the ones it writes when ``quantize`` asks for them.
        tolerances: ``{quantization: (atol, rtol)}`` of its float artifacts.
        needs_data: refused without representative data (the reason, or None).
        check_model: ``(model)``: refuses a model it cannot represent, or None.
        finish: ``(path, info, card_text) -> info``: files beside the artifact, or None.
        cross_check: ``(name, runner, path, data, info, decision) -> (result,
            failures)``: a second runtime's verdict on the same file, or None.
    """

    name: str
    title: str
    kind: str
    file_name: Callable
    convert: Callable
    write_card: Callable
    load_runner: Callable
    facts: Callable
    ops_cell: Callable
    always: tuple = ()
    quantizations: tuple = ()
    tolerances: Mapping = field(default_factory=dict)
    needs_data: str | None = None
    check_model: Callable | None = None
    finish: Callable | None = None
    cross_check: Callable | None = None

    def variants(self, options) -> list:
        """The quantizations this request writes, in order."""
        return list(self.always) + [q for q in options.quantize
                                    if q in self.quantizations and q not in self.always]

    def tolerance(self, quantization):
        """``(atol, rtol)`` of a float artifact; None: judged by agreement (int8)."""
        return self.tolerances.get(quantization)


REGISTRY: dict[str, ExportFormat] = {}


def register(fmt: ExportFormat) -> ExportFormat:
    """Add a format to :data:`REGISTRY`; a second entry of one name is an error."""
    if fmt.name in REGISTRY:
        raise ValueError(f"Export format {fmt.name!r} is registered twice.")
    REGISTRY[fmt.name] = fmt
    return fmt


def get(name: str) -> ExportFormat:
    """The registry entry of a format.

    Raises:
        ExportError: an unknown name, with the closest ones.
    """
    from export.errors import ExportError
    from utils.names import did_you_mean
    if name not in REGISTRY:
        raise ExportError(f"Unknown export format {name!r}."
                          f"{did_you_mean(name, list(REGISTRY), n=2, cutoff=0.4, quote=True)}"
                          f" Valid formats: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def takers(quantization) -> list[ExportFormat]:
    """The formats that write ``quantization`` when ``quantize`` asks for it."""
    return [f for f in REGISTRY.values() if quantization in f.quantizations]


# ---------------------------------------------------------------- shared pieces
def _runtime_runner(path, info):
    from export import runtime
    return runtime.load_artifact(path)


def _needs_full_tensorflow(path, options) -> dict:
    # A SavedModel needs full TensorFlow: edge readiness does not apply.
    return {"uses_flex": False, "custom_ops": [], "edge_ready": None}


def _onnx_facts(path, options) -> dict:
    return {"uses_flex": False, "custom_ops": [], "edge_ready": True}


def _tflite_facts(path, options, fixed_batch) -> dict:
    from export.gpu_compat import gpu_compatibility
    return {"fixed_batch": fixed_batch, "gpu_delegate": gpu_compatibility(path.read_bytes())}


def _op_list(entry) -> str:
    return ", ".join(entry.get("ops", []))


def _tflite_card(path, card_text):
    from export import metadata
    metadata.write_tflite_card(path, card_text)


# ---------------------------------------------------------------- SavedModel
def _to_saved_model(job: Job) -> dict:
    from export import convert
    return convert.to_saved_model(job.graph, job.path, card_text=job.card_text)


def _saved_model_card(path, card_text):
    from export import metadata
    metadata.write_saved_model_card(path, card_text)


SAVED_MODEL = register(ExportFormat(
    name="saved_model", title="SavedModel", kind="saved_model",
    file_name=lambda quantization, options: "saved_model",
    convert=_to_saved_model, write_card=_saved_model_card, load_runner=_runtime_runner,
    facts=_needs_full_tensorflow, ops_cell=lambda entry: "TensorFlow",
    always=(None,), tolerances={None: TOLERANCES[None]}))


# ---------------------------------------------------------------- ONNX
def _onnx_name(quantization, options=None) -> str:
    return "model_int8.onnx" if quantization == "int8" else "model.onnx"


def _to_onnx(job: Job) -> dict:
    from export import convert, onnx_int8, qat
    if job.trained:
        return qat.to_onnx_int8(job.graph, job.path, job.options.opset)
    if job.quantization == "int8":  # quantizes the float ONNX written just before
        return onnx_int8.to_onnx_int8(job.written[("onnx", None)], job.path, job.data)
    to_onnx = qat.to_onnx_float if qat.is_quantize_aware(job.graph) else convert.to_onnx
    return to_onnx(job.graph, job.path, job.options.opset)


def _onnx_card(path, card_text):
    from export import metadata
    metadata.write_onnx_card(path, card_text)


ONNX = register(ExportFormat(
    name="onnx", title="ONNX", kind="onnx", file_name=_onnx_name,
    convert=_to_onnx, write_card=_onnx_card, load_runner=_runtime_runner,
    facts=_onnx_facts, ops_cell=lambda entry: f"opset {entry['opset']}",
    always=(None,), quantizations=("int8",), tolerances={None: TOLERANCES[None]}))


# ---------------------------------------------------------------- TFLite
def _tflite_name(quantization, options) -> str:
    batch = options.fixed_batch
    return ("model" + (f"_{quantization}" if quantization else "")
            + (f"_b{batch}" if batch else "") + ".tflite")


def _to_tflite(job: Job) -> dict:
    from export import tflite_convert
    o = job.options
    # The SavedModel of this export is reused when it has the same (dynamic) batch:
    # tracing and writing one costs as much as the conversion itself.
    saved = job.written.get(("saved_model", None)) if o.fixed_batch is None else None
    return tflite_convert.to_tflite(
        job.graph, job.path, quantization=job.quantization, representative_data=job.data,
        int8_io=o.int8_io, allow_flex=o.allow_flex, batch_size=o.fixed_batch,
        saved_model=saved, float_head=o.int8_float_head, trained_ranges=job.trained,
        int8_fallback=o.int8_fallback, decision=_decision(job.card_text))


def _decision(card_text) -> str:
    """What the model card says the first output decides."""
    import json
    return json.loads(card_text)["decision"] if card_text else "argmax"


TFLITE = register(ExportFormat(
    name="tflite", title="TFLite", kind="tflite", file_name=_tflite_name,
    convert=_to_tflite, write_card=_tflite_card, load_runner=_runtime_runner,
    facts=lambda path, options: _tflite_facts(path, options, options.fixed_batch),
    ops_cell=_op_list, quantizations=QUANTIZATIONS,
    tolerances={q: TOLERANCES[q] for q in (None, "float16", "dynamic")}))


# ---------------------------------------------------------------- TFLite Micro
def _to_micro(job: Job) -> dict:
    from export import micro
    return micro.to_tflite_micro(job.graph, job.path, representative_data=job.data,
                                 io=job.options.micro_io, trained_ranges=job.trained)


def _check_micro_model(model):
    from export.micro import check_static_inputs
    check_static_inputs(model)  # the message says what TFLite Micro needs


def _micro_sources(path, info, card_text) -> dict:
    """The C sources beside a tflite_micro model, and its measured arena."""
    from export import manifest, micro, micro_runtime, micro_sources
    content = path.read_bytes()
    smallest = micro_runtime.smallest_arena(path)
    inputs, outputs = micro.edge_quantization(content)
    info["micro"].update(
        flash_bytes=len(content), arena_min_bytes=smallest,
        arena_bytes=micro_runtime.arena_with_margin(smallest),
        arena_margin=f"+{micro_runtime.ARENA_MARGIN:.0%}, at least "
                     f"{micro_runtime.ARENA_MARGIN_MIN} bytes, 16-byte aligned",
        input_quantization=inputs, output_quantization=outputs,
        sources={f: dict(zip(("size_bytes", "sha256"), manifest.sha256(path.parent / f)))
                 for f in micro_sources.write_sources(path.parent, content,
                                                      info["micro"]["resolver"], card_text)})
    return info


def _micro_runner(path, info):
    from export.micro_runtime import TFLiteMicroRunner
    # At the arena the manifest promises: validation proves that size works.
    return TFLiteMicroRunner(path, arena_size=info["micro"]["arena_bytes"])


def _micro_vs_litert(name, runner, path, data, info, decision):
    from export.validate import compare_with_litert
    steps = [q["scale"] for q in info["micro"]["output_quantization"]]
    return compare_with_litert(name, runner, path, data, steps, decision)


TFLITE_MICRO = register(ExportFormat(
    name="tflite_micro", title="TFLite Micro", kind="tflite",
    file_name=lambda quantization, options: "model_micro.tflite",
    convert=_to_micro, write_card=_tflite_card, load_runner=_micro_runner,
    facts=lambda path, options: _tflite_facts(path, options, 1), ops_cell=_op_list,
    always=("int8",),
    needs_data="tflite_micro needs representative_data: real inputs [N, ...] to calibrate "
               "the fully-int8 model and to check it on held-out data (CLI: "
               "--representative-data digits).",
    check_model=_check_micro_model, finish=_micro_sources, cross_check=_micro_vs_litert))


FORMATS = tuple(REGISTRY)
# tflite_micro needs calibration data, so it is not among the defaults.
DEFAULT_FORMATS = ("saved_model", "onnx", "tflite")
