"""The compiled parts of training: a multi-step chunk and the evaluation step.

One replica (the default, and a strategy with a single replica): one
``tf.function(jit_compile=True)`` call runs up to ``steps_per_execution``
optimizer steps as a single XLA program, with an explicit ``tf.while_loop``
gathering each batch from the in-memory training tensors by the epoch's index
permutation; no Python and no tf.data between steps. Several replicas
(``tf.distribute``): :mod:`training.distributed`, the per-replica step
XLA-compiled around one packed all-reduce per step, from the same in-memory
tensors. Both read the same epoch order (:func:`epoch_blocks`).
"""
from __future__ import annotations

import numpy as np


def _layer_groups(variables) -> tuple[list[str], np.ndarray]:
    """Layer names (input first) and a [layers, variables] 0/1 matrix grouping variables."""
    names = []
    for v in variables:
        layer = v.path.rsplit("/", 1)[0]
        if layer not in names:
            names.append(layer)
    matrix = np.zeros((len(names), len(variables)), dtype=np.float32)
    for j, v in enumerate(variables):
        matrix[names.index(v.path.rsplit("/", 1)[0]), j] = 1.0
    return names, matrix


def correct_count(probs, y):
    """Number of rows whose arg-max is the label (float32 scalar)."""
    import tensorflow as tf

    hits = tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int32), tf.cast(y, tf.int32))
    return tf.reduce_sum(tf.cast(hits, tf.float32))


def summed_loss(model, x, y, *, training: bool):
    """``(probs, loss sum)``: the forward pass and the summed sparse cross-entropy.

    The one definition of the training loss that every path (one replica,
    several replicas, evaluation) differentiates or reports; the model's
    regularisation terms come separately (:func:`penalty`), because each path
    weighs them by its own share of the batch.
    """
    import keras
    import tensorflow as tf

    probs = tf.cast(model(x, training=training), tf.float32)
    return probs, tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, probs))


def penalty(model):
    """The model's regularisation losses summed (``model.losses``), 0.0 if it has none."""
    import tensorflow as tf

    return tf.add_n(model.losses) if model.losses else tf.constant(0.0)


def gather_images(x_all, idx):
    """Rows ``idx`` of ``x_all`` as float32 in [0, 1]: a streamed set's chunks arrive as
    uint8 and are scaled here, in the compiled step, through a table of numpy's
    ``u / 255`` values (the loaders' own rounding; XLA's division may round otherwise)."""
    import tensorflow as tf

    from data import uint8_scale

    x = tf.gather(x_all, idx)
    if x.dtype != tf.uint8:
        return x
    return tf.gather(tf.constant(uint8_scale()), tf.cast(x, tf.int32))


def epoch_blocks(bundle, epoch: int, batch_size: int, steps_per_execution: int,
                 start: int = 0, every: int | None = None):
    """Epoch ``epoch``'s batches as index blocks: yields ``(blocks [k, B], n)``.

    Full batches come ``steps_per_execution`` at a time, a block shorter than
    that padded with row 0 to that static shape (one XLA compile serves every
    chunk length; only the first ``n`` rows are run), then the partial last
    batch on its own as a ``[1, B_last]`` block (its own compile). ``start``
    skips the epoch's first steps (a mid-epoch resume); with ``every`` no block
    crosses a multiple of ``every`` steps, so a checkpoint can be written there.
    Each step computes the same whichever block it is in.
    """
    order = bundle.epoch_order(epoch).astype(np.int32)
    full = len(order) // batch_size
    blocks = order[:full * batch_size].reshape(full, batch_size)
    pos = start
    while pos < full:
        end = min(pos + steps_per_execution, full)
        if every:
            end = min(end, (pos // every + 1) * every)
        chunk, n = blocks[pos:end], end - pos
        if n < steps_per_execution:
            chunk = np.concatenate([chunk, np.zeros((steps_per_execution - n, batch_size),
                                                    np.int32)])
        yield chunk, n
        pos = end
    if len(order) > full * batch_size and start <= full:
        yield order[full * batch_size:].reshape(1, -1), 1


def _read_ahead(bundle, blocks_iter):
    """``(blocks, n, bundle.train_rows(blocks))``, the next chunk's examples read by a
    thread while the current chunk runs (a streamed bundle reads them from disk)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        pending = None
        for blocks, n in blocks_iter:
            future = pool.submit(bundle.train_rows, blocks)
            if pending is not None:
                yield pending[0], pending[1], pending[2].result()
            pending = (blocks, n, future)
        if pending is not None:
            yield pending[0], pending[1], pending[2].result()


class Steps:
    """The compiled training chunk and evaluation function for one model/optimizer.

    Attributes:
        layer_names: layers whose gradient norms are tracked (empty unless
            ``track_gradients``), input layer first.
        norm_names: what the chunks' summed norms are, in order: ``layer_names``,
            then with clipping ``global`` (the gradient's global L2 norm before
            clipping) and ``global_clipped`` (the norm of the gradient applied).
        fused: the single-replica XLA chunk is used (else ``replicated``).
        fused_chunk / evaluate_batch: the compiled functions.
        loss_scale: the optimizer's dynamic loss scale (float16 mixed precision), else None.
        replicated: the multi-replica chunks (:class:`training.distributed.ReplicatedChunks`,
            given ``guard``, a multi-worker cluster's ``training.cluster.ClusterGuard``),
            None with one replica.
    """

    def __init__(self, model, optimizer, strategy, *, jit_compile: bool, track_gradients: bool,
                 clip_norm: float | None = None, clip_value: float | None = None, guard=None):
        import tensorflow as tf

        from .errors import TrainingError

        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.variables = model.trainable_variables
        self.layer_names, self._group = (_layer_groups(self.variables) if track_gradients
                                         else ([], None))
        self.clip_norm, self.clip_value = clip_norm, clip_value
        self._clipping = clip_norm is not None or clip_value is not None
        self.norm_names = self.layer_names + (["global", "global_clipped"] if self._clipping
                                              else [])
        self._replicas = strategy.num_replicas_in_sync
        if self._clipping and self._replicas > 1:
            # Keras clips each replica's gradient before the all-reduce: that is not the
            # global gradient's norm, and the runs would differ from one process.
            raise TrainingError(f"--clip-norm/--clip-value need a single replica; this "
                                f"strategy has {self._replicas}. Fix: drop the clipping flag "
                                "or --strategy.")
        self.loss_scale = getattr(optimizer, "dynamic_scale", None)  # LossScaleOptimizer only
        # One replica, whatever the strategy: an all-reduce over one replica is
        # the identity, so the whole multi-step loop is one XLA program (run
        # outside strategy.run; the optimizer updates the strategy's variables).
        self.fused = self._replicas == 1
        self.fused_chunk = tf.function(self._fused_chunk, jit_compile=bool(jit_compile))
        self.replicated = None
        if not self.fused:
            from .distributed import ReplicatedChunks
            self.replicated = ReplicatedChunks(self, jit_compile=jit_compile, guard=guard)
        self.evaluate_batch = tf.function(self._evaluate_batch, input_signature=[
            tf.TensorSpec([None, *model.input_shape[1:]], tf.float32),
            tf.TensorSpec([None], tf.int32)])

    def layer_squares(self, grads, scale):
        """Squared gradient L2 norm of every tracked layer (``[0]`` when not tracking)."""
        import tensorflow as tf

        if not self.layer_names:
            return tf.zeros([0])
        sq = tf.stack([tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in grads])
        layer_sq = tf.linalg.matvec(tf.constant(self._group), sq)
        if scale is not None:  # float16 loss scaling: report the true gradient
            layer_sq = layer_sq / tf.square(tf.cast(scale, tf.float32))
        return layer_sq

    def _clip(self, grads, scale):
        """``(gradients to apply, [raw global norm², applied global norm²])``.

        The thresholds apply to the true gradient: under float16 loss scaling the
        gradients are still multiplied by ``scale`` here (the optimizer divides later).
        """
        import tensorflow as tf

        unscale = tf.constant(1.0) if scale is None else tf.cast(scale, tf.float32)
        raw = tf.linalg.global_norm(grads) / unscale
        if self.clip_value is not None:
            limit = self.clip_value * unscale
            grads = [tf.clip_by_value(g, -limit, limit) for g in grads]
        else:
            grads, _ = tf.clip_by_global_norm(grads, self.clip_norm * unscale)
        applied = tf.linalg.global_norm(grads) / unscale
        return grads, tf.stack([tf.square(raw), tf.square(applied)])

    def _replica_step(self, x, y):
        """One optimizer step on this replica's batch: ``(sum_loss, correct, count, layer_sq)``."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            probs, sum_loss = summed_loss(self.model, x, y, training=True)
            count = tf.cast(tf.shape(y)[0], tf.float32)
            loss = sum_loss / count
            if self.model.losses:
                loss += penalty(self.model)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.variables)
        # Read before apply(): a LossScaleOptimizer may change its scale there.
        scale = None if self.loss_scale is None else tf.identity(self.loss_scale.value)
        layer_sq = self.layer_squares(grads, scale)  # the raw gradient, before any clipping
        if self._clipping:
            grads, clip_sq = self._clip(grads, scale)
            layer_sq = tf.concat([layer_sq, clip_sq], 0)
        self.optimizer.apply(grads, self.variables)
        return sum_loss, correct_count(probs, y), count, layer_sq

    def _fused_chunk(self, x_all, y_all, idx, n):
        """Up to idx.shape[0] steps in one call: batches gathered in-graph, no tf.data."""
        import tensorflow as tf

        size = idx.shape[0]

        def body(i, losses, corrects, norm_sum):
            s_loss, s_correct, s_count, s_sq = self._replica_step(gather_images(x_all, idx[i]),
                                                                  tf.gather(y_all, idx[i]))
            return (i + 1, losses.write(i, s_loss / s_count), corrects.write(i, s_correct),
                    norm_sum + tf.sqrt(s_sq))

        # An explicit while_loop with a static maximum keeps ``n`` a runtime value:
        # one XLA compile serves every chunk length.
        _, losses, corrects, norm_sum = tf.while_loop(
            lambda i, *_: i < n, body,
            (tf.constant(0), tf.TensorArray(tf.float32, size=size),
             tf.TensorArray(tf.float32, size=size), tf.zeros([len(self.norm_names)])),
            maximum_iterations=size)
        return losses.stack(), corrects.stack(), norm_sum

    def _evaluate_batch(self, x, y):
        """``(sum of losses, number correct)`` of one evaluation batch."""
        probs, loss = summed_loss(self.model, x, y, training=False)
        return loss, correct_count(probs, y)

    def epoch_chunks(self, bundle, epoch: int, batch_size: int, steps_per_execution: int,
                     start: int = 0, every: int | None = None):
        """Run epoch ``epoch`` in compiled chunks from step ``start`` (chunks end at
        multiples of ``every``, see :func:`epoch_blocks`); yield per chunk numpy
        ``(losses[n], corrects[n], counts[n], layer_norm_sums)`` so the caller can
        stop, log, checkpoint or detect divergence between chunks."""
        import tensorflow as tf

        if not self.fused:
            yield from self.replicated.epoch_chunks(bundle, epoch, batch_size,
                                                    steps_per_execution, start, every)
            return
        blocks_iter = epoch_blocks(bundle, epoch, batch_size, steps_per_execution, start, every)
        for blocks, n, (x_all, y_all, rows) in _read_ahead(bundle, blocks_iter):
            losses, corrects, norms = self.fused_chunk(x_all, y_all, tf.constant(rows),
                                                       tf.constant(n))
            yield (losses.numpy()[:n], corrects.numpy()[:n],
                   np.full(n, blocks.shape[1], np.float32), norms.numpy())

    def evaluate(self, dataset) -> tuple[float, float]:
        """Mean loss and accuracy over a ``(x, y)`` dataset of batches."""
        total_loss = total_correct = total = 0.0
        for x, y in dataset:
            loss, correct = self.evaluate_batch(x, y)
            total_loss += float(loss)
            total_correct += float(correct)
            total += int(y.shape[0])
        return total_loss / max(total, 1), total_correct / max(total, 1)
