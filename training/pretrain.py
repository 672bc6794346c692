"""``--pretrain rbm``: greedy layer-wise pre-training of a feed-forward stack.

References: G. E. Hinton, S. Osindero, Y.-W. Teh, "A fast learning algorithm for
deep belief nets", Neural Computation 18(7):1527-1554, 2006; G. E. Hinton,
R. R. Salakhutdinov, "Reducing the dimensionality of data with neural
networks", Science 313:504-507, 2006. The course's first remedy for vanishing
gradients: a multi-level hierarchy pre-trained one level at a time without
supervision, then fine-tuned with backpropagation.

Level l is an RBM (``models.rbm``, learned by CD-1 with ``models.learn``) whose
visible units are level l-1's hidden probabilities, the first level's the
training images (in [0, 1]) without labels. Its weights and hidden biases
become hidden Dense layer l; the output layer keeps its initialisation. Then
``train.py`` fine-tunes the whole network as usual. The RBMs' sigmoid matches
the sigmoid stacks this is meant for (``deep_mlp_sigmoid_8x64``); other
activations take the same weights.
"""
from __future__ import annotations

import numpy as np

from .errors import TrainingError

METHODS = ("rbm",)
# Per level: CD-1 over the training images (3,500 digits: ~1 s for 1,024 x 64).
RBM_SETTINGS = {"epochs": 5, "learning_rate": 0.05, "batch_size": 20, "k": 1}
# Layers a plain feed-forward stack may hold besides its Dense layers.
_PLAIN = ("InputLayer", "Flatten", "Dropout", "AlphaDropout", "Activation")


def check_method(method) -> None:
    """Raise TrainingError unless ``method`` is None or one of :data:`METHODS`."""
    if method is not None and method not in METHODS:
        raise TrainingError(f"Unknown pre-training {method!r}; choose one of "
                            f"{', '.join(METHODS)} (e.g. --pretrain rbm).")


def check_model(config) -> None:
    """Fail fast, before the run directory is touched, when ``config.pretrain`` is set
    and its model is not a plain feed-forward stack (builds the model once)."""
    if config.pretrain is None:
        return
    import models

    overrides = dict(config.model_overrides)
    if config.activation is not None:
        overrides["activation"] = config.activation
    hidden_stack(models.create_model(config.model, **overrides))


def hidden_stack(model) -> list:
    """The hidden Dense layers of a plain feed-forward ``model``, input side first.

    Raises:
        TrainingError: the model is not a plain stack of Dense layers (a convolution,
            batch norm, a skip connection), or has no hidden Dense layer.
    """
    import activations
    import keras

    dense, odd = [], []
    act_types = tuple(type(activations.get(n)) for n in activations.list_activations())
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            dense.append(layer)
        elif type(layer).__name__ not in _PLAIN and not isinstance(layer, act_types):
            odd.append(f"{layer.name} ({type(layer).__name__})")
    if odd or len(dense) < 2:
        why = f"it holds {', '.join(odd[:3])}" if odd else "it has no hidden Dense layer"
        raise TrainingError(f"--pretrain rbm pre-trains the hidden Dense layers of a plain "
                            f"feed-forward stack (deep_mlp*, exam_mlp); {model.name!r} does not "
                            f"qualify: {why}. Fix: drop --pretrain or pick such a model.")
    return dense[:-1]


def pretrain(model, x, *, seed: int, log) -> list[dict]:
    """Pre-train ``model``'s hidden Dense layers in place, one RBM per level.

    Args:
        model: a plain feed-forward Keras model (see :func:`hidden_stack`).
        x: training images in [0, 1], ``[n, ...]``; labels are not used.
        seed: level l's RBM starts from N(0, 0.01^2) weights drawn from
            ``numpy.random.default_rng(seed + l)`` and learns with seed ``seed + l``.
        log: print-like callable, one line per level.

    Returns:
        One dict per level: layer, shape and the RBM's first and last
        reconstruction error.

    Raises:
        TrainingError: the model is not a plain stack (:func:`hidden_stack`).
        models.LearningRuleError: images outside [0, 1].
    """
    import models

    layers = hidden_stack(model)
    v = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    report = []
    for level, layer in enumerate(layers, start=1):
        n_in, n_out = layer.kernel.shape
        rbm = models.create_model("rbm", input_shape=(int(n_in),), hidden_units=int(n_out))
        start = np.random.default_rng(seed + level).normal(0.0, 0.01, (int(n_in), int(n_out)))
        rbm.rbm.kernel.assign(start.astype(np.float32))
        history = models.learn(rbm, v, seed=seed + level, **RBM_SETTINGS)
        kernel, hidden_bias = rbm.rbm.kernel.numpy(), rbm.rbm.hidden_bias.numpy()
        weights = [kernel] + ([hidden_bias] if layer.use_bias else [])
        layer.set_weights(weights)
        errors = history["reconstruction_error"]
        report.append({"layer": layer.name, "shape": [int(n_in), int(n_out)],
                       "reconstruction_error": [errors[0], errors[-1]]})
        log(f"pretrain {level}/{len(layers)}: {layer.name} as an RBM {n_in} x {n_out}, "
            f"{RBM_SETTINGS['epochs']} epochs of CD-1, reconstruction error "
            f"{errors[0]:.4f} -> {errors[-1]:.4f}")
        v = rbm.hidden_probabilities(v)  # the next level's visible units
    return report
