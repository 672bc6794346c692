"""Shared test set-up: quiet TensorFlow, make the repository root importable, and
build the emulated arm64 root once per session where a test asks for it."""
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Tests run two per core pair under xdist; one intra-op thread each keeps the
# machine from oversubscribing and makes float results reproducible.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope="session")
def arm64_root():
    """The emulated arm64 root of ``export verify --target aarch64``, built on
    first use and cached per machine (``tests._verify_helpers.arm64_root``)."""
    from tests._verify_helpers import arm64_root as build
    return build()
