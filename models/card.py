"""The model card: the one owner of what a model *is*.

A card is a small JSON-serializable dict that travels with the model:

* ``decision``: what the first output decides, per sample (:data:`DECISIONS`);
* ``classes``: ``{"count": k, "names": [...]}`` for class scores, else None;
* ``input``: shape (without the batch axis), dtype, value range and preprocessing;
* ``family``, ``name``: the registry entry it was built from (None for a user's own);
* ``learning_rule`` and ``hooks``: the model's own rule (None: backpropagation) and the
  optional hooks it implements (:data:`HOOKS`, documented in docs/models.md);
* ``dataset``: what ``train.py`` trained it on, with the test metrics;
* ``assumed``: for a model that came without a card, one line saying what was inferred.

``models.create_model`` attaches a card; ``model.save`` (Keras' own) writes it into the
``.keras`` archive as ``assets/model_card.json`` and :func:`models.load_model` reads it
back, so it survives ``safe_mode=True`` loading and renaming the model. The exporter
writes it into every artifact (``export.metadata``). Nothing decides by ``model.name``.
"""
from __future__ import annotations

import copy
import json
import os
from typing import Any

from models.errors import ModelCardError

CARD_VERSION = 1
# Where the card sits inside a .keras archive (Keras' own assets folder of the model).
CARD_ASSET = "model_card.json"
CARD_MEMBER = "assets/" + CARD_ASSET
# The key under which every artifact format stores the card's JSON.
CARD_KEY = "zoo.model_card"
# The SavedModel signature (no inputs) that returns the card's JSON as a string tensor.
CARD_SIGNATURE = "model_card"
# What a model's first output decides, per sample; validation judges int8 artifacts by it.
DECISIONS = {
    "argmax": "class scores: the highest one wins (ART1's categories too)",
    "argmin": "distances: the nearest unit wins (a SOM's best-matching unit)",
    "sign": "a bipolar state: every unit's sign",
    "bits": "a binary state or probabilities: every unit's side of 0.5",
    "regression": "values: compared by their difference",
}
# The optional methods of a model that learns by its own rule (training/rule_path.py).
HOOKS = ("prepare_training_data", "evaluate_rule", "learning_plots")
_KEYS = ("card_version", "name", "family", "decision", "classes", "input", "learning_rule",
         "hooks", "dataset", "assumed")
_ATTR = "_zoo_model_card"


def card_json(card: dict) -> str:
    """The card's canonical JSON (sorted keys): equal cards give equal bytes."""
    return json.dumps(card, sort_keys=True, separators=(",", ":"))


def parse_card(text, where: str) -> dict:
    """A card from its JSON text or bytes; ``where`` names the source in errors.

    Raises:
        ModelCardError: not JSON, not an object, or not a card (:func:`check_card`).
    """
    try:
        card = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelCardError(f"The model card in {where} is not valid JSON ({exc}); "
                             "re-export or re-save the model.") from None
    if not isinstance(card, dict):
        raise ModelCardError(f"The model card in {where} is a {type(card).__name__}, not a "
                             "JSON object; re-export or re-save the model.")
    return check_card(card, where=where)


def check_card(card: dict, model=None, *, where: str = "the model card") -> dict:
    """Check a card's fields (and, given ``model``, that they fit it); returns the card.

    Raises:
        ModelCardError: an unknown decision, a class count that is not the model's
            output width, names that do not match the count, a missing field.
    """
    missing = [k for k in ("decision", "classes", "input") if k not in card]
    if missing:
        raise ModelCardError(f"{where} lacks {', '.join(missing)}; a card needs decision, "
                             "classes and input (see models.model_card).")
    if card["decision"] not in DECISIONS:
        raise ModelCardError(f"{where} names the decision {card['decision']!r}; use one of "
                             f"{', '.join(DECISIONS)}.")
    classes = card["classes"]
    if classes is not None:
        count = classes.get("count") if isinstance(classes, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ModelCardError(f"{where}: classes must be {{'count': k, 'names': [...]}} "
                                 f"with k >= 1 or null; received {classes!r}.")
        names = classes.get("names")
        if names is not None and (not isinstance(names, list) or len(names) != count):
            raise ModelCardError(f"{where} names {len(names) if isinstance(names, list) else 0}"
                                 f" classes but counts {count}; give one name per class.")
    if model is not None and classes is not None:
        width = output_width(model)
        if width is not None and width != classes["count"] and not (
                classes["count"] == 2 and width == 1):
            raise ModelCardError(f"{where} says {classes['count']} classes, but the model "
                                 f"outputs {width} scores; fix the card's classes count.")
    return card


def output_width(model) -> int | None:
    """Units of the first output's last axis (None when unknown)."""
    shape = getattr(model.outputs[0], "shape", None) if getattr(model, "outputs", None) else None
    return int(shape[-1]) if shape is not None and shape[-1] is not None else None


def _hooks(model) -> list[str]:
    return [h for h in HOOKS if callable(getattr(model, h, None))]


def _input(model, value_range=None, preprocessing=None) -> dict:
    inp = model.inputs[0] if getattr(model, "inputs", None) else None
    shape = [None if d is None else int(d) for d in inp.shape[1:]] if inp is not None else None
    dtype = str(getattr(inp, "dtype", "float32")).replace("tf.", "") if inp is not None else None
    return {"shape": shape, "dtype": dtype, "range": value_range,
            "preprocessing": preprocessing or shape_words(shape)}


def shape_words(shape) -> str | None:
    """"32x32 gray" / "96x96 RGB" for image inputs, else None."""
    if not shape or len(shape) != 3 or None in shape:
        return None
    colour = {1: "gray", 3: "RGB"}.get(shape[2], f"{shape[2]} channels")
    return f"{shape[0]}x{shape[1]} {colour}"


def build_card(model, *, name=None, family=None, decision="argmax", num_classes=None,
               class_names=None, value_range=(0.0, 1.0), preprocessing=None) -> dict:
    """A card for ``model`` from what its builder knows (the registry calls this); the
    learning rule is the one the model's class declares (``models.rules.rule_name``)."""
    from models.rules import rule_name

    classes = None
    if num_classes is not None:
        classes = {"count": int(num_classes),
                   "names": [str(n) for n in class_names] if class_names is not None else None}
    card = {"card_version": CARD_VERSION, "name": name, "family": family, "decision": decision,
            "classes": classes,
            "input": _input(model, list(value_range) if value_range else None, preprocessing),
            "learning_rule": rule_name(model),
            "hooks": _hooks(model), "dataset": None, "assumed": None}
    return check_card(card, model)


def infer_card(model) -> dict:
    """What can be said of a model that came without a card, with ``assumed`` saying it.

    A softmax (or sigmoid) head decides by argmax over its units: class scores; any other
    head is a regression, compared by value.
    """
    head = head_activation(model)
    width = output_width(model)
    shape = _input(model)["shape"]
    if head in ("softmax", "sigmoid"):
        decision = "argmax"
        classes = 2 if head == "sigmoid" and width == 1 else width
        why = f"argmax over {classes} classes ({head} head)"
    else:
        decision, classes = "regression", None
        why = f"regression ({head or 'linear'} head: outputs compared by value)"
    card = build_card(model, decision=decision, num_classes=classes, value_range=None)
    card["assumed"] = (f"no model card: assumed {why}, input {shape} "
                       f"{card['input']['dtype']} as the model declares")
    return card


def head_activation(model) -> str | None:
    """The activation of the first output's layer ("softmax", "relu", ...; None: linear)."""
    from models.audit_activations import activation_of, consumers_of, safe

    outputs = getattr(model, "outputs", None)  # a subclassed keras.Model has none
    history = getattr(outputs[0], "_keras_history", None) if outputs else None
    if history is None:
        return None
    return safe(lambda: activation_of(history[0], consumers_of(model)))


def attach_card(model, card: dict, *, where: str = "the model card") -> dict:
    """Give ``model`` this card (checked against it; ``where`` names the card in the
    error); ``model.save`` will store it."""
    card = check_card(dict(card), model, where=where)
    object.__setattr__(model, _ATTR, card)

    def save_assets(dir_path):  # Keras' saver calls this on the model it saves
        with open(os.path.join(dir_path, CARD_ASSET), "w", encoding="utf-8") as f:
            f.write(card_json(getattr(model, _ATTR)))

    object.__setattr__(model, "save_assets", save_assets)
    return card


def model_card(model) -> dict:
    """The model's card (a copy): the attached one, else :func:`infer_card`'s.

    Example:
        >>> models.model_card(models.create_model("som"))["decision"]
        'argmin'
    """
    card = getattr(model, _ATTR, None)
    return copy.deepcopy(card if card is not None else infer_card(model))


def has_card(model) -> bool:
    """Whether the model carries a card of its own (not an inferred one)."""
    return getattr(model, _ATTR, None) is not None


def update_card(model, **fields: Any) -> dict:
    """Set card fields (``dataset=...``, ``classes=...``) on the model's card and attach it."""
    unknown = set(fields) - set(_KEYS)
    if unknown:
        raise ValueError(f"Unknown model card field(s) {sorted(unknown)}; known: {_KEYS}.")
    card = model_card(model)
    card.update(fields)
    return attach_card(model, card)


def is_classifier(card: dict) -> bool:
    """Whether the card's output is class scores (top-1 accuracy means something)."""
    return card.get("classes") is not None and card.get("decision") == "argmax"


def card_summary(card: dict) -> str:
    """One line of what a card says: the decision, the classes, the input."""
    classes = card.get("classes")
    what = f"{classes['count']} classes" if classes else "no classes"
    inp = card.get("input") or {}
    value_range = inp.get("range")
    words = inp.get("preprocessing") or f"shape {inp.get('shape')}"
    span = f", values in [{value_range[0]:g}, {value_range[1]:g}]" if value_range else ""
    return (f"output decides by {card['decision']} ({what}); input {words}{span}, "
            f"{inp.get('dtype')}")
