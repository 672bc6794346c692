"""Typed errors of the models package (all ValueError subclasses, so the CLI
turns them into one line and exit status 2)."""


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


class ModelConfigError(ValueError):
    """Raised for an unknown override or an invalid configuration value."""


class ModelLoadError(ValueError):
    """Raised when a file cannot be loaded safely as a Keras model."""


class LearningRuleError(ValueError):
    """Raised for a model without a learning rule, bad rule parameters or bad data."""
