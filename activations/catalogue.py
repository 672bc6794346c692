"""The catalogue as text: terminal table, Markdown table, and the plot grid.

Everything is generated from the registry (``describe``), so a newly
registered activation shows up in every view without touching this file.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from activations._registry import describe, get, list_activations
from utils.io import atomic_path, atomic_write_text

LIST_COLUMNS = ("name", "parameters", "range", "zero-centred", "monotonic", "saturation")
MARKDOWN_HEADER = ("Function", "Equation", "Derivative", "Range", "Zero-centred",
                   "Saturation")
_LATEX_TO_TEXT = [(r"\infty", "inf"), (r"\{", "{"), (r"\}", "}"), (r"\cup", "U"),
                  (r"\lambda", "lambda"), (r"\alpha", "alpha"), (r"\beta", "beta"),
                  (r"\sum_i f_i", "sum f"), (r"\ ", " "), ("\\_", "_")]


def plain(latex: str) -> str:
    """A short LaTeX snippet (a range) as terminal text: ``(-\\infty, 0)`` -> ``(-inf, 0)``."""
    for old, new in _LATEX_TO_TEXT:
        latex = latex.replace(old, new)
    latex = re.sub(r"\\text\{([^}]*)\}", r"\1", latex)
    return re.sub(r"\\(\w+)", r"\1", latex)


def _yes_no(value) -> str:
    return value if isinstance(value, str) else ("yes" if value else "no")


def _parameters(entry: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in entry["parameters"].items()) or "-"


def list_table(pattern: str = "*") -> str:
    """The catalogue as an aligned plain-text table (``python -m activations list``).

    Args:
        pattern: fnmatch pattern of the names to include.

    Returns:
        The table, one activation per line after a header.
    """
    rows = [LIST_COLUMNS]
    for name in list_activations(pattern):
        e = describe(name)
        rows.append((name, _parameters(e), plain(e["range"]), _yes_no(e["zero_centered"]),
                     _yes_no(e["monotonic"]), e["saturates"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(LIST_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def entry_text(name: str) -> str:
    """Every catalogue field of activation ``name``, one ``key: value`` per line.

    Raises:
        UnknownActivationError: ``name`` is not registered.
    """
    entry = describe(name)
    width = max(map(len, entry))
    return "\n".join(f"{k.ljust(width)}  {_parameters(entry) if k == 'parameters' else v}"
                     for k, v in entry.items())


def _cell(latex: str) -> str:
    # A bare | would end the Markdown table cell.
    return "$" + latex.replace("|", r"\|") + "$"


def markdown_table() -> str:
    """The course-style summary table of every activation, as Markdown."""
    lines = ["| " + " | ".join(MARKDOWN_HEADER) + " |",
             "|" + "---|" * len(MARKDOWN_HEADER)]
    for name in list_activations():
        e = describe(name)
        lines.append("| " + " | ".join([
            f"`{name}`", _cell(e["formula"]), _cell(e["derivative"]), _cell(e["range"]),
            _yes_no(e["zero_centered"]), e["saturates"]]) + " |")
    return "\n".join(lines)


def markdown_document() -> str:
    """``docs/activations.md``: a short preamble and :func:`markdown_table`."""
    return (
        "# Activation catalogue\n\n"
        "Generated from the registry (`activations.describe`); do not edit by hand. "
        "`python -m activations plot --out DIR` regenerates this table together with "
        "`activations.png`, a grid of every function and its derivative; `python -m "
        "activations describe NAME` shows the full entry (monotonicity, vanishing "
        "gradient, cost, typical use, parameters, reference).\n\n"
        + markdown_table() + "\n")


def curves(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value and derivative of activation ``name`` (default parameters, inference).

    The derivative is a float64 central difference; at jumps (binary_step,
    hard_shrink) it is NaN rather than a spike. softmax is shown as its first
    component over the pair ``[x, 0]``.
    """
    layer = get(name, dtype="float64")

    def f(t):
        if name == "softmax":
            return np.asarray(layer(np.stack([t, np.zeros_like(t)], -1)))[:, 0]
        return np.asarray(layer(t[None]))[0]

    h = 1e-4
    y, dy = f(x), (f(x + h) - f(x - h)) / (2 * h)
    dy[np.abs(dy) > 1e3] = np.nan
    return y, dy


def plot_grid(path: str | Path, x_range: tuple[float, float] = (-5.0, 5.0)) -> Path:
    """Write one PNG grid: every activation (solid) and its derivative (dashed).

    Returns:
        The written path.

    Raises:
        OSError: ``path``'s directory cannot be created or written.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list_activations()
    cols = 6
    rows = -(-len(names) // cols)
    x = np.linspace(*x_range, 801)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        y, dy = curves(name, x)
        ax.plot(x, y, lw=1.8, label="f(x)")
        ax.plot(x, dy, lw=1.2, ls="--", label="f'(x)")
        ax.axhline(0, color="0.7", lw=0.6)
        ax.axvline(0, color="0.7", lw=0.6)
        ax.set_title("softmax([x, 0])[0]" if name == "softmax" else name, fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return Path(path)


def write_report(out_dir: str | Path) -> dict[str, Path]:
    """Write ``activations.png`` (plot grid) and ``activations.md`` into ``out_dir``.

    Each file is written atomically; an existing good file is only replaced
    by a complete new one.

    Returns:
        ``{"plot": png_path, "table": md_path}``.

    Raises:
        OSError: ``out_dir`` cannot be created or written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # fail before the slow plotting
    plot = plot_grid(out_dir / "activations.png")
    return {"plot": plot, "table": atomic_write_text(out_dir / "activations.md",
                                                     markdown_document())}
