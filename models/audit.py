"""Parameter audit: the per-layer calculation a course assignment asks for.

``audit(model)`` walks a built Keras model and returns one row per layer
with its shapes, weights and biases, the formula written the way the course
writes it (``(1024 x 5) + 5 = 5,125``), trainable and non-trainable counts,
multiply-accumulates per example, the activation and the storage size.
Counts come from the layer's own variables, so the totals equal
``model.count_params()`` for any model, not only ours. A layer whose count
the course writes differently (a symmetric Hopfield matrix: n x n stored,
n(n-1)/2 independent) defines ``audit_formula() -> (formula, note)``.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field

import keras

from models.audit_activations import activation_of, activation_roles, consumers_of, safe
from models.card import model_card
from models.errors import ModelConfigError

# Bytes per stored parameter for the sizes the export formats use.
_BYTES = {"float32": 4, "float16": 2, "int8": 1}
_BIAS_NAMES = ("bias", "beta")
_STAT_NAMES = ("moving_mean", "moving_variance")


@dataclass(frozen=True)
class AuditRow:
    """One layer of the audit.

    ``weights`` counts kernels (and other learned tensors such as BN's gamma
    or PReLU's alpha), ``biases`` bias/beta vectors, ``statistics`` BN's moving
    mean and variance; ``params = weights + biases + statistics``. ``note`` is
    what the layer adds about its count (e.g. a symmetric matrix's independent
    entries).
    """
    name: str
    type: str
    input_shape: str
    output_shape: str
    weights: int
    biases: int
    statistics: int
    params: int
    trainable: int
    non_trainable: int
    formula: str
    macs: int
    activation: str | None
    bytes_float32: int
    bytes_float16: int
    bytes_int8: int
    note: str = ""


@dataclass
class Audit:
    """Result of :func:`audit`; render with ``to_markdown/to_json/to_csv``."""
    model_name: str
    rows: list[AuditRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    input_shape: str
    output_shape: str
    activations_used: dict = field(default_factory=dict)  # name -> ["hidden", "output"]
    model_card: dict = field(default_factory=dict)  # models.card: what the model is

    def size_bytes(self, dtype: str = "float32") -> int:
        """Storage of all parameters at ``dtype`` (float32, float16 or int8)."""
        if dtype not in _BYTES:
            raise ModelConfigError(f"dtype must be one of {', '.join(_BYTES)}. Received: dtype={dtype!r}")
        return self.total_params * _BYTES[dtype]

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready) with totals and rows."""
        data = asdict(self)
        data["sizes_bytes"] = {d: self.size_bytes(d) for d in _BYTES}
        return data

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_csv(self) -> str:
        """CSV text, one line per layer, header = AuditRow field names."""
        buffer = io.StringIO()
        names = list(AuditRow.__dataclass_fields__)
        writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow(asdict(row))
        return buffer.getvalue()

    def to_markdown(self) -> str:
        """A worked assignment answer: structure, per-layer sums, total, activations."""
        from models.audit_markdown import markdown

        return markdown(self)


def audit(model: keras.Model) -> Audit:
    """Audit every layer of a built Keras model.

    Args:
        model: a built ``keras.Model`` (functional or Sequential; nested models
            are expanded with ``outer/inner`` layer names).

    Returns:
        Audit with ``rows`` and totals; ``total_params == model.count_params()``.

    Raises:
        TypeError: ``model`` is not a Keras model.
        ModelConfigError: the model is not built (no known input shape).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"audit() needs a keras.Model. Received: {type(model).__name__}")
    if not model.built:
        raise ModelConfigError(f"Model {model.name!r} is not built; call it on data or build it "
                         "with an input shape before auditing.")
    rows: list[AuditRow] = []
    seen: set[int] = set()
    _audit_layers(model, "", rows, seen)
    used = activation_roles(rows)
    return Audit(
        model_name=model.name,
        rows=rows,
        total_params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable for r in rows),
        non_trainable_params=sum(r.non_trainable for r in rows),
        total_macs=sum(r.macs for r in rows),
        input_shape=_shape_text(safe(lambda: model.input)),
        output_shape=_shape_text(safe(lambda: model.output)),
        activations_used=used,
        model_card=model_card(model),
    )


# --- per-layer facts ---------------------------------------------------------

def _audit_layers(model: keras.Model, prefix: str, rows: list, seen: set) -> None:
    consumers = consumers_of(model)
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _audit_layers(layer, f"{prefix}{layer.name}/", rows, seen)
            continue
        rows.append(_row(layer, prefix, consumers, seen))


def _row(layer, prefix: str, consumers: dict, seen: set) -> AuditRow:
    weights = biases = stats = trainable = non_trainable = 0
    terms = []
    trainable_ids = {id(v) for v in layer.trainable_weights}
    kernel = None
    for var in layer.weights:
        if id(var) in seen:  # a shared variable is counted once, as count_params() does
            continue
        seen.add(id(var))
        size = math.prod(var.shape)
        short = var.name.split("/")[-1]
        if short in _BIAS_NAMES or short.endswith("_bias"):  # an RBM's hidden_bias, visible_bias
            biases += size
        elif short in _STAT_NAMES:
            stats += size
        else:
            weights += size
        if id(var) in trainable_ids:
            trainable += size
        else:
            non_trainable += size
        if short == "kernel":
            kernel = var
        terms.append(_term(short, tuple(var.shape)))
    params = weights + biases + stats
    formula = f"{' + '.join(terms)} = {params:,}" if terms else "0"
    note = ""
    if hasattr(layer, "audit_formula"):
        # Layers of the classic nets write their own count, e.g. Hopfield's
        # "(64 x 64) = 4,096" with the note "symmetric, zero diagonal: 2,016 independent".
        formula, note = layer.audit_formula()
    output = safe(lambda: layer.output)
    # An InputLayer has no input tensor; its "input" is what it outputs.
    source = output if isinstance(layer, keras.layers.InputLayer) else safe(lambda: layer.input)
    return AuditRow(
        name=prefix + layer.name,
        type=type(layer).__name__,
        input_shape=_shape_text(source),
        output_shape=_shape_text(output),
        weights=weights, biases=biases, statistics=stats, params=params,
        trainable=trainable, non_trainable=non_trainable,
        formula=formula,
        macs=_macs(layer, kernel, output),
        activation=activation_of(layer, consumers),
        **{f"bytes_{d}": params * n for d, n in _BYTES.items()},
        note=note,
    )


def _term(name: str, shape: tuple) -> str:
    # Kernels and biases read as in the course; other tensors say what they are.
    text = " x ".join(str(d) for d in shape) if shape else "1"
    if len(shape) > 1:
        text = f"({text})"
    return text if name in ("kernel", "bias") else f"{text} ({name.replace('_', ' ')})"


def _macs(layer, kernel, output) -> int:
    """Multiply-accumulates per example.

    Dense and convolutions: one MAC per kernel entry per output position
    (``kernel.size x prod(output spatial dims)``, channels-last). Recurrent
    layers: kernel and recurrent kernel once per timestep (a layer may say
    instead with ``audit_macs()``). Batch norm at inference: one multiply-add
    per output element. Everything else: 0.
    """
    if hasattr(layer, "audit_macs"):  # layers that know their own (a recurrence, say)
        return int(layer.audit_macs())
    if isinstance(layer, keras.layers.RNN):
        # Every step multiplies the input by the kernel and the state by the
        # recurrent kernel; the timesteps are the input's second axis.
        steps = safe(lambda: layer.input.shape[1]) or 1
        return steps * sum(math.prod(w.shape) for w in layer.weights if len(w.shape) == 2)
    shape = getattr(output, "shape", None)
    if shape is None:
        return 0
    positions = math.prod(d or 1 for d in shape[1:-1])
    if kernel is not None:
        return math.prod(kernel.shape) * positions
    if isinstance(layer, keras.layers.BatchNormalization):
        return math.prod(d or 1 for d in shape[1:])
    return 0


def _shape_text(tensors) -> str:
    if tensors is None:
        return "?"
    if isinstance(tensors, (list, tuple)):
        return "[" + ", ".join(_shape_text(t) for t in tensors) + "]"
    if isinstance(tensors, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(t)}" for k, t in tensors.items()) + "}"
    return str(tuple(tensors.shape))
