"""Closest-match hints for unknown names (registries, options)."""
from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(name, candidates: Iterable, n: int = 3, cutoff: float = 0.5,
                 quote: bool = False) -> str:
    """``" Did you mean: a, b?"`` for the closest ``candidates`` to ``name``, else ``""``.

    With ``quote=True`` the names are quoted, for values a user types as they
    are (a flag's argument): ``" Did you mean 'a' or 'b'?"``.

    Example:
        >>> did_you_mean("exam_mpl", ["exam_mlp", "lenet5"])
        ' Did you mean: exam_mlp?'
        >>> did_you_mean("adamm", ["adam", "sgd"], quote=True)
        " Did you mean 'adam'?"
    """
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=cutoff)
    if not close:
        return ""
    if quote:
        return f" Did you mean {' or '.join(map(repr, close))}?"
    return f" Did you mean: {', '.join(close)}?"
