"""Learning rules beside backpropagation, run by ``models.learn(model, x, y)``.

The course's classic networks (Hopfield, BAM, BSB, ART1, SOM, LVQ, RBM,
Boltzmann and Cauchy machines, RBF) are ordinary Keras models whose call is
recall or inference. Only how they learn differs. Each such model names its
rule in the class attribute ``learning_rule`` (a string), the one owner of that name:
the registry ``Family`` reads it from its ``rule_owner`` class, the model card from
the model (:func:`rule_name`). The rule itself is registered here with
``@register_rule`` (this module). ``learn`` finds the rule from the model, so a reloaded
``.keras`` file learns exactly like a freshly created one.

A rule is a small function that updates the model's weights in place, epoch
by epoch; it is not a second training framework::

    @register_rule("hebbian", supervised=False, reference="Hebb (1949)")
    def hebbian(model, x, y, *, epochs, seed, on_epoch_end, **params) -> None:
        ...
        for epoch in range(epochs):
            ...                                   # update model weights
            on_epoch_end(epoch, {"energy": ...})  # one dict of floats per epoch

Conventions every rule keeps, so that ``train.py`` can run it with the usual
run directory, progress bar and exact ``--resume``:
- all randomness of epoch ``k`` is drawn from ``np.random.default_rng((seed, k))``
  (or a generator derived the same way), never from global state;
- the weights after epoch ``k`` depend only on the weights before it, the data
  and ``(seed, k)``, and any other state the rule keeps between epochs lives in
  model variables (non-trainable), so a checkpoint of the model is a
  checkpoint of the rule;
- ``params`` are keyword arguments with defaults that work without tuning;
  an unknown one is an error that names the accepted ones.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from models.errors import LearningRuleError
from utils.names import did_you_mean
from utils.checks import is_count


@dataclass(frozen=True)
class LearningRule:
    """A registered learning rule.

    Attributes:
        name: registry key, e.g. ``"hebbian"``; models name it in ``learning_rule``.
        fit: ``fit(model, x, y, *, epochs, seed, on_epoch_end, **params)``; updates
            the model in place and reports each epoch through ``on_epoch_end``.
        supervised: the rule needs labels ``y``.
        default_epochs: epochs run when ``learn`` is called with ``epochs=None``.
        reference: paper or textbook the rule comes from.
        params: accepted keyword parameters with their defaults (read from ``fit``'s
            signature).
    """
    name: str
    fit: Callable[..., None]
    supervised: bool
    default_epochs: int
    reference: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def unknown_parameter(self, key: str, value, accepted=None) -> str:
        """The message for parameter ``key=value`` that this rule does not take.

        ``accepted`` narrows the names offered as accepted (default: all of ``params``).
        """
        accepted = list(self.params if accepted is None else accepted)
        return (f"Unknown parameter {key!r} for learning rule {self.name!r}."
                f"{did_you_mean(key, self.params)} Accepted: {', '.join(accepted) or 'none'}. "
                f"Received: {key}={value!r}")


_RULES: dict[str, LearningRule] = {}
_FIT_ARGS = {"model", "x", "y", "epochs", "seed", "on_epoch_end"}


def register_rule(name: str, *, supervised: bool, reference: str, default_epochs: int = 1):
    """Decorator: register ``fit`` as learning rule ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """
    def decorator(fit: Callable[..., None]) -> Callable[..., None]:
        if name in _RULES:
            raise ValueError(f"Learning rule {name!r} is already registered "
                             f"(by {_RULES[name].fit.__module__}). Choose another name.")
        params = {p.name: p.default for p in inspect.signature(fit).parameters.values()
                  if p.name not in _FIT_ARGS and p.kind == p.KEYWORD_ONLY}
        _RULES[name] = LearningRule(name, fit, supervised, default_epochs, reference, params)
        return fit
    return decorator


def list_rules() -> list[str]:
    """Sorted names of the registered learning rules."""
    return sorted(_RULES)


def get_rule(name: str) -> LearningRule:
    """The registered rule ``name``.

    Raises:
        LearningRuleError: unknown name (closest matches named).
    """
    try:
        return _RULES[name]
    except KeyError:
        raise LearningRuleError(f"Unknown learning rule {name!r}.{did_you_mean(name, _RULES)} "
                                f"Registered: {', '.join(sorted(_RULES)) or 'none'}.") from None


def rule_name(model) -> str | None:
    """The name of the rule a model's class (or one of its layers' classes) declares in
    ``learning_rule``, the one owner of it; None for backprop models."""
    name = getattr(model, "learning_rule", None)
    if name is None:
        for layer in getattr(model, "layers", []):
            name = getattr(layer, "learning_rule", None)
            if name is not None:
                break
    return name


def rule_of(model) -> LearningRule | None:
    """The learning rule a model (or one of its layers) names; None for backprop models."""
    name = rule_name(model)
    return None if name is None else get_rule(name)


def learn(model, x, y=None, *, epochs: int | None = None, seed: int = 0,
          on_epoch_end: Callable[[int, dict], None] | None = None, **rule_params) -> dict:
    """Run the model's own learning rule on ``x`` (and ``y``) and return its history.

    Args:
        model: a Keras model whose class (or a layer) names a ``learning_rule``.
        x: training inputs, an array ``[n_samples, ...]``.
        y: labels ``[n_samples]`` for supervised rules (LVQ, RBF); None otherwise.
        epochs: passes over the data; None uses the rule's default.
        seed: the same seed gives the same weights.
        on_epoch_end: optional ``fn(epoch, logs)`` called after every epoch (0-based),
            e.g. for a progress bar or a checkpoint.
        **rule_params: the rule's own parameters (``learning_rate``, ``sigma``, ...);
            ``models.rules.get_rule(name).params`` lists them with their defaults.

    Returns:
        The per-epoch history as ``keras.callbacks.History.history`` has it: a dict
        mapping each metric name to a list with one float per epoch.

    Raises:
        LearningRuleError: the model learns by backpropagation (use ``train.py``),
            an unknown rule parameter, ``y`` missing for a supervised rule, or
            ``epochs`` < 1.

    Example:
        >>> model = models.create_model("hopfield", units=64)
        >>> history = models.learn(model, patterns)
    """
    rule = rule_of(model)
    if rule is None:
        raise LearningRuleError(
            f"Model {getattr(model, 'name', model)!r} learns by backpropagation, not by a rule "
            "of its own. Fix: train it with train.py (or model.fit).")
    unknown = [k for k in rule_params if k not in rule.params]
    if unknown:
        key = unknown[0]
        raise LearningRuleError(rule.unknown_parameter(key, rule_params[key]))
    if rule.supervised and y is None:
        raise LearningRuleError(f"Learning rule {rule.name!r} is supervised: pass the labels "
                                "as y (models.learn(model, x, y)).")
    epochs = rule.default_epochs if epochs is None else epochs
    if not is_count(epochs):
        raise LearningRuleError(f"epochs must be an integer >= 1. Received: epochs={epochs!r}")
    history: dict[str, list] = {}

    def record(epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)

    rule.fit(model, x, y, epochs=int(epochs), seed=int(seed), on_epoch_end=record, **rule_params)
    return history


__all__ = ["LearningRule", "LearningRuleError", "get_rule", "learn", "list_rules",
           "register_rule", "rule_of"]
