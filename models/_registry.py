"""The model registry: one dict, filled by ``@register_model``.

A registered builder is a tiny function (timm style) that turns keyword
overrides into a :class:`ModelSpec`: a family plus a fully validated
configuration. Building the Keras model is a separate step, so ``describe``
can report defaults and the expected parameter count (from each family's
closed-form formula) without building anything.
"""
from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

import keras

from models import _layers
from models.errors import ModelConfigError, UnknownModelError
from utils.names import did_you_mean


@dataclass(frozen=True)
class Family:
    """A family of models sharing one builder and one defaults table.

    Attributes:
        name: family name (e.g. ``"deep_mlp"``).
        defaults: every accepted keyword with its default; overrides outside
            this table are rejected.
        build: ``build(config) -> keras.Model`` for a validated config.
        count_params: closed-form parameter count ``count_params(config) -> int``
            computed from the config alone (never by building the model).
        reference: paper or course section the family comes from.
        validate: optional ``validate(config)`` raising ``ModelConfigError``;
            it may normalise values in place (e.g. a list to a tuple).
        derive: optional ``derive(config, given)`` run before ``validate``: fills sizes
            that default from each other (e.g. ``units`` from ``input_shape`` and vice
            versa); ``given`` is the set of keys the caller or preset set, so it can tell
            a default from an explicit contradiction.
        decision: what the first output decides, which is what an int8 artifact
            must agree with Keras on (``models.card.DECISIONS``): "argmax"
            (class scores, ART1's categories), "argmin" (a SOM's best-matching
            unit), "sign" (a bipolar recalled state, every unit) or "bits" (a
            binary state or probabilities, every unit on the same side of 0.5).
        rule_owner: the class (the model, or the layer of it) that learns by its own
            rule: its ``learning_rule`` attribute is the one owner of the rule's name,
            which ``models.learn`` reads from a built or reloaded model and
            :attr:`learning_rule` reads here without building anything. None for
            backpropagation models.
    """
    name: str
    defaults: Mapping[str, Any]
    build: Callable[[dict], keras.Model]
    count_params: Callable[[dict], int]
    reference: str
    validate: Callable[[dict], None] | None = None
    derive: Callable[[dict, set], None] | None = None
    decision: str = "argmax"
    rule_owner: type | None = None

    @property
    def learning_rule(self) -> str | None:
        """The family's own learning rule (``models.rules``), as its ``rule_owner``
        names it; None for backpropagation."""
        return getattr(self.rule_owner, "learning_rule", None)

    def variant(self, overrides: Mapping[str, Any], **preset) -> "ModelSpec":
        """Merge ``defaults <- preset <- overrides`` and validate the result.

        Raises:
            ModelConfigError: an override is not accepted by this family or a
                value is invalid.
        """
        accepted = list(self.defaults)
        for key in list(preset) + list(overrides):
            if key not in self.defaults:
                hint = did_you_mean(key, accepted)
                raise ModelConfigError(
                    f"Unknown override {key!r} for model family {self.name!r}.{hint} "
                    f"Accepted: {', '.join(accepted)}. Received: {key}={overrides.get(key, preset.get(key))!r}")
        config = {**self.defaults, **preset, **overrides}
        config = _layers.validate_common(config)
        if self.derive is not None:
            self.derive(config, set(preset) | set(overrides))
        if self.validate is not None:
            self.validate(config)
        return ModelSpec(family=self, config=config)


@dataclass(frozen=True)
class ModelSpec:
    """A validated model configuration; ``build()`` makes the Keras model."""
    family: Family
    config: dict
    name: str = ""
    description: str = ""

    def build(self) -> keras.Model:
        """Build a fresh Keras model for this configuration, with its model card."""
        from models.card import attach_card

        model = self.family.build(dict(self.config))
        # Families build anonymous models; the registry name makes summaries
        # and saved files say which entry they came from.
        if self.name:
            model.name = self.name
        attach_card(model, self.card(model))
        return model

    def card(self, model: keras.Model) -> dict:
        """The model card of ``model`` built from this spec (``models.model_card``)."""
        from models.card import build_card

        return build_card(model, name=self.name or None, family=self.family.name,
                          decision=self.family.decision,
                          num_classes=self.config.get("num_classes"))

    def expected_params(self) -> int:
        """Parameter count from the family's closed-form formula (no build)."""
        return int(self.family.count_params(dict(self.config)))


_REGISTRY: dict[str, Callable[..., ModelSpec]] = {}


def register_model(fn: Callable[..., ModelSpec]) -> Callable[..., ModelSpec]:
    """Decorator: register a builder under its function name.

    The builder takes ``**overrides`` and returns a :class:`ModelSpec` (usually
    ``FAMILY.variant(overrides, **preset)``); the first line of its docstring
    is the model's one-line description.

    Raises:
        ValueError: a model with the same name is already registered (timm only
            warns; a silent replacement would hide a real mistake).
    """
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"Model {name!r} is already registered "
                         f"(by {_REGISTRY[name].__module__}). Choose another name.")
    description = (fn.__doc__ or "").strip().splitlines()[0].strip() if fn.__doc__ else ""

    @functools.wraps(fn)
    def builder(**overrides) -> ModelSpec:
        return replace(fn(**overrides), name=name, description=description)

    _REGISTRY[name] = builder
    return builder


def _builder(name: str) -> Callable[..., ModelSpec]:
    if not isinstance(name, str):
        raise UnknownModelError(f"Model name must be a string. Received: name={name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = did_you_mean(name, _REGISTRY, cutoff=0.4)
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} "
            f"See models.list_models() (or `python -m models list`) for all {len(_REGISTRY)} names."
        ) from None


def list_models(pattern: str = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    """Sorted names of registered models matching ``pattern`` (fnmatch).

    Args:
        pattern: fnmatch pattern, e.g. ``"deep_mlp_*"``.
        exclude: one pattern or a list of patterns to leave out.

    Returns:
        Sorted list of model names.
    """
    excludes = [exclude] if isinstance(exclude, str) else list(exclude)
    return sorted(n for n in _REGISTRY
                  if fnmatch.fnmatchcase(n, pattern)
                  and not any(fnmatch.fnmatchcase(n, e) for e in excludes))


def model_spec(name: str, **overrides) -> ModelSpec:
    """Validated :class:`ModelSpec` for ``name`` with ``overrides`` (no build).

    Raises:
        UnknownModelError: ``name`` is not registered (closest matches named).
        ModelConfigError: an override is unknown or invalid.
    """
    return _builder(name)(**overrides)


def create_model(name: str, **overrides) -> keras.Model:
    """Build registered model ``name`` with keyword ``overrides``.

    Args:
        name: a name from :func:`list_models`.
        **overrides: any key of the model's defaults (see :func:`describe`);
            every model accepts ``input_shape``, ``num_classes`` and
            ``activation`` (an ``activations`` name or a Keras layer).

    Returns:
        A new, built ``keras.Model``.

    Raises:
        UnknownModelError: unknown name (closest matches named).
        ModelConfigError: unknown override (accepted ones listed) or bad value.

    Example:
        >>> model = create_model("exam_mlp", output_activation=None)
    """
    return model_spec(name, **overrides).build()


def describe(name: str, **overrides) -> dict:
    """Describe registered model ``name`` without building it.

    Returns:
        dict with ``name``, ``family``, ``description``, ``reference``,
        ``defaults`` (the full configuration), ``input_shape``,
        ``num_classes`` (None for families without classes, e.g. Hopfield),
        ``learning_rule`` (None: backpropagation) and ``params`` (expected
        parameter count from the family's closed-form formula).

    Raises:
        UnknownModelError: unknown name.
        ModelConfigError: bad override.
    """
    spec = model_spec(name, **overrides)
    config = {k: _layers.plain(v) for k, v in spec.config.items()}
    return {
        "name": spec.name,
        "family": spec.family.name,
        "description": spec.description,
        "reference": spec.family.reference,
        "defaults": config,
        "input_shape": list(spec.config["input_shape"]),
        "num_classes": spec.config.get("num_classes"),
        "learning_rule": spec.family.learning_rule,
        "params": spec.expected_params(),
    }
