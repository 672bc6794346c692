"""The parameter audit as a worked course assignment (``Audit.to_markdown``):
the structure, each layer's ``(inputs x outputs) + biases``, the total, and
the activation functions with their catalogue entries."""
from __future__ import annotations

import activations
from models.audit import _BYTES, Audit
from models.audit_activations import activation_classes

def markdown(a: Audit) -> str:
    """Markdown text of an audit (what ``python -m models audit --format md`` prints)."""
    lines = [f"# Parameter audit: {a.model_name}", "", "## 1. Structure", ""]
    classes = activation_classes()
    kernel_rows = [r for r in a.rows if r.params and r.type not in classes
                   and r.type not in ("BatchNormalization", "Activation")]
    lines.append(f"- Input layer: {a.input_shape}")
    if a.model_card:
        from models.card import card_summary
        lines.append(f"- Model card: {card_summary(a.model_card)}"
                     + (f" ({a.model_card['assumed']})" if a.model_card.get("assumed") else ""))
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
