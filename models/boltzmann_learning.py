"""The Boltzmann machine's learning rule (Ackley, Hinton & Sejnowski 1985).

Reference: D. H. Ackley, G. E. Hinton, T. J. Sejnowski, "A learning algorithm
for Boltzmann machines", Cognitive Science 9:147-169, 1985.

``models.learn`` (rule ``boltzmann``, for both the Boltzmann and the Cauchy
machine): each epoch estimates the co-occurrences ``<s_i s_j>+`` with the
visible units clamped to the patterns (the hidden ones annealed) and
``<s_i s_j>-`` with every unit free (``chains`` chains), both annealed with the
machine's schedule floored at T = 1 and sampled for ``sample_steps`` sweeps at
T = 1, and moves every connected weight by ``learning_rate`` in the direction
of ``sign(<s_i s_j>+ - <s_i s_j>-)`` (biases likewise). As in the paper,
clamped inputs are noisy (an on unit is clamped off with probability 0.15, an
off unit on with 0.05), which keeps the weights finite. Both details matter: on
the 4-2-4 encoder (5 seeds, 1,000 epochs) signed steps with noisy clamping found
a solution 4 times, the plain gradient step ``learning_rate * (p+ - p-)``
without noisy clamping never: it stalled in codes shared by two patterns. The derivation holds
for Boltzmann noise; the Cauchy machine learns with the same rule and its own
noise.
"""
from __future__ import annotations

import numpy as np

from models import annealing
from models.errors import LearningRuleError
from models.rules import register_rule
from utils.checks import is_number, is_count


@register_rule("boltzmann", supervised=False, default_epochs=100,
               reference="Ackley, Hinton & Sejnowski (1985), Cognitive Science 9:147-169")
def boltzmann_learning(model, x, y, *, epochs, seed, on_epoch_end, learning_rate=0.2,
                       chains=100, anneal_steps=10, sample_steps=10, flip_on=0.15,
                       flip_off=0.05) -> None:
    """Clamped minus free co-occurrences, fixed-size signed steps (module docstring).

    ``flip_on``/``flip_off``: probability that a clamped 1 is presented as 0 / a
    clamped 0 as 1. Logs per epoch: ``correlation_gap`` (mean |<s_i s_j>+ -
    <s_i s_j>-| over the connected pairs) and ``energy`` (mean energy of the
    clamped phase's final states).

    Raises:
        LearningRuleError: ``x`` not binary 0/1 or wrongly shaped, a non-positive
            ``learning_rate``, ``chains``, ``anneal_steps`` or ``sample_steps``, or a
            flip probability outside [0, 1).
    """
    layer = model.machine
    patterns = binary_patterns(model.as_rows(x))
    _check_rule_params(learning_rate, flip_on, flip_off, chains=chains,
                       anneal_steps=anneal_steps, sample_steps=sample_steps)
    n, visible = layer.units, layer.visible_units
    connectivity = model.get_config()["connectivity"]
    mask = np.ones((n, n)) - np.eye(n) if connectivity is None else np.asarray(connectivity, float)
    phase = dict(schedule=model.schedule, t0=layer.temperature, anneal_steps=anneal_steps,
                 sample_steps=sample_steps)
    # Each pattern is clamped in several chains when hidden units must be sampled.
    repeats = -(-chains // len(patterns)) if n > visible else 1
    w, b = model.parameters()
    for epoch in range(epochs):
        rng = np.random.default_rng((seed, epoch))
        shown = np.repeat(patterns, repeats, axis=0)
        u = rng.random(shown.shape)
        shown = np.where(shown > 0, u >= flip_on, u < flip_off).astype(np.float64)
        clamped = np.hstack([shown, rng.integers(0, 2, (len(shown), n - visible))])
        pos_ss, pos_s, final = annealing.statistics(clamped, np.arange(visible, n), w, b, rng,
                                                    **phase)
        free = rng.integers(0, 2, (chains, n))
        neg_ss, neg_s, _ = annealing.statistics(free, np.arange(n), w, b, rng, **phase)
        w += learning_rate * np.sign(pos_ss - neg_ss) * mask
        b += learning_rate * np.sign(pos_s - neg_s)
        layer.kernel.assign(w.astype(np.float32))
        layer.bias.assign(b.astype(np.float32))
        gap = np.abs(pos_ss - neg_ss)[mask > 0]
        on_epoch_end(epoch, {"correlation_gap": float(gap.mean()) if gap.size else 0.0,
                             "energy": float(model.energy(final).mean())})


def _check_rule_params(learning_rate, flip_on, flip_off, **counts) -> None:
    for key, value in counts.items():
        if not is_count(value):
            raise LearningRuleError(f"{key} must be an integer >= 1. Received: {key}={value!r}")
    if not (is_number(learning_rate) and learning_rate > 0):
        raise LearningRuleError(f"learning_rate must be a positive number. "
                                f"Received: learning_rate={learning_rate!r}")
    for key, value in (("flip_on", flip_on), ("flip_off", flip_off)):
        if not (is_number(value) and 0 <= value < 1):
            raise LearningRuleError(f"{key} must be a probability in [0, 1). "
                                    f"Received: {key}={value!r}")


def binary_patterns(x) -> np.ndarray:
    """``x`` as float64 0/1 rows; anything else is a LearningRuleError."""
    x = np.asarray(x, dtype=np.float64)
    if not np.isin(x, (0.0, 1.0)).all():
        odd = np.unique(x[~np.isin(x, (0.0, 1.0))])[:3].tolist()
        raise LearningRuleError(
            f"Boltzmann and Cauchy machines have binary units: x must hold only 0 and 1; "
            f"found {odd}. Fix: binarise the data first, e.g. (x > 0.5).astype('float32').")
    return x
