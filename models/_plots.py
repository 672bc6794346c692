"""Plots that explain the classic nets (their ``learning_plots`` hooks): image grids of
prototypes or templates, energy over the recall steps, and the SOM's U-matrix."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from utils.figures import pyplot, save_figure


def image_shape(input_shape) -> tuple | None:
    """``(rows, cols)`` when rows of ``input_shape`` can be shown as images, else None."""
    shape = tuple(input_shape)
    if len(shape) >= 2 and math.prod(shape[2:]) == 1:
        return shape[0], shape[1]
    side = math.isqrt(math.prod(shape))
    return (side, side) if side * side == math.prod(shape) and side > 2 else None


def image_grid(images, path, *, shape, grid=None, titles=None, title="", cmap="gray"):
    """Rows of ``images`` ``[k, features]`` drawn as ``shape`` images on a grid.

    Args:
        grid: ``(rows, cols)``; default a near-square grid.
        titles: one short caption per image (or None).
    """
    images = np.asarray(images, dtype=np.float32)
    k = len(images)
    rows, cols = grid or (math.ceil(k / math.ceil(math.sqrt(k))), math.ceil(math.sqrt(k)))
    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 0.4, rows * 0.9 + 0.6),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < k:
            ax.imshow(images[i].reshape(shape), cmap=cmap, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=7, pad=2)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def energy_plot(energies, path, *, title="", xlabel="recall step"):
    """Energy of each recalled row (thin lines) and their mean (thick) per step.

    Args:
        energies: ``[steps + 1, rows]``: the energy before any update, then after each step.
    """
    energies = np.asarray(energies, dtype=np.float64)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = np.arange(len(energies))
    ax.plot(steps, energies, color="0.7", lw=0.8)
    ax.plot(steps, energies.mean(axis=1), "o-", color="C0", lw=2, label="mean")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("energy")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    return save_figure(fig, path)


def heatmap(values, path, *, title="", cmap="bone_r", label="", labels=None):
    """A 2-D array as an image with a colour bar (the SOM's U-matrix); ``labels`` (one
    per cell, row-major, None to skip) are written on the cells."""
    values = np.asarray(values)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(values, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, label=label)
    for k, text in enumerate(labels or ()):
        if text is not None:
            ax.text(k % values.shape[1], k // values.shape[1], str(text), ha="center",
                    va="center", fontsize=7, color="tab:red", fontweight="bold",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", alpha=0.7, lw=0))
    ax.set_title(title, fontsize=9)
    return save_figure(fig, Path(path))
