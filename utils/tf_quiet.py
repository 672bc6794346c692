"""Import TensorFlow without its C++ start-up chatter on stderr.

TensorFlow's CUDA stub logs "Could not find cuda drivers..." and an absl
warning straight to file descriptor 2 while the shared library loads, before
``TF_CPP_MIN_LOG_LEVEL`` is consulted. On a CPU machine these lines are
noise that breaks the "one line on stderr" promise of our command lines, so
the first import of TensorFlow runs with fd 2 pointed at /dev/null. Python
exceptions are unaffected: they propagate after stderr is restored.

Importing this module installs an import hook (:func:`install`): whenever
TensorFlow is first imported afterwards, directly or through keras, its import
is the quiet one. Nothing is imported before it is needed, so a command line
that refuses bad input in its first lines does not pay for TensorFlow.
Every command line goes through ``utils.cli.run_cli``, which installs it;
``import_tensorflow()`` imports TensorFlow at once for callers that want it.
Set ``ZOO_TF_VERBOSE=1`` to see TensorFlow's start-up lines.
"""
import importlib.abc
import os
import sys

from utils.stderr import silenced_stderr_fd

_PACKAGE = "tensorflow"


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's package ``__init__`` (and all it imports) with fd 2 silenced."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # the real one, for resources
        with silenced_stderr_fd():
            self.loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and wraps its loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _PACKAGE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Make TensorFlow's first import quiet, whenever it happens (idempotent)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if _PACKAGE not in sys.modules and not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


def import_tensorflow() -> None:
    """Import TensorFlow now, quietly."""
    install()
    import tensorflow  # noqa: F401


install()
