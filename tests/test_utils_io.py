"""utils.io (issue 12 §3): a re-published directory is never missing or partial for a
reader, and the umask is read without being changed."""
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
    failures, polls = [], [0]

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
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
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
    # The current version and the one before it remain, nothing else (no .tmp, no .link).
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name != "out")
    assert len(hidden) == 2 and all(n.startswith(".out.") and n.endswith(".v") for n in hidden)
    assert os.readlink(out) in hidden


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


def test_replacing_a_plain_directory_keeps_it_as_the_previous_version(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "a.txt").write_text("old")
    with io.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("new")
    assert target.is_symlink() and (target / "a.txt").read_text() == "new"
    versions = [p for p in tmp_path.iterdir() if p.name != "d"]
    assert sorted((p / "a.txt").read_text() for p in versions) == ["new", "old"]
    with io.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("newer")
    # "old" is two publications back now: pruned.
    assert sorted((p / "a.txt").read_text() for p in tmp_path.iterdir() if p.name != "d") \
        == ["new", "newer"]


def test_remove_directory_removes_the_link_and_its_versions(tmp_path):
    target = tmp_path / "d"
    for text in ("1", "2", "3"):
        with io.atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text(text)
    (tmp_path / "keep.txt").write_text("not ours")
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
