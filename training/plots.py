"""PNG plots of a run's history, written atomically."""
from __future__ import annotations

from pathlib import Path

from utils.io import atomic_path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return path


# History columns that are bookkeeping, not a metric to plot.
_NOT_METRICS = ("epoch", "lr", "time_s", "samples", "samples_per_s")


def plot_curves(history: list[dict], path: Path, title: str = "") -> Path:
    """Every metric of the history per epoch, train and validation in one panel each
    (backprop: loss and accuracy; a learning rule: its own figures)."""
    plt = _figure()
    epochs = [r["epoch"] for r in history]
    metrics = [k for k in history[0] if k not in _NOT_METRICS and not k.startswith("val_")
               and not k.startswith("grad_norm/")] if history else []
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(5 * max(len(metrics), 1), 4),
                             squeeze=False)
    for ax, key in zip(axes[0], metrics):
        ax.plot(epochs, [r[key] for r in history], "o-", label=f"train {key}")
        if f"val_{key}" in history[0]:
            ax.plot(epochs, [r[f"val_{key}"] for r in history], "s--", label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_gradient_norms(history: list[dict], path: Path, title: str = "") -> Path:
    """Mean per-layer gradient norm per epoch (log scale): vanishing/exploding gradients."""
    plt = _figure()
    layers = [k for k in history[0] if k.startswith("grad_norm/")] if history else []
    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in layers:
        ax.plot(epochs, [max(r[key], 1e-30) for r in history], "o-", label=key[len("grad_norm/"):])
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean gradient L2 norm")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "per-layer gradient norms (input layer first)")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_comparison(results: list[dict], path: Path, title: str = "",
                    key: str = "activation") -> Path:
    """One figure: val accuracy curves, final accuracy bars, first-layer gradient norms
    per epoch, and every layer's gradient norm in the first epoch (input layer first);
    ``key`` is the row field that names each run."""
    plt = _figure()
    fig, axes = plt.subplots(1, 4, figsize=(21, 4.5))
    names = [r[key] for r in results]
    for r in results:
        hist = r["history"]
        axes[0].plot([h["epoch"] for h in hist], [h["val_accuracy"] for h in hist], "o-",
                     label=r[key], markersize=3)
        axes[2].plot([h["epoch"] for h in hist],
                     [max(h.get(r["first_layer_key"], 0.0), 1e-30) for h in hist], "o-",
                     label=r[key], markersize=3)
        layers = [k for k in hist[0] if k.startswith("grad_norm/")
                  and k not in ("grad_norm/global", "grad_norm/global_clipped")]
        axes[3].plot(range(1, len(layers) + 1), [max(hist[0][k], 1e-30) for k in layers],
                     "o-", label=r[key], markersize=3)
    axes[0].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    bars = axes[1].bar(names, [r["test_accuracy"] for r in results], color="tab:blue",
                       label="test accuracy")
    axes[1].bar(names, [r["dead_fraction"] for r in results], width=0.4, color="tab:red",
                alpha=0.8, label="dead-unit fraction")
    for bar, r in zip(bars, results):
        axes[1].text(bar.get_x() + bar.get_width() / 2, bar.get_height(),
                     f"{r['test_accuracy']:.2f}", ha="center", va="bottom", fontsize=8)
    axes[1].set(ylim=(0, 1.05), title="final test accuracy / dead hidden units")
    axes[1].tick_params(axis="x", rotation=45)
    axes[1].legend(fontsize=8)
    axes[2].set_yscale("log")
    axes[2].set(xlabel="epoch", ylabel="mean L2 norm", title="first-layer gradient norm")
    axes[3].set_yscale("log")
    axes[3].set(xlabel="layer with weights (1 = input side)", ylabel="mean L2 norm",
                title="gradient norm per layer, epoch 1")
    for ax in (axes[0], axes[2], axes[3]):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
