"""``--compare-remedies``: the course's cures for vanishing gradients, side by side.

The course lists a multi-level hierarchy (layer-wise pre-training), LSTM,
faster hardware, residual networks and ReLU; proper initialisation (Glorot &
Bengio 2010) is the sixth. Each run below starts from the deep sigmoid MLP
(``deep_mlp_sigmoid_8x64``: 8 sigmoid layers of 64 units) and applies one cure;
all are trained the same way (the command's data, epochs, batch, optimizer,
learning rate and seed) with per-layer gradient norms recorded, and compared
like ``--compare-activations`` does (:func:`training.compare.run_comparison`):
comparison.md/.json/.png in ``--out``, one run directory per remedy.

- baseline: the sigmoid MLP with a naive initialisation, N(0, 0.05^2) weights
  (Keras' ``random_normal``): the setting in which gradients vanish;
- glorot_init: the same network with Glorot-uniform weights (its default);
- rbm_pretraining: its hidden layers first pre-trained as RBMs (``--pretrain rbm``,
  :mod:`training.pretrain`); the output layer keeps the default Glorot
  initialisation, so against glorot_init this is pre-training vs none, same
  seed and budget;
- relu: ReLU instead of sigmoid, with its matched He initialisation (``deep_mlp_8x64``);
- residual: the sigmoid net with identity skips (``residual_mlp_sigmoid_8x64``);
- lstm: an LSTM that reads the image row by row (``lstm_rows``).
"""
from __future__ import annotations

import dataclasses

from .compare import check_comparable, run_comparison
from .config import TrainConfig

NAIVE_INIT = {"initializer": "random_normal"}
# label -> (model, model overrides, pretrain, what the run is)
REMEDIES = {
    "baseline": ("deep_mlp_sigmoid_8x64", NAIVE_INIT, None, "8 x 64 sigmoid, N(0, 0.05^2) init"),
    "glorot_init": ("deep_mlp_sigmoid_8x64", {}, None, "8 x 64 sigmoid, Glorot-uniform init"),
    "rbm_pretraining": ("deep_mlp_sigmoid_8x64", {}, "rbm",
                        "8 x 64 sigmoid, hidden layers pre-trained as RBMs"),
    "relu": ("deep_mlp_8x64", {}, None, "8 x 64 ReLU, He init"),
    "residual": ("residual_mlp_sigmoid_8x64", {}, None, "sigmoid, 8 blocks with identity skips"),
    "lstm": ("lstm_rows", {}, None, "LSTM (64 units) over the 32 rows"),
}


def compare_remedies(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                     log=None) -> dict:
    """Train every entry of :data:`REMEDIES` the same way and compare them.

    Args:
        config: the training settings shared by every run (its ``model``,
            ``activation``, ``model_overrides`` and ``pretrain`` are replaced per run);
            ``num_classes`` defaults to the dataset's ("auto").
        resume: continue runs that already exist in ``<out>/<remedy>/``.
        overwrite: replace runs that already exist.
        log: print-like callable.

    Returns:
        ``{"rows": [...], "paths": {...}}`` as :func:`training.compare_activations`.

    Raises:
        TrainingError: ``strategy="multiworker"``; errors of :func:`training.train`.
    """
    check_comparable(config, "--compare-remedies", "each remedy (--model ...)")
    config = dataclasses.replace(config, num_classes=config.num_classes or "auto").resolved(None)
    runs = [(label, dataclasses.replace(config, model=model, model_overrides=dict(overrides),
                                        pretrain=pretrain, activation=None))
            for label, (model, overrides, pretrain, _) in REMEDIES.items()]
    return run_comparison(
        config, runs, key="remedy",
        title=f"Remedies for vanishing gradients on {config.dataset}",
        plot_title=f"Remedies for vanishing gradients (deep sigmoid MLP) on {config.dataset}",
        extra={"model": {label: r[0] for label, r in REMEDIES.items()},
               "setup": {label: r[3] for label, r in REMEDIES.items()}},
        resume=resume, overwrite=overwrite, log=log)
