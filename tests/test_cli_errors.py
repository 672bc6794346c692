"""The narrow error policy: only typed errors and OSErrors about the
user's paths are bad input (one line, exit 2); anything else is a bug of ours
(one "internal error" line, exit 1, the traceback with ZOO_DEBUG=1)."""
import errno
import importlib
import inspect

import pytest

from utils.cli import ArgumentParser, is_user_error, run_cli
from utils.errors import UsageError, ZooError

# The five command lines: (module with main, prog, argv missing an argument, argv with
# an invalid one, the prog named in the "see ... --help" hint of the invalid one).
COMMAND_LINES = [
    ("train", "train.py", None, ["--epochs", "many"], "train.py"),
    ("evaluate", "evaluate.py", [], ["m.keras", "--batch-size", "x"], "evaluate.py"),
    ("export.__main__", "python -m export", [], ["m.keras", "--out", "o", "--opset", "new"],
     "python -m export"),
    ("models.__main__", "python -m models", [], ["audit", "exam_mlp", "--format", "xml"],
     "python -m models audit"),
    ("activations.__main__", "python -m activations", [], ["lst"], "python -m activations"),
]
ERROR_MODULES = ["activations.errors", "models.errors", "data._errors", "training.errors",
                 "export.errors", "evaluation.errors", "utils.errors"]


def _run(module, prog, argv, capsys):
    code = run_cli(importlib.import_module(module).main, argv, prog=prog)
    out, err = capsys.readouterr()
    return code, err.strip().splitlines()


@pytest.mark.parametrize("module, prog, missing, invalid, hint_prog", COMMAND_LINES,
                         ids=[c[1] for c in COMMAND_LINES])
def test_bad_arguments_are_one_line_and_exit_2(module, prog, missing, invalid, hint_prog,
                                               capsys):
    cases = [invalid] + ([missing] if missing is not None else [])  # train.py needs no argument
    for argv in cases:
        code, err = _run(module, prog, argv, capsys)
        assert code == 2, (argv, err)
        assert len(err) == 1, err  # no usage block
        assert err[0].startswith(f"{prog}: error: "), err
        assert err[0].endswith(" --help)"), err
    code, err = _run(module, prog, invalid, capsys)
    assert err[0].endswith(f"(see {hint_prog} --help)"), err


def test_missing_subcommand_names_the_choices(capsys):
    code, err = _run("models.__main__", "python -m models", [], capsys)
    assert code == 2 and len(err) == 1
    assert "the following arguments are required: command" in err[0]


def test_every_typed_error_is_a_zoo_error_and_a_value_error():
    classes = []
    for name in ERROR_MODULES:
        module = importlib.import_module(name)
        classes += [c for _, c in inspect.getmembers(module, inspect.isclass)
                    if issubclass(c, BaseException) and c.__module__ == name]
    assert len(classes) >= 20
    for cls in classes:
        assert issubclass(cls, ZooError) and issubclass(cls, ValueError), cls


def test_a_bug_in_our_code_is_an_internal_error_not_bad_input(monkeypatch, capsys):
    # A genuine KeyError inside our code: the catalogue entry the table reads lost a key.
    import activations._registry as registry

    monkeypatch.delitem(registry._REGISTRY["sigmoid"].catalogue, "range")
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    code, err = _run("activations.__main__", "python -m activations", ["list"], capsys)
    assert code == 1
    assert len(err) == 1, err
    assert err[0].startswith("python -m activations: internal error: KeyError: range")
    assert "ZOO_DEBUG=1" in err[0] and "not in your input" in err[0]

    monkeypatch.setenv("ZOO_DEBUG", "1")
    code, err = _run("activations.__main__", "python -m activations", ["list"], capsys)
    assert code == 1
    assert err[0] == "Traceback (most recent call last):"
    assert any("catalogue.py" in line for line in err)  # where the bug is
    assert err[-1].startswith("python -m activations: internal error: KeyError: range")


def test_oserrors_about_paths_are_bad_input_others_are_bugs():
    assert is_user_error(FileNotFoundError("No such model file: m.keras"))
    assert is_user_error(PermissionError(errno.EACCES, "Permission denied", "/root/out"))
    assert is_user_error(OSError(errno.ENOSPC, "No space left on device"))  # full --out
    assert is_user_error(OSError(errno.EROFS, "Read-only file system", "/ro/out"))
    assert not is_user_error(ConnectionResetError(errno.ECONNRESET, "Connection reset"))
    assert not is_user_error(TimeoutError("collective timed out"))
    assert not is_user_error(OSError("something inside a runtime"))
    for bug in (KeyError("format"), TypeError("x"), ValueError("bare"), ImportError("onnx"),
                RuntimeError("x"), AttributeError("x")):
        assert not is_user_error(bug), bug
    assert is_user_error(UsageError("--epochs: invalid int value"))


def test_full_disk_is_one_line_exit_2(capsys):
    def main(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/model.keras")

    assert run_cli(main, [], prog="train.py") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["train.py: error: No space left on device: runs/x/model.keras (the output "
                   "location is full: free space there or choose another one)"]


def test_help_still_exits_0_and_documents_the_exit_statuses(capsys):
    parser = ArgumentParser(prog="p")
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "2 bad input" in out and "1 internal error" in out and "ZOO_DEBUG=1" in out


def test_a_bug_in_an_isolated_child_is_an_internal_error(capsys):
    # A genuine KeyError in our child-side code (an empty payload), across the
    # process boundary: a bug, not "error: <key>" with exit 2 as it used to be.
    from evaluation.isolation import ChildError, call_isolated

    def main(argv):
        call_isolated("evaluation.execute:run_artifact", {}, what="Artifact 'x'")

    with pytest.raises(ChildError, match=r"KeyError: (inputs|path)[\s\S]*Traceback"):
        main([])
    assert run_cli(main, [], prog="evaluate.py") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "evaluate.py: internal error: ChildError: Artifact 'x' failed with KeyError: "), err
