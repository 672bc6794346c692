"""Several replicas (``tf.distribute``): the per-replica step XLA-compiled, one packed all-reduce.

One step of a global batch of ``B`` examples on ``R`` replicas:

1. ``strategy.run(local)``: every replica gathers *its* rows of the batch from
   the training set it holds in memory (rows ``[start_r, end_r)`` of the
   global batch, see :func:`shard_bounds`) and runs forward and backward as one
   XLA program. It returns a single flat vector: the gradient of its *summed*
   loss for every variable, then its loss sum and its number of correct rows.
2. ``strategy.reduce(SUM)``: that vector is all-reduced in one collective
   (the gradients packed by hand: one message per step, whatever the number
   of variables).
3. ``apply``: the sum divided by the global batch size (known in advance: no
   all-reduce of the count) is the gradient of the global-batch mean loss;
   the optimizer applies it, XLA-compiled when the variables live on one
   device.

A ``tf.while_loop`` (not XLA) runs ``steps_per_execution`` such steps per call.
Why three pieces and not one XLA program as on one replica: XLA cannot compile
a collective for CPU devices ("Collectives are not yet implemented for CPU
devices when compiling with XLA"), and the Keras optimizer's cross-replica
update (a ``merge_call``) cannot run inside a loop within ``strategy.run``.
docs/training.md ("Distributed speed") has the profile behind each choice.

Every replica applies the same all-reduced vector, so the replicas stay
bitwise identical; a resumed cluster repeats an uninterrupted one bitwise
because the data order is a function of ``(seed, epoch)`` and the split of
each batch a function of its size.
"""
from __future__ import annotations

import contextlib

import numpy as np


def shard_bounds(batch: int, replicas: int) -> np.ndarray:
    """Row bounds of each replica's share of a batch: ``[0, b_0, b_0 + b_1, ..., batch]``.

    The first ``batch % replicas`` replicas take one row more (45 on 2: 23 + 22).
    """
    q, m = divmod(int(batch), int(replicas))
    return np.concatenate([[0], np.cumsum([q + (r < m) for r in range(replicas)])])


class ReplicatedChunks:
    """The compiled multi-replica chunk of a :class:`training.steps.Steps`.

    Args:
        steps: the ``Steps`` whose model, optimizer, strategy and gradient-norm
            layout are used (its ``layer_squares`` reports per-layer norms).
        jit_compile: XLA-compile the per-replica step (and the update, when
            every variable has one copy per process).
        guard: a multi-worker cluster's :class:`training.cluster.ClusterGuard`
            (bounded waits for lost workers), or None.
    """

    def __init__(self, steps, *, jit_compile: bool, guard=None):
        import tensorflow as tf

        self.steps, self.strategy = steps, steps.strategy
        self.replicas = self.strategy.num_replicas_in_sync
        self._shapes = [tuple(v.shape) for v in steps.variables]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        self._total = sum(self._sizes)
        one_copy = len(self.strategy.extended.worker_devices) == 1
        self._local = tf.function(self._local_step, jit_compile=bool(jit_compile))
        self._update = tf.function(self._apply, jit_compile=bool(jit_compile) and one_copy)
        self.chunk = tf.function(self._chunk)
        self.guard = guard
        self._data = None

    def _local_step(self, x_all, y_all, idx, reg_weight):
        """This replica's rows ``idx``: flat ``[gradients of the summed loss..., loss sum, correct]``."""
        import tensorflow as tf

        from .steps import correct_count, gather_images, penalty, summed_loss

        model, optimizer = self.steps.model, self.steps.optimizer
        x, y = gather_images(x_all, idx), tf.gather(y_all, idx)
        with tf.GradientTape() as tape:
            probs, sum_loss = summed_loss(model, x, y, training=True)
            objective = sum_loss
            if model.losses:
                # Summed over replicas and divided by the global count, this adds
                # the regularisation once, as on one replica.
                objective += penalty(model) * reg_weight
            scaled = optimizer.scale_loss(objective)
        grads = tape.gradient(scaled, self.steps.variables)
        flat = [tf.reshape(tf.cast(g, tf.float32), [-1]) for g in grads]
        return tf.concat(flat + [tf.stack([sum_loss, correct_count(probs, y)])], axis=0)

    def _apply(self, packed, count):
        """Apply the all-reduced ``packed`` vector of a ``count``-example global batch."""
        import tensorflow as tf

        steps = self.steps
        flat = packed[:self._total] / count
        grads = [tf.reshape(g, s) for g, s in zip(tf.split(flat, self._sizes), self._shapes)]
        # Read before apply(): a LossScaleOptimizer may change its scale there.
        scale = None if steps.loss_scale is None else tf.identity(steps.loss_scale.value)
        steps.optimizer.apply(grads, steps.variables)
        return steps.layer_squares(grads, scale)

    def _chunk(self, x_all, y_all, idx, counts, n):
        """Up to ``counts.shape[0]`` steps; ``idx`` holds each replica's rows of every batch."""
        import tensorflow as tf

        size = counts.shape[0]
        losses = tf.TensorArray(tf.float32, size=size)
        corrects = tf.TensorArray(tf.float32, size=size)
        norm_sum = tf.zeros([len(self.steps.norm_names)])
        for i in tf.range(n):
            per_replica = self.strategy.run(
                lambda x, y, rows, i=i: self._local(x, y, rows[i], counts[i] / self.replicas),
                args=(x_all, y_all, idx))
            packed = self._all_reduce(per_replica)
            norm_sum += tf.sqrt(self._update(packed, counts[i]))
            losses = losses.write(i, packed[self._total] / counts[i])
            corrects = corrects.write(i, packed[self._total + 1])
        return losses.stack(), corrects.stack(), norm_sum

    def _all_reduce(self, per_replica):
        """The one collective of a step; counted into the guard's ``progress`` around it."""
        import tensorflow as tf

        def reduce():
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        if self.guard is None:
            return reduce()
        progress = self.guard.progress
        with tf.control_dependencies(self.strategy.experimental_local_results(per_replica)):
            entered = progress.assign_add(1)  # odd: waiting for the other workers
        with tf.control_dependencies([entered]):
            packed = reduce()
        with tf.control_dependencies([packed]):
            left = progress.assign_add(1)
        with tf.control_dependencies([left]):
            return tf.identity(packed)

    def _per_replica(self, make):
        """A distributed value: ``make(replica id)`` on each local replica's device."""
        import tensorflow as tf

        devices = self.strategy.extended.worker_devices

        def value(ctx):
            r = ctx.replica_id_in_sync_group  # = worker's place x local devices + local index
            with tf.device(devices[r % len(devices)]):
                return make(r)

        return self.strategy.experimental_distribute_values_from_function(value)

    def _replica_data(self, bundle):
        """The training set as tensors on every replica's device, placed once per run."""
        import tensorflow as tf

        if self._data is None:
            x, y = bundle.tensors("train")
            self._data = tuple(self._per_replica(lambda _r, t=t: tf.identity(t)) for t in (x, y))
        return self._data

    def _chunk_data(self, bundle, blocks: np.ndarray):
        """``(x, y, rows)`` distributed values for a ``[n, B]`` chunk of global batches.

        In memory every replica gathers its columns from the whole training set,
        placed once. A streamed set is read per chunk, and each replica reads only
        its own columns of the batches: a worker reads only its part of the order.
        """
        import tensorflow as tf

        if bundle.in_memory:
            x_all, y_all = self._replica_data(bundle)
            return x_all, y_all, self._rows(blocks)
        bounds = shard_bounds(blocks.shape[1], self.replicas)
        parts: dict = {}

        def part(r):
            if r not in parts:
                mine = np.ascontiguousarray(blocks[:, bounds[r]:bounds[r + 1]])
                parts[r] = bundle.train_rows(mine)
            return parts[r]

        return (self._per_replica(lambda r: tf.identity(part(r)[0])),
                self._per_replica(lambda r: tf.identity(part(r)[1])),
                self._per_replica(lambda r: tf.constant(part(r)[2])))

    def _rows(self, blocks: np.ndarray):
        """``[n, B]`` global batches -> each replica's ``[n, b_r]`` rows (distributed value)."""
        import tensorflow as tf

        bounds = shard_bounds(blocks.shape[1], self.replicas)
        return self._per_replica(lambda r: tf.constant(
            np.ascontiguousarray(blocks[:, bounds[r]:bounds[r + 1]])))

    def epoch_chunks(self, bundle, epoch: int, batch_size: int, steps_per_execution: int,
                     start: int = 0, every: int | None = None):
        """Like :meth:`training.steps.Steps.epoch_chunks`, on every replica of the cluster."""
        import tensorflow as tf

        from .steps import epoch_blocks

        watch = self.guard.watch if self.guard else (lambda _epoch: contextlib.nullcontext())
        for blocks, n in epoch_blocks(bundle, epoch, batch_size, steps_per_execution,
                                      start, every):
            counts = np.full(blocks.shape[0], blocks.shape[1], np.float32)
            x_all, y_all, rows = self._chunk_data(bundle, blocks)
            with watch(epoch + 1):
                losses, corrects, norms = self.chunk(x_all, y_all, rows,
                                                     tf.constant(counts), tf.constant(n))
                out = losses.numpy()[:n], corrects.numpy()[:n], counts[:n], norms.numpy()
            yield out

