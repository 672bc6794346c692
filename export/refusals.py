"""A refused artifact: one that failed its validation, or that its format could not
convert (``UnsupportedOpsError``), while the rest of the export passed.

The exporter publishes the artifacts that passed and lists each refused one in the
manifest's ``refused`` list (:func:`refused_entry`, :func:`unconverted_entry`): the path
it would have had, its format and quantization, the check it failed with the figure
and the bound, the failure messages, and what to do about it (:func:`fix`). What a
failure allows as a fix follows from the check that failed and the artifact's kind,
never from a name.
"""
from __future__ import annotations

from export.validate import agreement_name

QAT_FIX = "train it quantization-aware (train.py --qat-epochs K) and export the QAT model"
DATA_FIX = ("calibrate on more representative data (representative_data= / "
            "--representative-data: a few hundred real training inputs of every class)")
FLOAT_HEAD_FIX = ("keep the output layer and its softmax in float (int8_float_head=True / "
                  "--int8-float-head)")
# Checks that say the artifact does not compute the Keras function at all.
_BROKEN = ("count", "shape", "dtype", "run")


def fix(check: str, fmt, quantization, options) -> str:
    """What the user can do about an artifact refused by ``check`` (a failure's
    ``check`` of ``export.validate``, or "ops" for an unconvertible one)."""
    if check == "agreement":
        fixes = [DATA_FIX, QAT_FIX]
        if fmt.name == "tflite" and quantization == "int8" and not options.int8_float_head:
            fixes.insert(0, FLOAT_HEAD_FIX)
        return "; or ".join(fixes)
    if check == "litert":
        return ("TFLite Micro and LiteRT decide differently on this int8 file: deploy "
                "model_int8.tflite with LiteRT (formats tflite, quantize int8) instead, or "
                "measure where the two engines part with bench/micro_kernels.py; "
                + QAT_FIX)
    if check == "values":
        return ("if that difference is acceptable for your use, loosen the float tolerance "
                "(atol= / --atol); otherwise report it: a float artifact should compute "
                "the Keras function")
    if check in _BROKEN:
        return ("the artifact does not run as the Keras model does: a bug in the converter "
                "or in this tool; report it with manifest.json")
    return "see the reason; the other artifacts of this export are unaffected"


def _figure(failure: dict, validation: dict | None) -> dict:
    """The number the artifact was refused for, and its bound."""
    check = failure["check"]
    if check == "agreement" and validation:
        return {"check": check, "name": agreement_name(validation),
                "value": validation["top1_agreement"], "bound": validation["top1_bound"],
                "samples": validation["samples"]}
    if check == "litert":
        return {"check": check, "name": "same decision as LiteRT",
                "value": failure["max_abs_diff"], "bound": failure["tolerance"]}
    return {"check": check, "name": "max abs diff" if check == "values" else check,
            "value": failure["max_abs_diff"], "bound": failure["tolerance"]}


def refused_entry(entry: dict, failures: list[dict], fmt, options) -> dict:
    """The ``refused`` entry of a written artifact that failed validation (``entry``: its
    manifest entry; ``failures``: its failure dicts)."""
    first = failures[0]
    return {"path": entry["path"], "format": entry["format"],
            "quantization": entry["quantization"], "figure": _figure(first, entry["validation"]),
            "reason": "; ".join(f["message"] for f in failures),
            "fix": fix(first["check"], fmt, entry["quantization"], options),
            "failures": failures, "validation": entry["validation"]}


def unconverted_entry(name: str, fmt, quantization, exc) -> dict:
    """The ``refused`` entry of an artifact its format could not convert
    (``exc``: the ``UnsupportedOpsError``, whose message names the ops and the fix)."""
    return {"path": name, "format": fmt.name, "quantization": quantization,
            "figure": {"check": "ops", "name": "unsupported ops", "value": list(exc.ops),
                       "bound": None},
            "reason": f"{name}: {exc}",
            "fix": (f"replace the layers that lower to {', '.join(exc.ops) or 'those ops'}, "
                    f"or leave {fmt.name} out of formats"),
            "failures": [], "validation": None}


def summary(entry: dict) -> str:
    """One line for a refused artifact: what, the figure, the fix."""
    quant = entry["quantization"] or "float32"
    return (f"{entry['path']} ({entry['format']} {quant}) refused: "
            f"{entry['reason'].split(': ', 1)[-1]}. Fix: {entry['fix']}.")
