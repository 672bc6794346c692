"""A streamed split's images as a read-only array that reads its shards slice by slice.

Code written for in-memory arrays (``len(x)``, ``x.shape``, ``x[a:b]``) runs
unchanged over a converted dataset of any size: every index reads just those
records from disk (:meth:`data._stream.ShardedSplit.read`) and returns them as
float32 in [0, 1], the same values as the in-memory arrays. A view travels to
another process as a small JSON description (:meth:`StreamedImages.spec`).

    >>> x = bundle.images("test")            # a StreamedBundle: nothing read yet
    >>> x.shape, x[:256].dtype
    ((2000000, 32, 32, 1), dtype('float32'))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class StreamedImages:
    """Images ``rows`` (all when None) of one split of a converted dataset, in that order.

    Args:
        root: the dataset directory.
        split: "train", "val" or "test".
        rows: split-order indices (an index array or a slice) of the examples this
            view holds, a fixed subset.
        verify: check the shards' sha256 on open (a view re-opened in a child
            process skips it: its parent already checked).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, root, split: str, rows=None, *, verify: bool = True, bundle=None):
        from ._streamed import StreamedBundle

        self.root, self.split = Path(root), str(split)
        self._bundle = bundle if bundle is not None else StreamedBundle(self.root, verify=verify)
        self._reader = self._bundle.split_reader(self.split)
        if isinstance(rows, slice):
            rows = np.arange(self._reader.count)[rows]
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        n = self._reader.count if self.rows is None else len(self.rows)
        self.shape = (int(n), *self._bundle.input_shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _indices(self, key) -> np.ndarray:
        positions = np.arange(len(self))[key]
        return positions if self.rows is None else self.rows[positions]

    def __getitem__(self, key) -> np.ndarray:
        """``x[key]`` as float32 (``key``: an int, a slice or an index array)."""
        from ._streamed import to_float

        rows = self._indices(key)
        x, _ = self._reader.read(np.atleast_1d(rows))
        x = to_float(x)
        return x if np.ndim(rows) else x[0]

    def labels(self) -> np.ndarray:
        """The int64 labels of the view's examples, read in chunks."""
        n, chunk = len(self), 1 << 16
        y = np.empty(n, np.int64)
        for start in range(0, n, chunk):
            y[start:start + chunk] = self._reader.read(self._indices(slice(start, start + chunk)))[1]
        return y

    def take(self, rows) -> "StreamedImages":
        """A view of the examples ``rows`` of this view (nothing is read)."""
        return StreamedImages(self.root, self.split, self._indices(np.asarray(rows)),
                              bundle=self._bundle)

    def __array__(self, dtype=None, copy=None):
        x = self[:]
        return x if dtype is None else x.astype(dtype, copy=False)

    def spec(self) -> dict:
        """A JSON-able description that :meth:`from_spec` turns back into this view."""
        return {"streamed_dataset": str(self.root), "split": self.split,
                "rows": None if self.rows is None else self.rows.tolist()}

    @classmethod
    def from_spec(cls, spec: dict) -> "StreamedImages":
        return cls(spec["streamed_dataset"], spec["split"], spec["rows"], verify=False)
