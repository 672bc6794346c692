"""Atomic file and directory writes.

Every output of the project (checkpoint, model, export, report) is written to
a temporary name in the same directory and ``os.replace``-d into place, so a
reader only ever sees the old good state or the new good state.

A new directory appears with one rename; an existing one is swapped with
its replacement in one step (Linux ``renameat2(RENAME_EXCHANGE)``, see
:func:`atomic_directory`), so ``NAME`` stays a plain directory that never
goes missing and always holds one complete version.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

_VERSION_SUFFIX = ".v"


def _umask() -> int:
    """The process umask, read without changing it.

    ``os.umask`` can only be read by setting it, which races with threads
    creating files meanwhile; Linux reports it in ``/proc/self/status``.
    Elsewhere the umask is measured from a probe directory's mode.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with tempfile.TemporaryDirectory(prefix=".umask-probe-") as tmp:
        probe = os.path.join(tmp, "probe")
        os.mkdir(probe, 0o777)  # the kernel applies the umask, and only the umask
        return 0o777 & ~stat.S_IMODE(os.stat(probe).st_mode)


def _publish_mode(path: Path, directory: bool = False) -> None:
    """Give a temp file/dir the mode a plain open()/mkdir() would have.

    mkstemp/mkdtemp create 0600/0700 entries; outputs that other users, a
    web server or a device-flashing tool read should follow the umask.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _check_writable_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise PermissionError(
            f"Directory is not writable: {directory}. Choose another output path."
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``path``; move it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.

    Example:
        >>> with atomic_path("model.keras", suffix=".keras") as tmp:
        ...     model.save(tmp)
    """
    path = Path(path)
    _check_writable_dir(path.parent)
    # The suffix matters to writers that dispatch on it (Keras wants ".keras").
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            _publish_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsync'd temp file + rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    kwargs.setdefault("indent", 2)
    return atomic_write_text(path, json.dumps(obj, **kwargs) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike):
    """Yield a fresh temporary directory beside ``path``; publish it there on success.

    On success the directory appears at ``path`` in one atomic step and stays a
    plain directory (no symbolic link, no version folders beside it): a new
    ``path`` is renamed into place; an existing one is swapped with the new
    directory by Linux's ``renameat2(RENAME_EXCHANGE)``, and the old one is then
    deleted. A reader that opens ``path`` never finds it missing or
    half-written, only the old or the new directory. Where RENAME_EXCHANGE is
    unavailable (not Linux, or a file system without it) the old directory is
    renamed away first and the new one renamed into place: two renames, with a
    short moment in which ``path`` is missing. A ``path`` that is a symbolic
    link to a version folder (the layout of earlier releases) is replaced the
    same way and its version folders are deleted. On failure the temporary
    directory is deleted and ``path`` is left exactly as it was.

    A reader that needs several files of one version pins it: it opens the
    directory once and reads relative to that descriptor (``dir_fd=``, or
    ``/proc/self/fd/N/...``); reading ``path/a`` then ``path/b`` may straddle
    a publication and mix two complete versions. A pinned version that a
    publication replaced is deleted under the reader: when a read fails and
    ``os.fstat(fd).st_ino`` is no longer ``os.stat(path).st_ino``, the reader
    opens ``path`` again.

    Example:
        >>> with atomic_directory("exports/exam") as tmp:
        ...     (tmp / "manifest.json").write_text("{}")
    """
    path = Path(path)
    _check_writable_dir(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish_mode(tmp, directory=True)
    if not os.path.lexists(path):
        try:
            os.rename(tmp, path)  # a new directory: one rename
            return
        except OSError:
            if not os.path.lexists(path):
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            # Another writer created it meanwhile: exchange with theirs instead.
    legacy = _versions(path) if path.is_symlink() else []
    try:
        if not _exchange(tmp, path):
            parked = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rmdir(parked)
            os.replace(path, parked)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(parked, path)  # put the old directory back
                raise
            tmp = parked
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # `tmp` now names the old directory (or the old link): delete it.
    if tmp.is_symlink():
        os.unlink(tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    for version in legacy:
        shutil.rmtree(version, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where unsupported."""
    try:
        import ctypes

        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _versions(path: Path) -> list[Path]:
    prefix = f".{path.name}."
    if not path.parent.is_dir():
        return []
    return [p for p in path.parent.iterdir() if p.name.startswith(prefix)
            and p.name.endswith(_VERSION_SUFFIX) and p.is_dir() and not p.is_symlink()]


def remove_directory(path: str | os.PathLike) -> None:
    """Delete a directory written by :func:`atomic_directory`: a plain directory, or
    a link to version folders from earlier releases (link and versions); a
    missing ``path`` is fine."""
    path = Path(path)
    if path.is_symlink():
        os.unlink(path)
        for version in _versions(path):
            shutil.rmtree(version, ignore_errors=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
