"""Text reports the command line prints: model tables and audits."""
from __future__ import annotations

import keras

from models._registry import describe, list_models
from models.audit import audit
from models.errors import ModelConfigError
from models.loading import resolve_model

FORMATS = ("md", "json", "csv")


def keras_summary(model: keras.Model) -> str:
    """The text ``model.summary()`` prints, as a string."""
    lines: list[str] = []
    model.summary(print_fn=lambda text, *args, **kwargs: lines.append(text))
    return "\n".join(lines) + "\n"


def audit_report(target: str, fmt: str = "md", summary: bool = False, **overrides) -> str:
    """Audit a registered model name (with ``overrides``) or a ``.keras`` file.

    Args:
        target: model name from ``list_models()`` or a path to a ``.keras`` file.
        fmt: "md", "json" or "csv".
        summary: prepend Keras' own ``model.summary()`` text.
        **overrides: builder overrides (names only).

    Returns:
        The report text.

    Raises:
        ModelConfigError: unknown format or bad override.
        UnknownModelError: unknown name.
        ModelLoadError: an unloadable file.
    """
    if fmt not in FORMATS:
        raise ModelConfigError(f"format must be one of {', '.join(FORMATS)}. Received: format={fmt!r}")
    model = resolve_model(target, **overrides)
    result = audit(model)
    text = {"md": result.to_markdown, "json": result.to_json, "csv": result.to_csv}[fmt]()
    return (keras_summary(model) + "\n" + text) if summary else text


def models_table(pattern: str = "*", exclude=()) -> list[dict]:
    """One dict per registered model: name, params, description, reference."""
    rows = []
    for name in list_models(pattern, exclude):
        info = describe(name)
        rows.append({key: info[key] for key in ("name", "params", "description", "reference")}
                    | {"input_shape": info["input_shape"], "num_classes": info["num_classes"]})
    return rows


def models_list_text(pattern: str = "*", exclude=()) -> str:
    """One line per registered model: its name and parameter count (``python -m models list``)."""
    rows = [(row["name"], f"{row['params']:,}") for row in models_table(pattern, exclude)]
    if not rows:
        return ""
    width = max(len(name) for name, _ in rows)
    counts = max(len(count) for _, count in rows)
    return "".join(f"{name:<{width}}  {count:>{counts}}\n" for name, count in rows)


def models_markdown(pattern: str = "*", exclude=()) -> str:
    """Markdown table of registered models (generated into docs/models.md)."""
    lines = ["| Model | Params | Input | Classes | Description | Reference |",
             "|---|--:|---|--:|---|---|"]
    for row in models_table(pattern, exclude):
        shape = " x ".join(str(d) for d in row["input_shape"])
        classes = "-" if row["num_classes"] is None else f"{row['num_classes']:,}"  # memory nets
        lines.append(f"| `{row['name']}` | {row['params']:,} | {shape} | {classes} | "
                     f"{row['description']} | {row['reference']} |")
    return "\n".join(lines) + "\n"
