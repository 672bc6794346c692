"""DatasetBundle: the three splits as arrays plus the tf.data pipelines over them.

Decoding/conversion runs once at load time and the resulting float32 arrays
are held in memory: that is the cache every pipeline reads from. Training
order is a pure function of ``(seed, epoch)`` (see :meth:`DatasetBundle.epoch`)
so a run resumed at epoch k sees exactly the batches an uninterrupted run saw.
"""
from __future__ import annotations

import functools

import numpy as np

from ._errors import DatasetError

SPLITS = ("train", "val", "test")


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` training examples in epoch ``epoch`` for ``seed``.

    numpy's PCG64 stream for a given seed sequence is stable across numpy
    versions, so this is reproducible and needs no saved state beyond
    ``(seed, epoch)``.
    """
    return np.random.default_rng([int(seed), int(epoch), 0x5EED]).permutation(n)


class DatasetBundle:
    """Train/val/test splits of one dataset with ready tf.data pipelines.

    Attributes:
        name: dataset name as given to :func:`data.load_dataset`.
        num_classes: number of classes k; labels are 0..k-1.
        class_names: tuple of k names.
        sizes: dict split -> number of examples.
        batch_size, seed: pipeline parameters.
        train / val / test: ``tf.data.Dataset`` of ``(x float32 [B,32,32,1],
            y int32 [B])``, prefetched. ``train`` reshuffles on every
            iteration (seeded); use :meth:`epoch` for a resumable order.
    """

    def __init__(self, name, arrays, num_classes, class_names, *, batch_size=128, seed=0,
                 cache=True, shuffle=True, description=""):
        self.name = name
        self._arrays = arrays
        self.num_classes = int(num_classes)
        self.class_names = tuple(class_names)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.cache = bool(cache)
        self.shuffle = bool(shuffle)
        self.description = description
        self.sizes = {s: int(len(arrays[s][1])) for s in SPLITS}

    def __repr__(self):
        return (f"DatasetBundle(name={self.name!r}, num_classes={self.num_classes}, "
                f"sizes={self.sizes}, batch_size={self.batch_size}, seed={self.seed})")

    @property
    def input_shape(self) -> tuple:
        """Shape of one example, without the batch axis: ``(32, 32, 1)``."""
        return tuple(int(d) for d in self._arrays["train"][0].shape[1:])

    def as_numpy(self, split: str = "test"):
        """Return ``(x float32 [N,32,32,1], y int64 [N])`` of ``split``.

        Raises:
            DatasetError: unknown split name.
        """
        if split not in SPLITS:
            raise DatasetError(f"Unknown split {split!r}; choose one of {SPLITS}.")
        x, y = self._arrays[split]
        return x, y

    def images(self, split: str = "test", rows=None):
        """The images of ``split`` (its examples ``rows``, an index array or a slice, when
        given, in that order).

        In memory an array; a streamed bundle's is a :class:`data.StreamedImages`
        that reads the shards slice by slice, so code that slices it batch by batch
        never holds the split in memory.
        """
        x = self.as_numpy(split)[0]
        return x if rows is None else x[rows]

    def labels(self, split: str = "test", rows=None) -> np.ndarray:
        """The int64 labels of ``split`` (of its examples ``rows`` when given)."""
        y = self.as_numpy(split)[1]
        return y if rows is None else y[rows]

    def head(self, split: str, n: int):
        """``(x, y)`` of the first ``n`` examples of ``split`` (all of them when fewer)."""
        x, y = self.as_numpy(split)
        return x[:n], y[:n]

    def steps_per_epoch(self, batch_size: int | None = None) -> int:
        """Number of (possibly partial last) training batches per epoch."""
        b = int(batch_size or self.batch_size)
        return -(-self.sizes["train"] // b)

    @functools.cached_property
    def _tensors(self):
        import tensorflow as tf

        # Held once as tensors on the host; every pipeline gathers from them.
        return {s: (tf.constant(x), tf.constant(y.astype(np.int32)))
                for s, (x, y) in self._arrays.items()}

    def tensors(self, split: str = "train"):
        """``(x, y)`` of ``split`` as host tensors (float32, int32), created once.

        For training loops that gather batches themselves (see training/loop.py).
        """
        if split not in SPLITS:
            raise DatasetError(f"Unknown split {split!r}; choose one of {SPLITS}.")
        return self._tensors[split]

    in_memory = True  # the splits are arrays in memory (a StreamedBundle reads them from disk)

    def train_rows(self, blocks: np.ndarray):
        """``(x, y, rows)`` for a ``[k, B]`` block of training indices: tensors to gather
        from and the rows of them that make the block's batches.

        In memory that is the whole training set and ``blocks`` itself; a streamed
        bundle reads just the block's examples, so both give the same batches.
        """
        x, y = self.tensors("train")
        return x, y, blocks

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Indices of the training examples in the order epoch ``epoch`` visits them."""
        n = self.sizes["train"]
        return epoch_permutation(n, self.seed, epoch) if self.shuffle else np.arange(n)

    def _from_indices(self, split, indices_ds, batch_size):
        import tensorflow as tf

        x, y = self._tensors[split]
        # One gather per batch rather than per example: no per-example Python or graph work.
        ds = indices_ds.batch(batch_size).map(
            lambda idx: (tf.gather(x, idx), tf.gather(y, idx)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        options.deterministic = True
        # Index-based sources cannot be sharded by file: shard batches by data.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        return ds.with_options(options)

    def epoch(self, epoch: int, batch_size: int | None = None):
        """The training pipeline of epoch ``epoch``: order = f(seed, epoch).

        Args:
            epoch: 0-based epoch index.
            batch_size: overrides the bundle's batch size.

        Returns:
            A prefetched ``tf.data.Dataset`` of ``(x, y)`` batches.
        """
        import tensorflow as tf

        ds = self._from_indices("train", tf.data.Dataset.from_tensor_slices(self.epoch_order(epoch)),
                                int(batch_size or self.batch_size))
        return ds.prefetch(tf.data.AUTOTUNE)

    def _eval_pipeline(self, split, batch_size=None):
        import tensorflow as tf

        ds = self._from_indices(split, tf.data.Dataset.range(self.sizes[split]),
                                int(batch_size or self.batch_size))
        if self.cache:
            ds = ds.cache()
        return ds.prefetch(tf.data.AUTOTUNE)

    def pipeline(self, split: str, batch_size: int | None = None):
        """Unshuffled, batched, cached, prefetched pipeline of any split."""
        if split not in SPLITS:
            raise DatasetError(f"Unknown split {split!r}; choose one of {SPLITS}.")
        return self._eval_pipeline(split, batch_size)

    @functools.cached_property
    def train(self):
        import tensorflow as tf

        n = self.sizes["train"]
        indices = tf.data.Dataset.range(n)
        if self.shuffle:
            # Full-size buffer = a uniform shuffle; new order each iteration, seeded.
            indices = indices.shuffle(n, seed=self.seed, reshuffle_each_iteration=True)
        return self._from_indices("train", indices, self.batch_size).prefetch(tf.data.AUTOTUNE)

    @functools.cached_property
    def val(self):
        return self._eval_pipeline("val")

    @functools.cached_property
    def test(self):
        return self._eval_pipeline("test")
