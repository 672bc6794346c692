"""The TensorFlow runners behind :class:`export.runtime.Runner`: a Keras model
(in memory or a ``.keras`` file, loaded by the project's one safe loader) and
the ``serving_default`` signature of a SavedModel. TensorFlow is imported only
when one of them is made."""
from __future__ import annotations

from export.errors import ModelLoadError
from export.runtime import SIGNATURE_KEY, Runner, _load_error, _spec, natural_key


def load_keras_model(path, *, safe_mode: bool = True):
    """Load a ``.keras`` file for inference with the project's one safe loader.

    This is ``models.loading.load_model(path, compile=False)``: archive checks,
    ``safe_mode=True``, Lambda layers refused, our layers registered.

    Raises:
        ModelLoadError: as for ``models.loading.load_model``.
    """
    from models.loading import load_model
    return load_model(path, compile=False, safe_mode=safe_mode)


class KerasRunner(Runner):
    """Runs a ``keras.Model`` (in memory or loaded from a ``.keras`` file)."""

    kind = "keras"

    def __init__(self, path_or_model, num_threads=None, *, safe_mode: bool = True):
        import keras
        if isinstance(path_or_model, keras.Model):
            self.model = path_or_model
            super().__init__(getattr(path_or_model, "name", "<in-memory>"))
        else:
            super().__init__(path_or_model)
            self.model = load_keras_model(path_or_model, safe_mode=safe_mode)
        _set_tf_threads(num_threads)
        self.input_spec = [_spec(t.name, t.shape, t.dtype) for t in self.model.inputs]
        self.output_spec = [_spec(f"output_{i}", t.shape, t.dtype)
                            for i, t in enumerate(self.model.outputs)]
        self._fn = None

    def _run(self, arrays):
        import tensorflow as tf
        if self._fn is None:
            # A traced function is what a deployed Keras model runs; eager
            # __call__ would add per-layer Python overhead to every benchmark.
            model = self.model
            # One trace for every batch size (a signature with batch None).
            specs = [tf.TensorSpec([None] + list(t.shape[1:]), t.dtype)
                     for t in model.inputs]
            self._fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0],
                                                     training=False),
                                   input_signature=specs)
        import keras
        out = self._fn(*[tf.constant(a) for a in arrays])
        return [o.numpy() for o in keras.tree.flatten(out)]


def _set_tf_threads(num_threads):
    """Best effort: TF fixes its thread pools at first use, later calls fail."""
    if not num_threads:
        return
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(num_threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


class SavedModelRunner(Runner):
    """Runs the ``serving_default`` signature of a SavedModel with TensorFlow."""

    kind = "saved_model"

    def __init__(self, path, num_threads=None):
        super().__init__(path)
        import tensorflow as tf
        _set_tf_threads(num_threads)
        try:
            self._obj = tf.saved_model.load(str(path))
        except Exception as exc:  # noqa: BLE001 - TF raises DecodeError, OpError, ... on a bad file
            raise _load_error("TensorFlow", path, exc) from exc
        if SIGNATURE_KEY not in self._obj.signatures:
            raise ModelLoadError(
                f"SavedModel {str(path)!r} has no {SIGNATURE_KEY!r} signature "
                f"(has: {sorted(self._obj.signatures)}).")
        self._fn = self._obj.signatures[SIGNATURE_KEY]
        ins = self._fn.structured_input_signature[1]
        self._in_names = sorted(ins, key=natural_key)
        self.input_spec = [_spec(n, ins[n].shape, ins[n].dtype.as_numpy_dtype)
                           for n in self._in_names]
        outs = self._fn.structured_outputs
        self._out_names = sorted(outs, key=natural_key)
        self.output_spec = [_spec(n, outs[n].shape, outs[n].dtype.as_numpy_dtype)
                            for n in self._out_names]

    def _run(self, arrays):
        import tensorflow as tf
        try:
            result = self._fn(**{n: tf.constant(a) for n, a in zip(self._in_names, arrays)})
        except tf.errors.OpError as exc:  # corrupt variables surface when the graph runs
            raise _load_error("TensorFlow", self.path, exc, doing="run") from exc
        return [result[n].numpy() for n in self._out_names]
