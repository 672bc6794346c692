"""Typed dataset errors: every one is a ``utils.errors.ZooError`` the CLI turns into one line."""
from __future__ import annotations

from utils.errors import ZooError


class DatasetError(ZooError):
    """A dataset could not be loaded; the message says why and how to fix it."""


class UnknownDatasetError(DatasetError):
    """The dataset name is neither registered, a tfds name, nor a folder."""


class DatasetNotInstalledError(DatasetError):
    """The dataset needs a package that is not installed on this machine."""


class CorruptDatasetError(DatasetError):
    """A data file or folder exists but cannot be read as images + labels."""


class NonFiniteDataError(DatasetError):
    """The images contain NaN or infinite values."""
