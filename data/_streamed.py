"""StreamedBundle: a converted dataset read from its shards, never held whole in memory.

It is a :class:`DatasetBundle` whose storage is the shard directory: the same
splits, the same ``epoch_order(epoch)`` (a global permutation of all training
examples, a pure function of ``(seed, epoch)``), and the same float32 values
(``uint8 / 255``), so its batches are exactly those of the in-memory bundle
over the same images. Training reads only the examples of the next chunk of
batches (:meth:`train_rows`); evaluation pipelines are native
``tf.data.FixedLengthRecordDataset`` readers of the split's shards.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ._bundle import SPLITS, DatasetBundle
from ._errors import DatasetError
from ._stream import ShardedSplit, read_metadata

def to_float(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1], the same rounding as the in-memory loaders."""
    return x_uint8.astype(np.float32) / 255.0


def uint8_scale() -> np.ndarray:
    """``[256]`` float32: the value :func:`to_float` gives each byte (a lookup table)."""
    return to_float(np.arange(256, dtype=np.uint8))


class StreamedBundle(DatasetBundle):
    """Train/val/test of a directory written by ``python -m data convert``.

    Args:
        root: the dataset directory.
        batch_size, seed, shuffle: as for :class:`DatasetBundle`.
        verify: check every shard's sha256 against the metadata on open.

    Raises:
        CorruptDatasetError: metadata and shards disagree, a shard is truncated
            or corrupted.
    """

    in_memory = False

    def __init__(self, root, *, batch_size=128, seed=0, shuffle=True, verify=True,
                 cache=False):
        root = Path(root)
        meta = read_metadata(root, verify=verify)
        self.root, self.metadata = root, meta
        self.name = str(root)
        self.num_classes = int(meta["num_classes"])
        self.class_names = tuple(meta["class_names"])
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.shuffle, self.cache = bool(shuffle), bool(cache)
        self.description = meta.get("description", f"streamed dataset {root}")
        self._shape = tuple(int(d) for d in meta["shape"])
        self._splits = {s: ShardedSplit(root, meta["splits"][s], self._shape) for s in SPLITS}
        self.sizes = {s: self._splits[s].count for s in SPLITS}

    @property
    def input_shape(self) -> tuple:
        return self._shape

    def split_reader(self, split: str) -> ShardedSplit:
        """The random-access reader of one split's shards."""
        if split not in SPLITS:
            raise DatasetError(f"Unknown split {split!r}; choose one of {SPLITS}.")
        return self._splits[split]

    def read_uint8(self, split: str, rows) -> tuple[np.ndarray, np.ndarray]:
        """``(x uint8 [n,H,W,C], y int64 [n])`` of the examples ``rows`` of ``split``."""
        return self.split_reader(split).read(rows)

    def read(self, split: str, rows) -> tuple[np.ndarray, np.ndarray]:
        """``(x float32 [n,H,W,C], y int64 [n])`` of the examples ``rows`` of ``split``."""
        x, y = self.read_uint8(split, rows)
        return to_float(x), y

    def as_numpy(self, split: str = "test"):
        """The whole split in memory (meant for the small val/test splits)."""
        return self.read(split, np.arange(self.sizes[split]))

    def images(self, split: str = "test", rows=None):
        from ._images import StreamedImages

        return StreamedImages(self.root, split, rows, bundle=self)

    def labels(self, split: str = "test", rows=None) -> np.ndarray:
        return self.images(split, rows).labels()

    def head(self, split: str, n: int):
        return self.read(split, np.arange(min(int(n), self.sizes[split])))

    @functools.cached_property
    def _tensors(self):
        raise DatasetError(f"Dataset {self.name!r} is streamed from disk; its splits are not "
                           "held as tensors. Read batches with train_rows/pipeline instead.")

    def train_rows(self, blocks: np.ndarray):
        """The block's examples as uint8 (a quarter of float32's bytes to copy); the
        training step scales them to [0, 1] itself."""
        import tensorflow as tf

        x, y = self.read_uint8("train", blocks.reshape(-1))
        rows = np.arange(blocks.size, dtype=np.int32).reshape(blocks.shape)
        return tf.constant(x), tf.constant(y.astype(np.int32)), rows

    def _from_indices(self, split, indices_ds, batch_size):
        import tensorflow as tf

        h, w, c = self._shape

        def gather(idx):
            x, y = tf.numpy_function(lambda i: self._read_int32(split, i), [idx],
                                     (tf.float32, tf.int32), stateful=False)
            return tf.ensure_shape(x, [None, h, w, c]), tf.ensure_shape(y, [None])

        return indices_ds.batch(batch_size).map(gather)

    def _read_int32(self, split, rows):
        x, y = self.read(split, rows)
        return x, y.astype(np.int32)

    def _eval_pipeline(self, split, batch_size=None):
        import tensorflow as tf

        ds = self._splits[split].tf_dataset(int(batch_size or self.batch_size))
        return ds.prefetch(tf.data.AUTOTUNE)
