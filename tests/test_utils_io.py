"""utils.io: a re-published directory stays a plain directory that is never missing
or partial for a reader, and the umask is read without being changed."""
import builtins
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from utils import io


@pytest.mark.slow
def test_a_reader_never_sees_a_missing_or_partial_export(tmp_path, monkeypatch):
    # 20 real re-exports (two different models, alternating, so that files of two
    # versions would not verify against one manifest) while a reader polls. Besides
    # the polling thread, which sees whatever the scheduler lets it see, the same
    # reading runs after every rename the writer makes: a moment where the export
    # is missing (the old two-rename swap) cannot slip between two polls.
    import shutil

    import export
    from export import manifest as manifest_io
    from tests._export_helpers import tiny_model

    out = tmp_path / "out"
    built = [tiny_model(seed=0), tiny_model(seed=1)]
    export.export_model(built[1], out, formats=("saved_model",))
    failures, polls, replaced = [], [0], [0]

    def read_once():
        try:
            # Pin one version (open the directory once), then read all of it:
            # manifest and every artifact, SavedModel directories file by file.
            fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            failures.append(f"missing: {exc}")
            return
        try:
            pinned = Path(f"/proc/self/fd/{fd}")
            manifest = manifest_io.read(pinned)
            for entry in manifest["artifacts"]:
                manifest_io.verify(manifest_io.artifact_path(pinned, entry), entry)
            polls[0] += 1
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            if os.fstat(fd).st_ino != os.stat(out).st_ino:
                replaced[0] += 1  # the pinned version was replaced (and is being deleted): reopen
                os.close(fd)
                return read_once()
            failures.append(f"{type(exc).__name__}: {exc}")
        os.close(fd)

    for module, name in ((os, "replace"), (os, "rename"), (shutil, "rmtree")):
        def after(*args, _real=getattr(module, name), **kwargs):
            result = _real(*args, **kwargs)
            read_once()
            return result
        monkeypatch.setattr(module, name, after)

    done = threading.Event()

    def reader():
        while not done.is_set():
            read_once()
            time.sleep(0.001)  # poll, do not spin: the writer needs the CPU

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(20):
            export.export_model(built[i % 2], out, formats=("saved_model",), validate=False)
    finally:
        done.set()
        thread.join()
    monkeypatch.undo()
    assert failures == []
    assert polls[0] >= 100, polls  # ~ a dozen renames per export, plus the thread
    # A plain directory, nothing beside it (no .tmp, no old version, no link).
    assert out.is_dir() and not out.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_first_publication_is_a_plain_directory_and_a_failure_changes_nothing(tmp_path):
    target = tmp_path / "d"
    with io.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert target.is_dir() and not target.is_symlink()
    with pytest.raises(RuntimeError):
        with io.atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("two")
            raise RuntimeError("half way")
    assert (target / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_replacing_a_directory_keeps_it_plain_with_nothing_beside_it(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "a.txt").write_text("old")
    for text in ("new", "newer"):
        with io.atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text(text)
        assert target.is_dir() and not target.is_symlink()
        assert (target / "a.txt").read_text() == text
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_exports_into_an_empty_temporary_directory_leave_it_plain(tmp_path):
    import tempfile

    import export
    from tests._export_helpers import tiny_model

    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        out = Path(work) / "out"
        out.mkdir()
        for seed in range(3):
            export.export_model(tiny_model(seed=seed), out, formats=("onnx",), validate=False)
            assert out.is_dir() and not out.is_symlink()
            assert sorted(p.name for p in Path(work).iterdir()) == ["out"]
            assert (out / "manifest.json").is_file()
    assert list(tmp_path.iterdir()) == []  # the context manager cleaned up


def test_a_link_from_an_earlier_release_becomes_a_plain_directory(tmp_path):
    target = tmp_path / "d"
    version = tmp_path / ".d.abc.v"
    version.mkdir()
    (version / "a.txt").write_text("old")
    target.symlink_to(version.name)
    with io.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("new")
    assert target.is_dir() and not target.is_symlink()
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_without_rename_exchange_two_renames_publish_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    target = tmp_path / "d"
    for text in ("one", "two"):
        with io.atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text(text)
    assert (target / "a.txt").read_text() == "two" and not target.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_remove_directory_removes_a_plain_directory_or_an_old_link_and_its_versions(tmp_path):
    target = tmp_path / "d"
    with io.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("1")
    (tmp_path / "keep.txt").write_text("not ours")
    io.remove_directory(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    version = tmp_path / ".d.abc.v"
    version.mkdir()
    target.symlink_to(version.name)
    io.remove_directory(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    io.remove_directory(target)  # already gone: fine


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_umask_is_read_without_being_changed(mask, monkeypatch):
    old = os.umask(mask)
    try:
        calls = []
        real_umask = os.umask
        monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real_umask(m))
        assert io._umask() == mask
        assert calls == []  # never set, so no other thread can see a umask of 0

        # Without /proc: measured from a probe directory, still never set.
        real_open = builtins.open

        def no_proc(file, *args, **kwargs):
            if str(file).startswith("/proc/"):
                raise FileNotFoundError(file)
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", no_proc)
        assert io._umask() == mask
        assert calls == []
    finally:
        monkeypatch.undo()
        os.umask(old)


def test_published_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = io.atomic_write_text(tmp_path / "f.txt", "x")
        with io.atomic_directory(tmp_path / "d") as tmp:
            (tmp / "g").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o750
