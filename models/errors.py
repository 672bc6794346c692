"""Typed errors of the models package (``utils.errors.ZooError`` subclasses, so the
command lines turn them into one line and exit status 2)."""
from utils.errors import ModelLoadError, ZooError  # noqa: F401  (one class, shared)


class ModelError(ZooError):
    """Base class: a model request that cannot be carried out."""


class UnknownModelError(ModelError):
    """Raised for a model name that is not registered."""


class ModelConfigError(ModelError):
    """Raised for an unknown override or an invalid configuration value."""


class LearningRuleError(ModelError):
    """Raised for a model without a learning rule, bad rule parameters or bad data."""


class ModelCardError(ModelError):
    """Raised for a model card that is malformed or does not fit its model."""
