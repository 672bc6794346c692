"""Presenting an ``EvaluationResult``: terminal table, Markdown report, confusion-matrix plots."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Per-class tables with more rows than this stay in the JSON / report only.
MAX_CLASSES_ON_TERMINAL = 20


def _num(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return format(value, fmt)


def _grid(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def summary_rows(result) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main table (one row per artifact)."""
    header = ["artifact", "kind", "accuracy", "top-5", "loss", "agreement", "images/s",
              "ms/batch"]
    rows = [[a.label, a.kind + (f"/{a.quantization}" if a.quantization else ""),
             _num(a.accuracy, ".4f"), _num(a.top5_accuracy, ".4f"), _num(a.loss, ".4f"),
             _num(a.agreement, ".4f"), _num(a.throughput, ",.0f"), _num(a.latency_ms, ".3f")]
            for a in result.artifacts]
    return header, rows


def per_class_rows(result) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-class table: precision/recall per artifact (A1, A2, ...)."""
    header = ["class"] + [f"A{i + 1} P/R" for i in range(len(result.artifacts))]
    rows = []
    for c, name in enumerate(result.class_names):
        rows.append([name] + [f"{a.precision[c]:.3f}/{a.recall[c]:.3f}" for a in result.artifacts])
    return header, rows


def format_table(result) -> str:
    """The terminal report: main table, then per-class precision/recall (small datasets)."""
    lines = [f"{result.dataset} [{result.split}]: {result.num_examples:,} examples, "
             f"{result.num_classes} classes, batch size {result.batch_size}; agreement = "
             f"top-1 agreement with the first artifact"]
    header, rows = summary_rows(result)
    lines += _grid(header, rows, right=set(range(2, len(header))))
    if result.num_classes <= MAX_CLASSES_ON_TERMINAL:
        lines.append("")
        lines.append("per-class precision/recall (" + ", ".join(
            f"A{i + 1} = {a.label}" for i, a in enumerate(result.artifacts)) + ")")
        header, rows = per_class_rows(result)
        lines += _grid(header, rows, right=set(range(1, len(header))))
    for a in result.artifacts:
        if a.out_of_range_predictions:
            lines.append(f"note: {a.label} predicted a class outside the dataset's "
                         f"{result.num_classes} for {a.out_of_range_predictions} example(s)")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "artifact"


def plot_confusion_matrix(matrix, class_names, title: str, path) -> None:
    """Save a confusion-matrix heat map (counts in the cells when there is room) as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's first import
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    size = min(4 + 0.45 * k, 16)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        image = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ticks = np.arange(k)
        labels = [str(c) for c in class_names]
        ax.set_xticks(ticks, labels=labels, rotation=90 if k > 10 else 0)
        ax.set_yticks(ticks, labels=labels)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        if k <= 20:
            threshold = matrix.max() / 2 if matrix.size else 0
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if matrix[i, j] > threshold else "black")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _md_table(header, rows) -> list[str]:
    def esc(cell):
        return str(cell).replace("|", "\\|")

    return (["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
            + ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows])


def markdown(result, images: list[str]) -> str:
    """The report's Markdown text; ``images[i]`` is artifact i's plot file name."""
    lines = [f"# Evaluation on {result.dataset} [{result.split}]", "",
             f"{result.num_examples:,} examples, {result.num_classes} classes, batch size "
             f"{result.batch_size}. Agreement is the fraction of examples on which an artifact's "
             f"top-1 prediction equals the first artifact's. Throughput and latency are measured "
             f"around the runtime calls only (each artifact in its own runtime).", ""]
    header, rows = summary_rows(result)
    lines += _md_table(header, rows) + [""]
    lines += ["## Per-class precision / recall", ""]
    lines += ["Columns: " + ", ".join(f"A{i + 1} = `{a.label}`" for i, a in
                                      enumerate(result.artifacts)), ""]
    header, rows = per_class_rows(result)
    lines += _md_table(header, rows) + [""]
    for a, image in zip(result.artifacts, images):
        lines += [f"## {a.label}", "",
                  f"Kind `{a.kind}`" + (f", quantization `{a.quantization}`" if a.quantization
                                        else "") + f", outputs read as {a.output_kind}; "
                  f"path `{a.path}`.", "", f"![confusion matrix of {a.label}]({image})", ""]
        names = [str(c) for c in result.class_names]
        lines += _md_table(["true \\ predicted"] + names,
                           [[names[i]] + [str(v) for v in row]
                            for i, row in enumerate(a.confusion_matrix)]) + [""]
        if a.out_of_range_predictions:
            lines += [f"{a.out_of_range_predictions} prediction(s) fell outside the dataset's "
                      f"classes (counted as errors, not shown in the matrix).", ""]
    return "\n".join(lines)


def write_report(result, directory) -> Path:
    """Write ``report.md``, ``results.json`` and one confusion-matrix PNG per artifact.

    The directory is built beside ``directory`` and swapped in only when
    complete (``utils.io.atomic_directory``): an earlier report survives a failure.

    Returns:
        Path of ``report.md``.
    """
    from utils.io import atomic_directory

    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        images = []
        for i, a in enumerate(result.artifacts):
            name = f"confusion_{i + 1}_{_slug(a.label)}.png"
            plot_confusion_matrix(a.confusion_matrix, result.class_names,
                                  f"{a.label}\naccuracy {a.accuracy:.4f}", tmp / name)
            images.append(name)
        (tmp / "report.md").write_text(markdown(result, images) + "\n")
        (tmp / "results.json").write_text(result.to_json())
    return directory / "report.md"
