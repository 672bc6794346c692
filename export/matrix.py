"""The activation export matrix: every activation x every format, validated.

All activations share one model (one input, one shared Dense, then one
output per activation), so the matrix costs one conversion per format
instead of one per (activation, format). When a shared export fails, each
activation is exported alone to name the culprit(s), so a failure is still
reported per activation.

Activations come from two registries: ours (``activations.list_activations``)
and Keras' builtins (the public functions of ``keras.activations``).
"""
from __future__ import annotations

import fnmatch
import tempfile
from pathlib import Path

import numpy as np

from export.errors import ExportError, ValidationError

INPUT_DIM = 8
WIDTH = 16
# Keras builtins that need arguments: given here so they are covered too.
KERAS_PARAMS = {"threshold": {"threshold": 0.5, "default_value": -1.0}}
# Functions of keras.activations that are not activations.
_NOT_ACTIVATIONS = {"get", "serialize", "deserialize"}


def keras_builtin_names() -> list[str]:
    """Sorted names of Keras' builtin activation functions (plus gelu_approximate)."""
    import inspect

    import keras
    names = [n for n, f in vars(keras.activations).items()
             if not n.startswith("_") and inspect.isfunction(f) and n not in _NOT_ACTIVATIONS]
    return sorted(names + ["gelu_approximate"])


def activation_cases(pattern: str = "*") -> list[str]:
    """Matrix rows: ``ours:<name>`` and ``keras:<name>`` matching ``pattern``."""
    import activations
    cases = [f"ours:{n}" for n in activations.list_activations()]
    cases += [f"keras:{n}" for n in keras_builtin_names()]
    return [c for c in cases if fnmatch.fnmatchcase(c, pattern)]


def activation_layer(case: str):
    """A fresh layer for a matrix case (``ours:<name>`` / ``keras:<name>``)."""
    import functools

    import keras
    kind, name = case.split(":", 1)
    if kind == "ours":
        import activations
        layer = activations.get(name)
        return type(layer).from_config({**layer.get_config(), "name": f"act_{name}"})
    if name == "gelu_approximate":
        fn = functools.partial(keras.activations.gelu, approximate=True)
    elif name == "gelu":
        fn = functools.partial(keras.activations.gelu, approximate=False)
    else:
        fn = getattr(keras.activations, name)
        if name in KERAS_PARAMS:
            fn = functools.partial(fn, **KERAS_PARAMS[name])
    return keras.layers.Activation(fn, name=f"keras_{name}")


def matrix_model(cases):
    """One model: Input(8) -> per case Dense(16) -> activation -> one output.

    Each case gets its own Dense so that converter pattern fusions (TFLite
    fuses the erfc form of exact GELU into its GELU op) see the same graph as
    in a one-activation model; the kernel and bias are fixed so that
    pre-activations span about [-9, 9]: both tails and the kink at 0 of every
    activation are exercised.
    """
    import keras
    inp = keras.Input((INPUT_DIM,), name="x")
    rng = np.random.default_rng(0)
    outs = []
    for i, case in enumerate(cases):
        dense = keras.layers.Dense(WIDTH, name=f"pre_{i}")
        h = dense(inp)
        dense.set_weights([rng.normal(0, 1.0, (INPUT_DIM, WIDTH)).astype("float32"),
                           np.linspace(-6, 6, WIDTH).astype("float32")])
        outs.append(activation_layer(case)(h))
    return keras.Model(inp, outs, name="activation_matrix")


def _export_group(cases, formats, workdir) -> dict:
    """Export one group; returns case -> {format: result or error string}."""
    from export.exporter import export_model
    model = matrix_model(cases)
    out = Path(workdir) / "group"
    results = {c: {} for c in cases}
    try:
        manifest = export_model(model, out, formats=formats)
    except ValidationError as exc:
        by_output = {}
        for f in exc.failures:
            by_output.setdefault(f["output"], []).append(f)
        for i, case in enumerate(cases):
            for fmt in formats:
                fails = [f for f in by_output.get(f"output_{i}", []) + by_output.get(None, [])
                         if _fmt_of(f["artifact"]) == fmt]
                results[case][fmt] = ("; ".join(f["message"] for f in fails) if fails
                                      else "passed (group failed elsewhere)")
        return results
    for a in manifest["artifacts"]:
        for i, case in enumerate(cases):
            o = a["validation"]["outputs"][i]
            results[case][a["format"]] = {"max_abs_diff": o["max_abs_diff"],
                                          "max_rel_diff": o["max_rel_diff"]}
    return results


def _fmt_of(artifact: str) -> str:
    if artifact.endswith(".onnx"):
        return "onnx"
    return "tflite" if artifact.endswith(".tflite") else "saved_model"


def run_matrix(cases=None, formats=("saved_model", "onnx", "tflite")) -> dict:
    """Export and validate every case; isolate failures per activation.

    Returns:
        ``{case: {format: {"max_abs_diff", "max_rel_diff"} | "error text"}}``.
    """
    cases = list(cases if cases is not None else activation_cases())
    with tempfile.TemporaryDirectory(prefix="export-matrix-") as work:
        try:
            return _export_group(cases, formats, work)
        except (ExportError, ValueError) as group_error:
            if len(cases) == 1:
                return {cases[0]: {f: f"{type(group_error).__name__}: {group_error}"
                                   for f in formats}}
        results = {}
        for case in cases:  # one conversion failed: find which activation
            for fmt in formats:
                results.setdefault(case, {}).update(
                    run_matrix([case], formats=(fmt,))[case])
        return results


def matrix_markdown(results: dict, label: str = "activation") -> str:
    """A Markdown table of :func:`run_matrix` results, or of
    ``export.matrix_models``' (columns in the order the cells were made)."""
    formats = list(dict.fromkeys(f for r in results.values() for f in r))
    lines = [f"| {label} | " + " | ".join(formats) + " |",
             "|---|" + "---|" * len(formats)]
    for case in sorted(results):
        cells = []
        for fmt in formats:
            r = results[case].get(fmt)
            if isinstance(r, dict) and "arena_bytes" in r:
                agreement = (f", {r['top1_agreement']:.2%} agreement"
                             if "top1_agreement" in r else "")
                cells.append(f"ok: flash {r['flash_bytes']:,} B, arena {r['arena_bytes']:,} B"
                             f"{agreement} ({', '.join(r['ops'])})")
            elif isinstance(r, dict) and "top1_agreement" in r:
                from export.validate import agreement_name
                cells.append(f"{'ok' if r.get('passed', True) else 'FAIL'} "
                             f"({agreement_name(r)} {r['top1_agreement']:.2%})")
            elif isinstance(r, dict) and "max_abs_diff" in r:
                cells.append(f"ok ({r['max_abs_diff']:.1e})")
            elif r is None:
                cells.append("")
            elif isinstance(r, dict) and "note" in r:
                cells.append(r["note"].splitlines()[0][:240])
            else:
                cells.append("FAIL: " + str(r).splitlines()[0][:240])
        lines.append(f"| `{case}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
