"""``int8_fallback="auto"``: keep the fewest layers of an int8 TFLite model float
until its agreement with Keras reaches the int8 bound.

Greedy forward selection with the per-layer measurement of :mod:`export.explain`:
starting from the nodes the artifact keeps float anyway (the float head), each
step keeps float the one quantized op that buys the most agreement with Keras
on the calibration inputs, until that agreement reaches
:data:`export.validate.INT8_TOP1_BOUND`. At least one op stays int8 (LiteRT's
quantizer needs one); a model that misses the bound even so is refused. The exporter's validation then checks
the result on held-out data as for any int8 artifact.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from utils.tf_quiet import silenced_stderr_fd  # before keras: silences TF's start-up lines

from export.errors import ExportError
from export.validate import INT8_TOP1_BOUND


def keep_float_until_bound(converter, model, data, decision, float_nodes=()) -> tuple:
    """Re-quantize ``converter``'s model with the fewest extra nodes kept float.

    Args:
        converter: the int8 ``TFLiteConverter`` (optimizations, representative dataset).
        model: the export graph (the Keras reference).
        data: float32 ``[N, ...]`` inputs the agreement is measured on.
        decision: what the first output decides (``models.card.DECISIONS``).
        float_nodes: nodes already kept float (the float head).

    Returns:
        ``(tflite bytes, float nodes, facts)``; ``facts`` holds the nodes kept float
        by the fallback, the agreement reached and the samples it was measured on.

    Raises:
        ExportError: the bound is not reached even with every node kept float.
    """
    import tensorflow as tf

    if decision == "regression":
        raise ExportError("int8_fallback='auto' needs a per-sample decision to agree on; "
                          "the model card says 'regression'. Drop --int8-fallback.")
    from export.explain import agreement, debugger_rows, evaluation_subset
    from export.runtime import KerasRunner
    from export.runtime_tflite import TFLiteRunner
    x = evaluation_subset(data)
    reference = KerasRunner(model).run(x)[0]
    options = tf.lite.experimental.QuantizationDebugOptions
    with tempfile.TemporaryDirectory(prefix="export-fallback-") as scratch, \
            silenced_stderr_fd(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the debugger runs tf.lite.Interpreter (deprecated)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: iter([[x[:1]]]))
        debugger.run()
        layers = [r["tensor_name"] for r in debugger_rows(debugger)]

        def measure(kept):
            debugger.options = options(denylisted_nodes=sorted(kept))
            content = debugger.get_nondebug_quantized_model()
            path = Path(scratch) / "variant.tflite"
            path.write_bytes(content)
            return content, agreement(TFLiteRunner(path).run(x)[0], reference, decision)

        kept, added = set(float_nodes), []
        content, reached = measure(kept)
        while reached < INT8_TOP1_BOUND and len(kept) < len(layers) - 1:
            # Forward selection: the node whose float copy buys the most, given the
            # nodes kept so far (a float layer often pays only beside its neighbour).
            tried = {n: measure(kept | {n}) for n in layers if n not in kept}
            node = max(tried, key=lambda n: tried[n][1])
            kept.add(node)
            added.append(node)
            content, reached = tried[node]
    if reached < INT8_TOP1_BOUND:
        raise ExportError(f"int8_fallback='auto' kept all but one layer float and reached "
                          f"only {reached:.4f} agreement (bound {INT8_TOP1_BOUND}); export "
                          "float32 instead.")
    facts = {"kept_float": added, "agreement": round(reached, 6), "samples": int(len(x)),
             "bound": INT8_TOP1_BOUND}
    return content, sorted(kept), facts
