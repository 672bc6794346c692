"""evaluation.isolation: every way a child can end becomes a result or one typed error."""
import signal

import pytest

from evaluation.errors import (ArtifactCrashError, ArtifactError, EvaluationError,
                               ShapeMismatchError)
from evaluation.isolation import ChildError, call_isolated
from utils.cli import run_cli


def test_result_and_progress_come_back():
    import os

    seen = []
    result = call_isolated("tests._evaluate_helpers:child_echo",
                           {"value": [1, "two"], "progress": [3, 7, 10]}, on_progress=seen.append)
    assert result["echo"] == [1, "two"]
    assert result["pid"] != os.getpid()  # it really ran elsewhere
    assert seen == [3, 7, 10]


def test_segfault_becomes_a_one_line_crash_error():
    with pytest.raises(ArtifactCrashError) as info:
        call_isolated("tests._evaluate_helpers:child_segfault", {}, what="Artifact 'x.tflite'",
                      crash_hint="the file is corrupt or not a valid TFLite flatbuffer")
    message = str(info.value)
    assert message == (f"Artifact 'x.tflite' crashed its runtime (SIGSEGV, signal "
                       f"{int(signal.SIGSEGV)}): the file is corrupt or not a valid TFLite "
                       f"flatbuffer")
    assert isinstance(info.value, ValueError)  # -> one line + exit 2 at the command line


def test_segfault_at_the_command_line_is_exit_2_and_one_line(capsys):
    def main(argv):
        call_isolated("tests._evaluate_helpers:child_segfault", {}, what="Artifact 'x.tflite'")

    assert run_cli(main, [], prog="evaluate.py") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("evaluate.py: error: Artifact 'x.tflite' crashed its runtime (SIGSEGV")


def test_exit_without_result_names_the_last_stderr_line():
    with pytest.raises(ArtifactCrashError, match=r"exit status 3 and no result \(runtime gave up: "
                                                 r"out of cheese\)"):
        call_isolated("tests._evaluate_helpers:child_exit_without_result", {}, what="Artifact 'y'")


def test_our_error_classes_survive_the_process_boundary():
    with pytest.raises(ShapeMismatchError, match=r"\(None, 28, 28, 1\).*\(None, 32, 32, 1\)"):
        call_isolated("tests._evaluate_helpers:child_shape_error", {})


def test_other_user_errors_become_artifact_errors():
    with pytest.raises(ArtifactError, match="no such file: /nowhere"):
        call_isolated("tests._evaluate_helpers:child_file_error", {"path": "/nowhere"})


def test_a_bug_in_the_child_is_not_disguised_as_a_user_error():
    with pytest.raises(ChildError, match="RuntimeError: an internal bug") as info:
        call_isolated("tests._evaluate_helpers:child_bug", {})
    assert not isinstance(info.value, EvaluationError)
    assert "Traceback" in str(info.value)


def test_timeout_stops_the_child():
    with pytest.raises(ArtifactCrashError, match="did not finish within 0.01 s"):
        call_isolated("tests._evaluate_helpers:child_echo", {"value": 1, "progress": []},
                      timeout=0.01)
