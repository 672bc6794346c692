"""Atomic file and directory writes.

Every output of the project (checkpoint, model, export, report) is written to
a temporary name in the same directory and ``os.replace``-d into place, so a
reader only ever sees the old good state or the new good state.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    """Yield a fresh temporary directory beside ``path``; swap it in on success.

    The old directory (if any) is replaced only after the block finished
    without an exception; on failure the temporary directory is deleted and
    the old one is left exactly as it was.
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
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.rmdir(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
