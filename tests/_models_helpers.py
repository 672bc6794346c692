"""Shared helpers for the models tests: a per-process model cache and a
parser for the totals Keras' own ``model.summary()`` prints."""
from __future__ import annotations

import functools
import re

import models


@functools.lru_cache(maxsize=None)
def built(name: str):
    """The default model ``name``, built once per test process (read-only use)."""
    return models.create_model(name)


def summary_totals(model) -> dict:
    """Total/Trainable/Non-trainable params parsed from ``model.summary()`` text."""
    lines: list[str] = []
    model.summary(print_fn=lambda text, *a, **k: lines.append(text))
    text = "\n".join(lines)
    totals = {}
    for key, label in (("total", "Total params"), ("trainable", "Trainable params"),
                       ("non_trainable", "Non-trainable params")):
        match = re.search(rf"{label}: ([\d,]+)", text)
        assert match, f"{label!r} not found in summary:\n{text}"
        totals[key] = int(match.group(1).replace(",", ""))
    return totals
