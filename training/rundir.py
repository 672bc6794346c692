"""The run directory policy: what a run writes, and when ``--out`` may be used.

A run directory belongs to one run. A new run refuses a directory that holds
one (``--resume`` continues it, ``--overwrite`` replaces it, deleting only the
files listed here); ``--resume`` needs its ``config.json``. Every check happens
before any slow work, so bad input costs nothing and damages nothing: the run
that ``--overwrite`` replaces is deleted only when the new run writes its first
file, after the data has loaded and the model has been built.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from utils.io import atomic_write_json, remove_directory

from .config import TrainConfig
from .errors import RunDirectoryError

# Everything a run writes into its directory; --overwrite removes exactly these.
RUN_FILES = ("model.keras", "config.json", "history.json", "history.csv", "summary.json",
             "audit.md", "audit.json", "curves.png", "gradient_norms.png")
RUN_DIRS = ("checkpoints", "tensorboard", "export", "plots")


@dataclasses.dataclass
class RunDir:
    """A checked run directory and what this process may write there.

    Attributes:
        path: the directory.
        chief: this process writes it (False on the other workers of a cluster).
        resume: continue the run from its last checkpoint.
        config_pending: ``config.json`` must still be written: a new run writes
            it before its first epoch; a resume that changed the config (more
            epochs) writes it with its first new checkpoint, so an interrupted
            continuation leaves the finished run exactly as it was.
        replaces: the directory holds a run that ``--overwrite`` replaces; it is
            deleted by the first :meth:`write_config`, so a new run that fails
            on its data or model first leaves the old one as it was.
    """
    path: Path
    chief: bool = True
    resume: bool = False
    config_pending: bool = False
    replaces: bool = False

    def write_config(self, config: TrainConfig, paths: dict) -> None:
        """Write ``config.json`` if it is pending (and this process is the chief),
        after deleting the run this one replaces."""
        if self.replaces and self.chief:
            remove_run(self.path)
        self.replaces = False
        if self.config_pending and self.chief:
            paths["config"] = atomic_write_json(self.path / "config.json", config.to_dict())
        self.config_pending = False


def remove_run(run_dir: Path) -> None:
    """Delete the files and directories a run wrote (and nothing else) from ``run_dir``."""
    for name in RUN_DIRS:
        remove_directory(run_dir / name)  # also a link left by an earlier release
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


def _saved(run_dir: Path, fix: str) -> TrainConfig:
    """The saved config of the run in ``run_dir``."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise RunDirectoryError(f"Nothing to resume in {str(run_dir)!r} (no config.json). {fix}")
    return TrainConfig.load(config_path)


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirectoryError(f"Output directory {str(run_dir)!r} is not writable "
                                f"({exc.strerror or exc}). Fix: choose another --out.") from exc


def prepare_run_dir(config: TrainConfig, resume: bool, overwrite: bool = False,
                    chief: bool = True) -> tuple[Path, TrainConfig | None, bool]:
    """Check ``config.out`` before any work.

    Returns:
        ``(directory, saved config (resume only), whether it holds a run that
        --overwrite replaces)``; nothing is deleted here (see :class:`RunDir`).

    A non-chief worker of a cluster only reads: it must never delete or create
    files that the chief (possibly on a shared filesystem, at the same moment)
    is writing.

    Whether ``config`` may continue the saved run is
    :meth:`TrainConfig.resumed_from`'s decision.

    Raises:
        RunDirectoryError: unwritable; holds a run and neither ``resume`` nor
            ``overwrite``; nothing to resume.
    """
    run_dir = Path(config.out)
    if not chief:
        if not resume:
            return run_dir, None, False
        return run_dir, _saved(run_dir, (
            "Fix: every worker must see the chief's run directory (a shared filesystem) to "
            "--resume; otherwise start a new run.")), False
    _check_writable(run_dir)
    if resume:
        return run_dir, _saved(run_dir, "Fix: drop --resume to start a new run."), False
    held = (run_dir / "config.json").is_file()
    if held and not overwrite:
        raise RunDirectoryError(f"{str(run_dir)!r} already holds a run (config.json). Fix: "
                                "pass --resume to continue it, --overwrite to replace it, or "
                                "choose another --out.")
    return run_dir, None, held
