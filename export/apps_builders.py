"""The models of the keras.applications matrix: every builder of
``keras.applications`` (read from the module itself, so a new Keras version
is covered the day it is installed), each built without weights at its
smallest input at which the untrained network is numerically stable, with
random preprocessed inputs of a fixed seed.
"""
from __future__ import annotations

import fnmatch
import inspect
import re

import numpy as np

# Tried in this order until the builder accepts one (a floor named in its error
# is tried next); 32 is imagenet_utils' own floor for every builder.
CANDIDATE_SIZES = (32, 64, 96, 128, 224, 331)
SAMPLES = 32  # random inputs: calibration-free formats only need a validation set
# Largest float32 rounding error (vs float64) of a stable untrained model: a
# quarter of the float32 validation tolerance (export.formats.TOLERANCES), so
# that validation judges the conversion, not the random network's sensitivity.
STABLE = 2.5e-6
SEED = 0
_BUILDER_ARGS = {"include_top", "weights", "input_shape"}


def application_builders(pattern: str = "*") -> dict:
    """``{name: builder}`` of every model builder in ``keras.applications``
    matching the fnmatch ``pattern``, sorted by name."""
    import keras
    found = {n: f for n, f in vars(keras.applications).items()
             if not n.startswith("_") and inspect.isfunction(f)
             and _BUILDER_ARGS <= set(inspect.signature(f).parameters)}
    return {n: found[n] for n in sorted(found) if fnmatch.fnmatchcase(n, pattern)}


def preprocess_function(name: str):
    """``(module, preprocess_input)`` of the ``keras.applications`` module that
    defines builder ``name`` (what the model expects its pixels to be)."""
    import importlib
    module_name = application_builders()[name].__module__.rsplit(".", 1)[-1]
    module = importlib.import_module(f"keras.applications.{module_name}")
    return module_name, module.preprocess_input


def fresh_model(builder, size: int):
    """``builder``'s model without weights at ``size`` x ``size`` x 3, seeded, in a
    cleared Keras session (so its layer names are the builder's own, unnumbered)."""
    import keras
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    return builder(weights=None, input_shape=(size, size, 3))


def minimum_input(name: str):
    """``(model, size, note)``: the builder's model (no weights) at its smallest
    input: the first of :data:`CANDIDATE_SIZES` it accepts, or the floor its
    own error names ("Input size must be at least 75x75"); ``note`` quotes the
    first refusal (one line), "" when 32 was accepted."""
    builder = application_builders()[name]
    sizes, note = sorted(CANDIDATE_SIZES), ""
    while sizes:
        size = sizes.pop(0)
        try:
            return fresh_model(builder, size), size, note
        except ValueError as exc:  # the builder's own refusal
            line = " ".join(str(exc).split())
            note = note or f"{size} refused: {line[:120]}"
            floor = re.search(r"at least (\d+)x\1", line)
            if floor and int(floor.group(1)) > size:
                floor = int(floor.group(1))
                sizes = [floor] + [s for s in sizes if s > floor]
    raise ValueError(f"{name} accepts none of the sizes {CANDIDATE_SIZES}: {note}")


def build_application(name: str, size: int | None = None):
    """``(model, size, note, x)``: the model (no weights) with its card attached
    and :data:`SAMPLES` random preprocessed inputs (fixed seed) of its size.

    ``size`` None: the smallest input (:func:`minimum_input`) at which the
    untrained network is numerically stable: its float32 rounding error
    (:func:`float32_error`) is within :data:`STABLE`; ``note`` says why each
    smaller size was passed over.
    """
    builder = application_builders()[name]
    if size is not None:
        model = fresh_model(builder, size)
        return model, size, "", _inputs(name, model, size)
    model, size, note = minimum_input(name)
    while True:
        x = _inputs(name, model, size)
        larger = [s for s in CANDIDATE_SIZES if s > size]
        error = float32_error(model, builder, size, x)
        if error <= STABLE or not larger:
            break
        note = "; ".join(n for n in (note, f"{size} unstable untrained: Keras float32 vs "
                                     f"float64 differ by {error:.0e}") if n)
        size = larger[0]
        model = fresh_model(builder, size)
    return model, size, note, x


def _inputs(name, model, size):
    """Random preprocessed inputs; sets the batch statistics and the card."""
    from models.card import attach_card, build_card
    module_name, preprocess = preprocess_function(name)
    pixels = np.random.default_rng(SEED).uniform(0, 255, (SAMPLES, size, size, 3))
    x = np.asarray(preprocess(pixels.astype("float32")), dtype=np.float32)
    batch_statistics(model, x)
    attach_card(model, build_card(
        model, name=name, family="keras.applications", num_classes=model.outputs[0].shape[-1],
        value_range=(float(x.min()), float(x.max())),
        preprocessing=f"keras.applications.{module_name}.preprocess_input of 0-255 RGB"))
    return x


def float32_error(model, builder, size, x) -> float:
    """Max abs difference between ``model`` (float32) and its float64 twin (same
    builder and weights) on ``x[:7]``: the rounding error of float32 itself in
    this network, which every float32 runtime has too and no artifact can beat."""
    import keras
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        twin = builder(weights=None, input_shape=(size, size, 3))
    finally:
        keras.config.set_dtype_policy(policy)
    twin.set_weights([w.astype(np.float64) for w in model.get_weights()])
    exact = np.asarray(keras.tree.flatten(twin(x[:7].astype(np.float64), training=False))[0])
    got = np.asarray(keras.tree.flatten(model(x[:7], training=False))[0])
    return float(np.abs(got.astype(np.float64) - exact).max())


def batch_statistics(model, x) -> None:
    """Set every BatchNormalization's moving mean and variance to its batch
    statistics on ``x`` (one training-mode pass with momentum 0).

    Without weights the moving statistics are (0, 1), which leaves the
    features of most of these networks at zero: their softmax is 1/1000 for
    any input, and validation would compare constants. With batch
    statistics the outputs depend on the input (MobileNetV2 at 32x32: a
    spread of 4e-3 over inputs instead of 0).
    """
    import keras
    norms = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    momenta = [l.momentum for l in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
