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

import activations
from models.errors import ModelConfigError

# Bytes per stored parameter for the sizes the export formats use.
_BYTES = {"float32": 4, "float16": 2, "int8": 1}
_BIAS_NAMES = ("bias", "beta")
_STAT_NAMES = ("moving_mean", "moving_variance")
# Layers that keep the shape and sit between a weight layer and its activation.
_PASS_THROUGH = (keras.layers.BatchNormalization, keras.layers.Dropout,
                 keras.layers.AlphaDropout)


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
        return _markdown(self)


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
    used = _activation_roles(rows)
    return Audit(
        model_name=model.name,
        rows=rows,
        total_params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable for r in rows),
        non_trainable_params=sum(r.non_trainable for r in rows),
        total_macs=sum(r.macs for r in rows),
        input_shape=_shape_text(_safe(lambda: model.input)),
        output_shape=_shape_text(_safe(lambda: model.output)),
        activations_used=used,
    )


# --- per-layer facts ---------------------------------------------------------

def _audit_layers(model: keras.Model, prefix: str, rows: list, seen: set) -> None:
    consumers = _consumers(model)
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
    output = _safe(lambda: layer.output)
    # An InputLayer has no input tensor; its "input" is what it outputs.
    source = output if isinstance(layer, keras.layers.InputLayer) else _safe(lambda: layer.input)
    return AuditRow(
        name=prefix + layer.name,
        type=type(layer).__name__,
        input_shape=_shape_text(source),
        output_shape=_shape_text(output),
        weights=weights, biases=biases, statistics=stats, params=params,
        trainable=trainable, non_trainable=non_trainable,
        formula=formula,
        macs=_macs(layer, kernel, output),
        activation=_activation_of(layer, consumers),
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
    (``kernel.size x prod(output spatial dims)``, channels-last). Batch norm
    at inference: one multiply-add per output element. Everything else: 0.
    """
    shape = getattr(output, "shape", None)
    if shape is None:
        return 0
    positions = math.prod(d or 1 for d in shape[1:-1])
    if kernel is not None:
        return math.prod(kernel.shape) * positions
    if isinstance(layer, keras.layers.BatchNormalization):
        return math.prod(d or 1 for d in shape[1:])
    return 0


def _safe(fn):
    # Shared layers and layers outside a functional graph have no single
    # input/output; the audit still counts their weights.
    try:
        return fn()
    except (AttributeError, ValueError, RuntimeError):
        return None


def _shape_text(tensors) -> str:
    if tensors is None:
        return "?"
    if isinstance(tensors, (list, tuple)):
        return "[" + ", ".join(_shape_text(t) for t in tensors) + "]"
    if isinstance(tensors, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(t)}" for k, t in tensors.items()) + "}"
    return str(tuple(tensors.shape))


# --- activations -------------------------------------------------------------

def _activation_classes() -> dict:
    return {activations.describe(n)["layer"]: n for n in activations.list_activations()}


def activation_of_layer(layer) -> str | None:
    """Name of the activation a layer *is* (activation layer), else None.

    Recognises the ``activations`` package's layers, ``keras.layers.Activation``
    and Keras' own ReLU/Softmax/LeakyReLU/ELU/PReLU layers.
    """
    if isinstance(layer, keras.layers.Activation):
        return _function_name(layer.activation)
    return _activation_classes().get(type(layer).__name__)


def _function_name(fn) -> str | None:
    name = getattr(fn, "__name__", None)
    return None if name in (None, "linear") else name


def _consumers(model) -> dict:
    """id(layer) -> layers reading its output, from the functional graph."""
    producer = {}
    for layer in model.layers:
        for t in _flat(_safe(lambda: layer.output)):
            producer[id(t)] = layer
    result: dict[int, list] = {}
    for layer in model.layers:
        for t in _flat(_safe(lambda: layer.input)):
            if id(t) in producer:
                result.setdefault(id(producer[id(t)]), []).append(layer)
    return result


def _flat(tensors) -> list:
    return [] if tensors is None else keras.tree.flatten(tensors)


def _activation_of(layer, consumers: dict) -> str | None:
    """The activation a layer is, has built in, or feeds straight into."""
    own = activation_of_layer(layer)
    if own:
        return own
    if hasattr(layer, "activation") and _function_name(layer.activation):
        return _function_name(layer.activation)
    if isinstance(layer, (_PASS_THROUGH, keras.layers.InputLayer)):
        return None
    # Dense -> [BatchNorm] -> [Dropout] -> activation layer: the activation
    # belongs to the Dense, as the course draws it (likewise Add -> ReLU in a
    # residual block).
    current = layer
    for _ in range(4):
        nxt = consumers.get(id(current), [])
        if len(nxt) != 1:
            return None
        current = nxt[0]
        name = activation_of_layer(current)
        if name:
            return name
        if not isinstance(current, _PASS_THROUGH):
            return None
    return None


def _activation_roles(rows: list[AuditRow]) -> dict:
    """activation name -> sorted roles ("hidden", "output") it plays.

    The output layer is the last layer with a kernel; activations at or after
    it are output activations, all earlier ones hidden.
    """
    classes = _activation_classes()
    kernel_rows = [i for i, r in enumerate(rows)
                   if r.params and r.type not in classes and r.type != "BatchNormalization"]
    last = kernel_rows[-1] if kernel_rows else -1
    roles: dict[str, set] = {}
    for i, row in enumerate(rows):
        if row.activation:
            roles.setdefault(row.activation, set()).add("output" if i >= last else "hidden")
    return {k: sorted(v) for k, v in sorted(roles.items())}


# --- markdown ----------------------------------------------------------------

def _markdown(a: Audit) -> str:
    lines = [f"# Parameter audit: {a.model_name}", "", "## 1. Structure", ""]
    classes = _activation_classes()
    kernel_rows = [r for r in a.rows if r.params and r.type not in classes
                   and r.type not in ("BatchNormalization", "Activation")]
    lines.append(f"- Input layer: {a.input_shape}")
    for row in a.rows:
        if row.type in ("InputLayer", "Activation") or row.type in classes:
            continue  # activations are named on the layer they follow
        if row in kernel_rows:
            role = ("Output layer" if row is kernel_rows[-1]
                    else f"Hidden layer {kernel_rows.index(row) + 1}")
            units = row.output_shape.strip("()").split(",")[-1].strip()
            kind = "filters" if "Conv" in row.type else "neurons"
            act = f", {row.activation}" if row.activation else ", linear"
            lines.append(f"- {role} `{row.name}` ({row.type}): {units} {kind}{act}; "
                         f"output {row.output_shape}")
        else:
            act = f", then {row.activation}" if row.activation else ""
            lines.append(f"- `{row.name}` ({row.type}): {row.input_shape} -> {row.output_shape}{act}")

    lines += ["", "## 2. Learnable parameters per layer", "",
              "Dense and convolution layers: parameters = (inputs x outputs) + outputs "
              "(bias terms); a convolution's inputs are kernel height x width x input "
              "channels. Batch norm learns gamma and beta and keeps a moving mean and "
              "variance that are not trained.", ""]
    for row in a.rows:
        if not row.params:
            continue
        lines.append(f"- `{row.name}` ({row.type}): {row.formula}"
                     + (f"  (non-trainable: {row.non_trainable:,})" if row.non_trainable else "")
                     + (f"; {row.note}" if row.note else ""))
    lines += ["", "| Layer | Type | Input | Output | Weights | Biases | Trainable | "
              "Non-trainable | Formula | MACs | Activation | float32 B | float16 B | int8 B |",
              "|---|---|---|---|--:|--:|--:|--:|---|--:|---|--:|--:|--:|"]
    for r in a.rows:
        lines.append(f"| {r.name} | {r.type} | {r.input_shape} | {r.output_shape} | "
                     f"{r.weights:,} | {r.biases:,} | {r.trainable:,} | {r.non_trainable:,} | "
                     f"{r.formula} | {r.macs:,} | {r.activation or ''} | {r.bytes_float32:,} | "
                     f"{r.bytes_float16:,} | {r.bytes_int8:,} |")

    parts = [f"{r.params:,}" for r in a.rows if r.params]
    lines += ["", "## Total", "",
              f"{' + '.join(parts) or '0'} = **{a.total_params:,}** parameters",
              "",
              f"- Trainable: {a.trainable_params:,}; non-trainable: {a.non_trainable_params:,}",
              f"- Multiply-accumulates per example: {a.total_macs:,}",
              "- Size of the parameters: " + ", ".join(
                  f"{d} {_human(a.size_bytes(d))}" for d in _BYTES)]

    lines += ["", "## 3. Activation functions", ""]
    if not a.activations_used:
        lines.append("- None (the model outputs linear values).")
    for role in ("hidden", "output"):  # in the order the data flows
        for name, roles in a.activations_used.items():
            if role in roles:
                lines.append(_activation_line(name, role))
    return "\n".join(lines) + "\n"


def _activation_line(name: str, role: str) -> str:
    where = "Hidden layers" if role == "hidden" else "Output layer"
    try:
        info = activations.describe(name)
    except ValueError:
        return f"- {where}: {name} (not in the activations catalogue)."
    line = (f"- {where}: **{name}**, ${info.get('formula', '')}$, range "
            f"${info.get('range', '?')}$. Why: {info.get('typical_use', 'see its catalogue entry')}.")
    if role == "hidden" and info.get("vanishing_gradient") is True:
        line += " Caution: it saturates, so gradients vanish in deep stacks."
    return line


def _human(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    value, unit = n / 1024, "KiB"
    if value >= 1024:
        value, unit = value / 1024, "MiB"
    return f"{value:,.2f} {unit} ({n:,} B)"
