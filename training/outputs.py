"""What a run leaves in its directory besides checkpoints.

Per epoch: ``history.json``/``.csv`` and TensorBoard scalars. At the end:
``model.keras``, ``audit.md``/``.json``, ``summary.json``, the plots and, with
``--export``, the exported artifacts. Every file is written atomically
(``utils.io``), so a reader sees the old or the new version, never half.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from utils.io import atomic_path, atomic_write_json, atomic_write_text

from . import plots


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        run_dir: the run directory.
        paths: name -> path of every file written (model, config, history, plots, ...).
        history: one dict per completed epoch.
        epochs_completed: epochs in the last checkpoint.
        interrupted: a signal name ("SIGINT"/"SIGTERM") if training was stopped, else None.
        stopped_early: early stopping ended the run.
        resumed_from: epochs already done when this call started (0 for a fresh run).
        test_metrics: metric -> value on the test split (``loss``/``accuracy`` for
            backprop; a rule model's ``evaluate_rule``); empty if interrupted.
        test_loss / test_accuracy: the same two figures (None when absent).
        dead_fraction: share of hidden units that output 0 for every validation image.
        model: the trained keras.Model.
        chief: this process wrote the run directory (False on the other workers
            of a multi-worker cluster: they write nothing, see ``task_from_tf_config``).
        best_epoch: with early stopping, the epoch of the best val_loss, whose
            weights the model (and model.keras, and the test metrics) hold.
        learning_rule: the model's own learning rule, None for backpropagation.
        config: the run's settings with the learning method's defaults filled in.
    """
    run_dir: Path
    paths: dict
    history: list
    epochs_completed: int
    interrupted: str | None = None
    stopped_early: bool = False
    resumed_from: int = 0
    test_metrics: dict = dataclasses.field(default_factory=dict)
    test_loss: float | None = None
    test_accuracy: float | None = None
    dead_fraction: float | None = None
    model: object = None
    chief: bool = True
    best_epoch: int | None = None
    learning_rule: str | None = None
    config: object = None


def write_history(run_dir: Path, history: list[dict]) -> dict:
    """``history.json`` and ``history.csv`` (one row per epoch, the union of the keys)."""
    paths = {"history_json": atomic_write_json(run_dir / "history.json", history)}
    keys = []
    for record in history:
        keys += [k for k in record if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    paths["history_csv"] = atomic_write_text(run_dir / "history.csv", buffer.getvalue())
    return paths


def log_tensorboard(writer, record: dict) -> None:
    """Epoch scalars as TensorBoard "scalars" events.

    Written with ``tf.summary.write`` and the scalars plugin's metadata, which is
    what ``tensorboard.summary.scalar`` writes: TensorFlow's wheel does not
    install the ``tensorboard`` package, and writing needs none of it.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR)
    with writer.as_default():
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                tf.summary.write(key, tf.constant(value, tf.float32), step=record["epoch"],
                                 metadata=metadata)
    writer.flush()


def record_training(model, config, bundle, test_metrics: dict) -> dict:
    """The model card (``models.card``) gains what the run knows: the dataset, its class
    names, its preprocessing and the test metrics; returns the card now attached."""
    import models
    from models.card import shape_words

    card = models.model_card(model)
    names = [str(n) for n in bundle.class_names]
    if card["classes"] is not None and card["classes"]["count"] == len(names):
        card["classes"] = {"count": len(names), "names": names}
    shape = shape_words(card["input"]["shape"]) or f"shape {card['input']['shape']}"
    card["input"] = dict(card["input"], range=[0.0, 1.0],
                         preprocessing=f"{shape}: {bundle.description}" if bundle.description
                         else shape)
    card["dataset"] = {"name": str(config.dataset), "class_names": names,
                       "sizes": dict(bundle.sizes),
                       "test_metrics": {k: float(v) for k, v in test_metrics.items()
                                        if isinstance(v, (int, float))}}
    return models.attach_card(model, card)


def write_final(config, run_dir: Path, model, result: TrainResult, bundle) -> None:
    """The end of a complete run: model card, model, audit, summary and plots
    (``export_run`` follows).

    ``result`` already holds the test metrics; its ``paths`` gain every file written.
    """
    import models

    paths, history = result.paths, result.history
    record_training(model, config, bundle, result.test_metrics)
    with atomic_path(run_dir / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    paths["model"] = run_dir / "model.keras"
    audit = models.audit(model)
    paths["audit_md"] = atomic_write_text(run_dir / "audit.md", audit.to_markdown())
    paths["audit_json"] = atomic_write_text(run_dir / "audit.json", audit.to_json())
    summary = {"model": config.model, "activation": config.activation, "dataset": config.dataset,
               "learning_rule": result.learning_rule,
               "epochs_completed": result.epochs_completed, "stopped_early": result.stopped_early,
               **{f"test_{k}": v for k, v in result.test_metrics.items()},
               "dead_fraction": result.dead_fraction, "params": int(model.count_params()),
               "final": history[-1] if history else None}
    if result.best_epoch is not None:
        # The weights saved (and scored above) are this epoch's, not the last one's.
        summary["best_epoch"] = result.best_epoch
        summary["best"] = history[result.best_epoch - 1]
    paths["summary"] = atomic_write_json(run_dir / "summary.json", summary)
    if history:
        how = result.learning_rule or config.activation or "default"
        title = f"{config.model} ({how}) on {config.dataset}"
        paths["plot_curves"] = plots.plot_curves(history, run_dir / "curves.png", title)
        if config.track_gradients:
            paths["plot_gradients"] = plots.plot_gradient_norms(
                history, run_dir / "gradient_norms.png", title)
    paths["tensorboard"] = run_dir / "tensorboard"
    paths["checkpoints"] = run_dir / "checkpoints"


def export_run(run_dir: Path, bundle, paths: dict, log) -> None:
    """``--export``: float32 artifacts plus an int8 TFLite and an int8 ONNX
    into ``run_dir/export``.

    The int8 files are calibrated on training images and their top-1
    agreement is measured on held-out test images. As with ``python -m export``,
    an artifact that fails its validation (a weakly trained model's int8 file
    below the agreement bound) is left out and logged with its figure and fix,
    and the validated ones are published (``export.errors.PartialExportError``).
    A model whose card says its output is not class scores (Hopfield's
    recalled state, a SOM's distances, an RBM's p(h|v)) gets float32 artifacts
    only by default: its int8 file would be validated by what its output
    decides (the best-matching unit, every unit's state), but converting and
    validating it costs minutes on these networks (a Hopfield net's took 5 of
    a 6-minute run), so ``python -m export --quantize int8`` makes one on request.
    """
    import export
    from models.card import is_classifier
    from models.loading import read_card

    # Calibration reads only its 1,000 training images; the validation takes the test split.
    kwargs = dict(representative_data=bundle.head("train", 1000)[0],
                  validation_data=bundle.as_numpy("test")[0])
    card = read_card(run_dir / "model.keras")  # write_final stored it
    if card is not None and not is_classifier(card):
        log("--export: float32 artifacts only: the model's output is not class scores "
            "(python -m export --quantize int8 makes an int8 file on request)")
    else:
        kwargs["quantize"] = (None, "int8")
    try:
        manifest = export.export_model(run_dir / "model.keras", run_dir / "export", **kwargs)
    except export.PartialExportError as exc:
        # As python -m export does: the validated artifacts are published, the refused
        # ones (near-tied classes that int8 rounding flips, most often) are listed.
        manifest = exc.manifest
    _log_manifest(manifest, paths, run_dir, log)


def _log_manifest(manifest: dict, paths: dict, run_dir: Path, log) -> None:
    from export.refusals import summary
    paths["export"] = run_dir / "export"
    for art in manifest.get("artifacts", []):
        log(f"  export: {art['format']:<11} {art.get('quantization') or 'float32':<8} "
            f"{art['path']:<18} {art.get('size_bytes', 0):>9,} bytes  "
            f"{_validation_summary(art.get('validation'))}")
    for entry in manifest.get("refused", []):
        log(f"  export: left out {summary(entry)}")


def _validation_summary(val) -> str:
    if not isinstance(val, dict):
        return "not validated"
    verdict = "validated" if val.get("passed") else "FAILED validation"
    if "top1_agreement" in val:
        from export.validate import agreement_name
        return (f"{verdict}: {agreement_name(val)} {val['top1_agreement']:.2%} with Keras "
                f"on {val.get('samples')} held-out images (bound {val.get('top1_bound'):.0%})")
    if "max_abs_diff" in val:
        return f"{verdict}: max |diff| vs Keras {val['max_abs_diff']:.1e} (atol {val.get('atol')})"
    return verdict


def describe_outputs(result: TrainResult) -> str:
    """Human-readable list of where everything went."""
    lines = [f"run directory: {result.run_dir}"]
    for key, path in sorted(result.paths.items()):
        if key != "run_dir":
            lines.append(f"  {key:15s} {path}")
    return "\n".join(lines)
