"""The emulated aarch64 machine that ``python -m export verify --target aarch64`` runs on.

An arm64 Debian root (``debootstrap --foreign``: the packages are unpacked, no
arm64 code runs while building) with the aarch64 wheels of this environment's
own LiteRT, onnxruntime and numpy unpacked into ``/opt/zoo/site``. It is built
once per machine by ``python -m export verify --build-root`` and cached under
the user's cache directory (``$ZOO_CACHE``, else ``$XDG_CACHE_HOME/zoo``, else
``~/.cache/zoo``). Everything comes from Debian and PyPI; nothing is committed.

Programs run in it through ``qemu-aarch64-static`` with ``QEMU_LD_PREFIX``
pointing at the root: QEMU looks every absolute path up in the root first and
falls back to the host's, so the artifacts and the worker's files are read
where they are. No binfmt registration and no chroot are needed.

QEMU 7.2 shows the host's x86 ``/proc/cpuinfo`` to the guest, and XNNPACK then
crashes or silently stays off. :func:`emulated` therefore runs each program in
a *view* of the root, a temporary directory of links to the root's top-level
directories plus a ``proc/cpuinfo`` that describes the emulated CPU
(``QEMU_CPU``), so the CPU the kernels detect is the CPU QEMU emulates.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

from export.errors import ExportError

ROOT_NAME = "aarch64-root"
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"  # bookworm's python3 is 3.11
SITE = "/opt/zoo/site"      # where the wheels are unpacked, as the guest sees it
PYTHON = "/usr/bin/python3.11"
# The host packages whose aarch64 builds the root holds, at the host's versions.
RUNTIMES = ("ai-edge-litert", "onnxruntime", "numpy")
# Every manylinux tag that bookworm's glibc 2.36 runs (LiteRT publishes 2_27 wheels).
WHEEL_PLATFORMS = ("manylinux2014_aarch64", *(f"manylinux_2_{n}_aarch64" for n in range(17, 37)))
APT_PACKAGES = {"qemu-aarch64-static": "qemu-user-static", "debootstrap": "debootstrap",
                "dpkg-deb": "dpkg"}
QEMU = "qemu-aarch64-static"
# Emulated CPUs: QEMU's name -> the /proc/cpuinfo a real one shows (MIDR part
# and the Features line of its kernel). "max" is QEMU's CPU with every feature
# it emulates (SVE, SME, i8mm): no real device, and under QEMU 7.2 XNNPACK's
# int8 kernels compute wrong results on it, so a verification there must fail.
CPUS = {
    "cortex-a53": ("0xd03", "4", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a72": ("0xd08", "3", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a76": ("0xd0b", "1", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
                   "asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
    "max": ("0xd0b", "1", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
            "cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm "
            "dit uscat ilrcpc flagm ssbs sb paca pacg dcpodp sve2 sveaes svepmull svebitperm "
            "svesha3 svesm4 flagm2 frint svei8mm svebf16 i8mm bf16 dgh bti mte sme"),
}
DEFAULT_CPU = "cortex-a72"
# Guest paths that stay the host's in a view: the kernel's own, and scratch space.
_HOST_DIRS = ("proc", "sys", "dev", "tmp", "run", "debootstrap")


class PrerequisiteError(ExportError):
    """Something the emulated target needs is missing on this machine (named, with the fix)."""


def cache_dir() -> Path:
    """The per-user cache directory of the project."""
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo"


def root_dir() -> Path:
    return cache_dir() / ROOT_NAME


def wanted_stamp() -> dict:
    """What a root built for this environment records (``opt/zoo/stamp.json``)."""
    return {"suite": SUITE, "python": PYTHON,
            "wheels": [f"{name}=={version(name)}" for name in RUNTIMES]}


def _stamp_path(root: Path) -> Path:
    return root / "opt" / "zoo" / "stamp.json"


def root_is_current(root: Path | None = None) -> bool:
    stamp = _stamp_path(root or root_dir())
    try:
        return json.loads(stamp.read_text()) == wanted_stamp()
    except (OSError, ValueError):
        return False


def missing_tools() -> list[str]:
    """The Debian packages to install for building and running the root."""
    return sorted({pkg for tool, pkg in APT_PACKAGES.items() if shutil.which(tool) is None})


def check_qemu() -> str:
    """The path of ``qemu-aarch64-static``.

    Raises:
        PrerequisiteError: it is not installed (names the package).
    """
    path = shutil.which(QEMU)
    if path is None:
        raise PrerequisiteError(f"{QEMU} not found: install it with `apt-get install "
                                "qemu-user-static` (Debian/Ubuntu), then retry.")
    return path


def require_root() -> Path:
    """The built root, ready to run.

    Raises:
        PrerequisiteError: no QEMU, or no current root (names the build command).
    """
    check_qemu()
    root = root_dir()
    if not root_is_current(root):
        state = "is out of date" if root.exists() else "is not built"
        raise PrerequisiteError(f"The arm64 root {root} {state}: build it once with "
                                "`python -m export verify --build-root` (about 5 minutes, "
                                "needs Debian's mirror and PyPI).")
    return root


def _run(argv, what: str, log) -> None:
    log(f"  {what}")
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise PrerequisiteError(f"{what} failed (exit {proc.returncode}): "
                                f"{lines[-1] if lines else 'no output'}")


def _check_tools(install: bool) -> None:
    """Raise, before anything is written, when a missing tool cannot be installed here."""
    missing = missing_tools()
    if missing and (not install or os.geteuid() != 0 or shutil.which("apt-get") is None):
        raise PrerequisiteError(f"Missing {', '.join(missing)}: install with `apt-get install "
                                f"{' '.join(missing)}` (Debian/Ubuntu), then retry.")
    if os.geteuid() != 0:
        raise PrerequisiteError("Building the arm64 root runs debootstrap, which needs "
                                "root: run `python -m export verify --build-root` as root.")


def _install_tools(log) -> None:
    missing = missing_tools()
    if missing:  # a fresh machine may have no package lists yet
        _run(["apt-get", "update", "-q"], "apt-get update", log)
        _run(["apt-get", "install", "-y", "-q", *missing],
             f"apt-get install {' '.join(missing)}", log)


def _unpack_wheels(wheels: Path, site: Path) -> None:
    """Unpack every wheel of ``wheels`` into ``site`` (what pip would install, minus scripts)."""
    site.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                target = site / member
                if not target.resolve().is_relative_to(site.resolve()):
                    raise PrerequisiteError(f"{wheel.name} has a member outside its site: "
                                            f"{member!r}; refused.")
            archive.extractall(site)
        for data in site.glob("*.data"):  # purelib/platlib belong to site itself
            for lib in ("purelib", "platlib"):
                if (data / lib).is_dir():
                    shutil.copytree(data / lib, site, dirs_exist_ok=True)
            shutil.rmtree(data)


def build_root(*, install: bool = False, log=print) -> Path:
    """Build the arm64 root once (a no-op when a current one is cached and
    QEMU is installed).

    Args:
        install: apt-get install a missing qemu-user-static / debootstrap
            (as root only); otherwise a missing one is a :class:`PrerequisiteError`.
        log: called with one line per step.

    Returns:
        The root's path.

    Raises:
        PrerequisiteError: a missing tool, not root, or a failed download; raised
            before anything is written where the cause is known in advance.
    """
    root = root_dir()
    if root_is_current(root) and shutil.which(QEMU):  # all that running it needs
        return root
    _check_tools(install)
    root.parent.mkdir(parents=True, exist_ok=True)
    # One builder per machine (pytest-xdist workers, two shells): the others wait
    # here, then find the root current; apt-get, too, runs only under the lock.
    with open(root.parent / f".{ROOT_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install_tools(log)
        if root_is_current(root):
            return root
        tmp = Path(tempfile.mkdtemp(prefix=f".{ROOT_NAME}.build-", dir=root.parent))
        try:
            log(f"building the arm64 root {root}")
            _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
                  "--include=python3", SUITE, str(tmp), MIRROR],
                 f"debootstrap --foreign --arch=arm64 {SUITE}", log)
            # The first stage unpacks only the essential packages; python3 and its
            # libraries are downloaded for a second stage, which would run arm64
            # code. Unpacking them on the host is all a Python needs.
            for deb in sorted((tmp / "var" / "cache" / "apt" / "archives").glob("*.deb")):
                _run(["dpkg-deb", "-x", str(deb), str(tmp)], f"unpack {deb.name}", lambda _: None)
            wheels = root.parent / "aarch64-wheels"
            _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
                  *[f"--platform={p}" for p in WHEEL_PLATFORMS], "-d", str(wheels),
                  *wanted_stamp()["wheels"]], "pip download the aarch64 wheels", log)
            _unpack_wheels(wheels, tmp / SITE.lstrip("/"))
            shutil.rmtree(tmp / "var" / "cache" / "apt" / "archives", ignore_errors=True)
            _stamp_path(tmp).write_text(json.dumps(wanted_stamp()))
            _smoke_test(tmp, log)
            old = root.parent / f".{ROOT_NAME}.old-{os.getpid()}"
            if root.exists():
                os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _smoke_test(root: Path, log) -> None:
    check_qemu()
    code = "import numpy, onnxruntime; from ai_edge_litert.interpreter import Interpreter"
    with emulated(DEFAULT_CPU, root) as (argv, env):
        proc = subprocess.run([*argv, "-c", code], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    if proc.returncode:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise PrerequisiteError(f"The new arm64 root cannot import its runtimes: "
                                f"{lines[-1] if lines else proc.returncode}")
    log("  the runtimes import under emulation")


def cpuinfo_text(cpu: str, processors: int) -> str:
    """The ``/proc/cpuinfo`` of ``processors`` cores of ``cpu`` (see :data:`CPUS`)."""
    part, revision, features = CPUS[cpu]
    block = ("processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: {features}\nCPU implementer\t: "
             "0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\n"
             "CPU revision\t: {revision}\n")
    return "\n".join(block.format(i=i, features=features, part=part, revision=revision)
                     for i in range(processors))


@contextlib.contextmanager
def emulated(cpu: str, root: Path | None = None):
    """``(argv, env)`` that run the root's Python on an emulated ``cpu``.

    ``argv`` ends with the interpreter: append a script and its arguments.
    The view behind it exists while the ``with`` block runs.
    """
    root = Path(root or require_root())
    with tempfile.TemporaryDirectory(prefix=f"zoo-{cpu}-") as view:
        view = Path(view)
        for entry in root.iterdir():
            if entry.name not in _HOST_DIRS:
                (view / entry.name).symlink_to(entry)
        (view / "proc").mkdir()
        (view / "proc" / "cpuinfo").write_text(cpuinfo_text(cpu, os.cpu_count() or 1))
        env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8",
               "QEMU_CPU": cpu, "QEMU_LD_PREFIX": str(view), "PYTHONPATH": SITE,
               "PYTHONDONTWRITEBYTECODE": "1"}
        yield [check_qemu(), str(view) + PYTHON, "-P"], env
