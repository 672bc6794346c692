"""Model zoo: a registry of Keras model builders and the parameter audit.

Example:
    >>> import models
    >>> models.list_models("deep_mlp_*")
    >>> model = models.create_model("exam_mlp")          # 16,295 parameters
    >>> models.describe("exam_mlp")["params"]
    16295
    >>> models.learn(models.create_model("hopfield", units=64), patterns)  # own rule, no backprop
"""
import utils.tf_quiet  # noqa: F401  (before keras: silences TF's start-up lines)
from models._registry import (Family, ModelSpec, create_model, describe, list_models,
                              model_spec, register_model)
from models.card import DECISIONS, attach_card, model_card, update_card
from models.errors import (LearningRuleError, ModelCardError, ModelConfigError, ModelLoadError,
                           UnknownModelError)
from models.rules import learn

# Importing the family modules registers their builders.
from models import course, deep_mlp, lenet, mlp, perceptron  # noqa: E402,F401
from models import art, bam, bsb, hopfield, lvq, som  # noqa: E402,F401  (memory and competitive nets)
from models import boltzmann, rbf, rbm, recurrent  # noqa: E402,F401  (stochastic, RBF, LSTM)
from models.audit import Audit, AuditRow, audit  # noqa: E402
from models.boltzmann import anneal  # noqa: E402
from models.loading import load_model, resolve_model  # noqa: E402

__all__ = [
    "Audit", "AuditRow", "anneal", "audit", "learn", "load_model", "resolve_model",
    "Family", "ModelSpec", "LearningRuleError", "ModelCardError", "ModelConfigError",
    "ModelLoadError", "UnknownModelError", "DECISIONS", "attach_card", "model_card", "update_card",
    "create_model", "describe", "list_models", "model_spec", "register_model",
]
