"""--compare-activations: the same model and data, one run per activation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from utils.io import atomic_write_json, atomic_write_text

from .config import TrainConfig
from .errors import TrainingError

CONVERGED = 0.95  # "converged" = first epoch reaching 95% of the run's best val accuracy


def epochs_to_converge(history: list[dict], num_classes: int,
                       fraction: float = CONVERGED) -> int | None:
    """First epoch whose val accuracy reaches ``fraction`` of the best.

    None ("never") when there is no history or the best is under twice chance
    level (1/num_classes): a run stuck at chance has not converged to anything.
    """
    if not history:
        return None
    best = max(r["val_accuracy"] for r in history)
    if best < 2.0 / num_classes:
        return None
    return next(r["epoch"] for r in history if r["val_accuracy"] >= fraction * best)


def _markdown(config: TrainConfig, rows: list[dict], key: str, title: str,
              extra: tuple = ()) -> str:
    """The comparison table; ``key`` names the first column (``activation``, ``remedy``),
    ``extra`` the row fields shown after it."""
    lines = [f"# {title}", "",
             f"{config.epochs} epochs, batch {config.batch_size}, {config.optimizer} lr {config.lr}, "
             f"seed {config.seed}. Converged = first epoch reaching {CONVERGED:.0%} of the run's "
             "best validation accuracy ('never': the best stayed under twice chance level). Dead = hidden units that output exactly 0 for every "
             "validation image. Gradient norms are the mean L2 norm of the first layer's "
             "gradient over the first and the last epoch.", "",
             f"| {key} | " + "".join(f"{h} | " for h in extra) + "test acc | val acc | "
             "epochs to converge | dead units | first-layer grad (epoch 1) | "
             "first-layer grad (last) |",
             "|---|" + "---|" * len(extra) + "---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r[key]} | " + "".join(f"{r[k]} | " for k in extra)
                     + f"{r['test_accuracy']:.4f} | {r['val_accuracy']:.4f} | "
                     f"{r['epochs_to_converge'] or 'never'} | {r['dead_fraction']:.1%} | "
                     f"{r['first_layer_grad_norm_first_epoch']:.3e} | "
                     f"{r['first_layer_grad_norm']:.3e} |")
    return "\n".join(lines) + "\n"


def check_comparable(config: TrainConfig, flag: str, each: str) -> None:
    """Refuse comparisons that cannot run: a rule model, a multi-worker cluster
    (``each``: how to launch one run of the comparison instead).

    Raises:
        TrainingError: ``config.model`` learns by its own rule, or ``config.strategy``
            is ``"multiworker"``.
    """
    from .factories import learning_rule

    rule = learning_rule(config.model)
    if rule is not None:
        raise TrainingError(f"{flag} compares runs under backpropagation; {config.model!r} "
                            f"learns by its own rule {rule.name!r}. Fix: train it without {flag}.")
    if config.strategy == "multiworker":
        # One process may join a collective cluster only once, and every worker
        # would write the comparison files: one cluster launch per run instead.
        raise TrainingError(f"{flag} cannot run with --strategy multiworker; received "
                            f"strategy='multiworker'. Fix: train {each} with its own cluster "
                            "launch, or drop --strategy.")


def run_comparison(config: TrainConfig, runs: list[tuple[str, TrainConfig]], *, key: str,
                   title: str, plot_title: str, extra: dict | None = None,
                   resume: bool = False, overwrite: bool = False, log=None) -> dict:
    """Train each ``(label, sub_config)`` of ``runs`` with gradient tracking on the
    same data and write comparison.json/.md/.png into ``config.out``.

    Args:
        extra: more table columns, ``{header: {label: text}}``.

    Returns:
        ``{"rows": [...], "paths": {...}}``; each row has ``key: label`` and the
        ``extra`` columns.
    """
    import data

    from . import plots
    from .loop import train

    extra = extra or {}
    log = log or print
    out = Path(config.out)
    bundle = data.load_dataset(config.dataset, batch_size=config.batch_size, seed=config.seed,
                               validation_fraction=config.validation_fraction, limit=config.limit,
                               image_size=config.image_size, channels=config.channels)
    rows, full = [], []
    for label, sub in runs:
        sub = dataclasses.replace(sub, out=str(out / label), track_gradients=True, export=False)
        log(f"== {label} ==")
        res = train(sub, resume=resume and (out / label / "config.json").is_file(),
                    overwrite=overwrite, log=log, bundle=bundle)
        if res.interrupted:
            raise TrainingError(f"Comparison interrupted ({res.interrupted}) during {label!r}; "
                                "rerun with --resume to continue.")
        hist = res.history
        grad_keys = [k for k in hist[0] if k.startswith("grad_norm/")]
        first = grad_keys[0]
        row = {key: label, "test_accuracy": res.test_accuracy,
               "val_accuracy": hist[-1]["val_accuracy"],
               "epochs_to_converge": epochs_to_converge(hist, bundle.num_classes),
               "dead_fraction": res.dead_fraction,
               "first_layer": first[len("grad_norm/"):],
               "first_layer_grad_norm_first_epoch": hist[0][first],
               "first_layer_grad_norm": hist[-1][first], "run_dir": str(res.run_dir)}
        row.update({header: values[label] for header, values in extra.items()})
        rows.append(row)
        full.append({**row, "history": hist, "first_layer_key": first})
    paths = {
        "comparison_json": atomic_write_json(out / "comparison.json", rows),
        "comparison_md": atomic_write_text(out / "comparison.md",
                                           _markdown(config, rows, key, title, tuple(extra))),
        "comparison_png": plots.plot_comparison(full, out / "comparison.png", plot_title,
                                                key=key),
    }
    return {"rows": rows, "paths": paths}


def compare_activations(config: TrainConfig, activations: list[str], *, resume: bool = False,
                        overwrite: bool = False, log=None) -> dict:
    """Train ``config`` once per activation into ``<out>/<activation>/`` and compare.

    Args:
        config: the base run; its ``activation`` is replaced per run and gradient
            tracking is switched on (the comparison needs it).
        activations: activation names (``activations.list_activations()``).
        resume: continue sub-runs that already exist.
        overwrite: replace sub-runs that already exist.
        log: print-like callable.

    Returns:
        ``{"rows": [...], "paths": {...}}``; also written as comparison.json/.md/.png.

    Raises:
        TrainingError: empty or duplicated list; ``strategy="multiworker"``; errors of
            :func:`training.train`.
    """
    import activations as act_registry

    check_comparable(config, "--compare-activations", "each activation (--activation NAME)")
    config = config.resolved(None)
    names = [a.strip() for a in activations if a.strip()]
    if len(names) < 1 or len(set(names)) != len(names):
        raise TrainingError(f"--compare-activations needs distinct names; received {activations!r}.")
    for name in names:
        act_registry.describe(name)  # unknown names fail before any training
    runs = [(name, dataclasses.replace(config, activation=name)) for name in names]
    return run_comparison(
        config, runs, key="activation",
        title=f"Activation comparison: {config.model} on {config.dataset}",
        plot_title=f"{config.model} on {config.dataset}: activations", resume=resume,
        overwrite=overwrite, log=log)
