"""Closest-match hints for unknown names (registries, options)."""
from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.5) -> str:
    """``" Did you mean: a, b?"`` for the closest ``candidates`` to ``name``, else ``""``.

    Example:
        >>> did_you_mean("exam_mpl", ["exam_mlp", "lenet5"])
        ' Did you mean: exam_mlp?'
    """
    close = difflib.get_close_matches(str(name), list(candidates), n=n, cutoff=cutoff)
    return f" Did you mean: {', '.join(close)}?" if close else ""
