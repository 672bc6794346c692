"""The files of a per-layer quantization report (:mod:`export.explain`):
``report.json`` (everything), ``report.md`` (one table per target) and
``error_per_layer.png`` (each layer's ``alone_error``, one panel per target),
written together into one directory that is replaced atomically."""
from __future__ import annotations

import json
from pathlib import Path

from export.checks import check_out_dir

REPORT_JSON, REPORT_MD, REPORT_PNG = "report.json", "report.md", "error_per_layer.png"
TITLES = {"tflite": "TFLite int8", "onnx_int8": "int8 ONNX", "tflite_micro": "TFLite Micro"}


def check_report_dir(out_dir) -> Path:
    """``out_dir`` as a Path if a report may (re)place it (see ``checks.check_out_dir``)."""
    return check_out_dir(out_dir, marker=REPORT_JSON, label="--out", kind="report")


def _number(value, fmt) -> str:
    return "-" if value is None else format(value, fmt)


def markdown(report: dict) -> str:
    """One section per target: its baseline and a row per layer."""
    lines = [f"# int8 per-layer report: {report['model'] or 'in-memory model'}", "",
             f"Decision: {report['decision']}; {report['samples']} held-out samples, "
             f"{report['calibration_samples']} calibration samples. `alone error`: relative "
             "RMS error of the output when only this layer is int8; `kept float`: agreement "
             "with Keras when only this layer stays float; `local`: the runtime tool's own "
             "per-op error.", ""]
    for target, result in report["targets"].items():
        lines += [f"## {TITLES.get(target, target)} ({result['runtime']})", "",
                  f"As shipped: agreement {_number(result['agreement'], '.4f')}, relative "
                  f"error {result['error']:.4f}. Worst layer: **{result['worst']}**."
                  + (f" Kept float when shipped: {', '.join(result['float_head'])}."
                     if result["float_head"] else ""), "",
                  "| layer | op | alone error | kept float | range | scale | max abs weight "
                  "| local |", "|---|---|---|---|---|---|---|---|"]
        for r in result["layers"]:
            span = "-" if r["range"] is None else f"[{r['range'][0]:.3g}, {r['range'][1]:.3g}]"
            kept = _number(r["kept_float_agreement"], ".4f") + (
                " (shipped float)" if r["shipped_float"] else
                " (re-quantized by onnxruntime)" if r.get("kept_float_requantized") else "")
            lines.append(f"| {r['layer'] or r['node']} | {r['op']} | {r['alone_error']:.4f} | "
                         f"{kept} | {span} | {_number(r['scale'], '.3g')} | "
                         f"{_number(r['weight_max_abs'], '.3g')} | "
                         f"{_number(r['local_error'], '.3g')} |")
        lines += ["", f"`local`: {result['layers'][0]['local_metric']}." if result["layers"]
                  else "", ""]
    return "\n".join(lines)


def figure(report: dict):
    """Bar chart of each layer's alone error, one panel per target."""
    from utils.figures import pyplot
    plt = pyplot()
    targets = report["targets"]
    fig, axes = plt.subplots(len(targets), 1, figsize=(8, 2.6 * len(targets)), squeeze=False)
    for ax, (target, result) in zip(axes[:, 0], targets.items()):
        names = [r["layer"] or r["node"][:24] for r in result["layers"]]
        errors = [r["alone_error"] for r in result["layers"]]
        colors = ["tab:red" if n == result["worst"] else "tab:blue" for n in names]
        ax.bar(range(len(names)), errors, color=colors)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("alone error")
        ax.set_title(f"{TITLES.get(target, target)}: output error with one layer int8",
                     fontsize=9)
    fig.tight_layout()
    return fig


def write(out_dir, report: dict) -> Path:
    """Write the three files into ``out_dir`` (replaced atomically); returns it."""
    from utils.figures import save_figure
    from utils.io import atomic_directory
    out = check_report_dir(out_dir)
    with atomic_directory(out) as tmp:
        (tmp / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
        (tmp / REPORT_MD).write_text(markdown(report))
        save_figure(figure(report), tmp / REPORT_PNG)
    return out
