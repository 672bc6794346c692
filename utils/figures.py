"""Matplotlib figures written atomically (headless backend, temp file + rename).

One owner for "how a PNG is written" outside ``training/``: the classic models'
``learning_plots`` hooks use it (``models`` may not import ``training``).
"""
from __future__ import annotations

from pathlib import Path

from utils.io import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Write ``fig`` to ``path`` as a PNG atomically and close it; returns the path."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return path
