"""Find out what each command-line ARTIFACT is, and reject broken files cheaply.

An ARTIFACT is a ``.keras`` file, a SavedModel directory, an ``.onnx`` file, a
``.tflite`` file, or an export directory with ``manifest.json`` (expanded into
all the artifacts it lists). The checks here only read bytes and parse
protobufs in Python; they never hand a file to a native runtime, so they cannot
crash this process. What they cannot see (a bit flip deep inside a flatbuffer)
is caught by running the artifact in an isolated child (``evaluation.isolation``).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArtifactError

KINDS = ("keras", "saved_model", "onnx", "tflite")
_SUFFIX_KIND = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}
_DESCRIPTION = {
    "keras": "Keras v3 model file (.keras zip archive)",
    "saved_model": "TensorFlow SavedModel",
    "onnx": "ONNX model",
    "tflite": "TFLite flatbuffer",
}
# A TFLite flatbuffer carries its file identifier at bytes 4..8.
TFLITE_MAGIC = b"TFL3"


@dataclass(frozen=True)
class Artifact:
    """One artifact to evaluate.

    Attributes:
        path: where it is (file, or directory for a SavedModel).
        kind: one of ``KINDS``.
        label: how tables and reports name it (unique within one evaluation).
        quantization: ``None``, ``"float16"``, ``"dynamic"`` or ``"int8"`` (from the
            manifest; ``None`` when evaluated without one).
        manifest_entry: the export manifest's entry, when it came from one.
    """

    path: Path
    kind: str
    label: str
    quantization: str | None = None
    manifest_entry: dict | None = field(default=None, compare=False)

    @property
    def description(self) -> str:
        """Human name of the artifact's format ("TFLite flatbuffer", ...)."""
        return describe_kind(self.kind)


def describe_kind(kind: str) -> str:
    """Human name of an artifact kind ("keras" -> "Keras v3 model file (.keras zip archive)")."""
    return _DESCRIPTION.get(kind, kind)


def detect_kind(path: str | os.PathLike) -> str:
    """The kind of a single artifact path (not an export directory).

    Raises:
        ArtifactError: the path does not exist or is not a supported kind.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(
            f"Artifact not found: '{path}'. Pass a .keras, .onnx or .tflite file, a SavedModel "
            f"directory or an export directory with manifest.json.")
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return "saved_model"
        raise ArtifactError(
            f"Directory '{path}' is neither a SavedModel (no saved_model.pb) nor an export "
            f"directory (no manifest.json).")
    kind = _SUFFIX_KIND.get(path.suffix.lower())
    if kind is None:
        raise ArtifactError(
            f"Unsupported artifact '{path}' (suffix '{path.suffix}'). Supported: .keras, .onnx, "
            f".tflite files, SavedModel directories and export directories with manifest.json.")
    return kind


def resolve(paths: list[str | os.PathLike]) -> list[Artifact]:
    """Expand export directories and label every artifact.

    Args:
        paths: the ARTIFACT arguments, in order (the first is the reference).

    Returns:
        One :class:`Artifact` per model to evaluate, in order; an export
        directory contributes all of its manifest's artifacts in manifest order.

    Raises:
        ArtifactError: a path is missing, of an unsupported kind, or a manifest is unreadable.
    """
    if not paths:
        raise ArtifactError("No artifact given. Pass at least one .keras/.onnx/.tflite file or "
                            "SavedModel/export directory.")
    found: list[Artifact] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path / "manifest.json").exists():
            found.extend(_from_manifest(path))
        else:
            found.append(Artifact(path=path, kind=detect_kind(path), label=str(raw)))
    return _unique_labels(found)


def _from_manifest(directory: Path) -> list[Artifact]:
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = manifest["artifacts"]
        if not isinstance(entries, list):
            raise TypeError("'artifacts' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"Cannot read the export manifest '{manifest_path}': {exc}. Re-run the export, or "
            f"pass the artifact files themselves.") from None
    if not entries:
        raise ArtifactError(f"The export manifest '{manifest_path}' lists no artifacts.")
    artifacts = []
    for entry in entries:
        try:
            rel = entry["path"]
        except (KeyError, TypeError):
            raise ArtifactError(
                f"An entry of '{manifest_path}' has no 'path'. Received: {entry!r}") from None
        path = directory / rel
        kind = detect_kind(path)
        quant = entry.get("quantization")
        label = f"{directory.name}/{rel}" + (f" [{quant}]" if quant else "")
        artifacts.append(Artifact(path=path, kind=kind, label=label, quantization=quant,
                                  manifest_entry=entry))
    return artifacts


def _unique_labels(artifacts: list[Artifact]) -> list[Artifact]:
    seen: dict[str, int] = {}
    out = []
    for art in artifacts:
        n = seen.get(art.label, 0)
        seen[art.label] = n + 1
        if n:
            art = Artifact(art.path, art.kind, f"{art.label} #{n + 1}", art.quantization,
                           art.manifest_entry)
        out.append(art)
    return out


def check(artifact: Artifact) -> None:
    """Cheap structural checks that never run native runtime code on the file.

    * every file: exists and is not empty;
    * ``.tflite``: the "TFL3" identifier at bytes 4..8;
    * ``.onnx``: parses as an ONNX protobuf and passes ``onnx.checker``;
    * ``.keras``: is a zip archive with ``config.json``;
    * SavedModel: ``saved_model.pb`` is not empty;
    * a file from an export manifest: its size and sha256 are the recorded ones.

    Raises:
        ArtifactError: naming the file, what is wrong and what to do.
    """
    path, kind = artifact.path, artifact.kind
    bad = f"'{path}' is not a valid {artifact.description}"
    if artifact.manifest_entry is not None and path.is_file():
        _check_against_manifest(path, artifact.manifest_entry)
    if kind == "saved_model":
        pb = path / "saved_model.pb"
        if pb.exists() and pb.stat().st_size == 0:
            raise ArtifactError(f"{bad}: saved_model.pb is empty. Re-export it.")
        return
    size = path.stat().st_size
    if size == 0:
        raise ArtifactError(f"{bad}: the file is empty. Re-export it.")
    if kind == "tflite":
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) < 8 or head[4:8] != TFLITE_MAGIC:
            raise ArtifactError(
                f"{bad}: bytes 4..8 are {head[4:8]!r}, expected {TFLITE_MAGIC!r}. "
                f"The file is truncated or not a TFLite model; re-export it.")
    elif kind == "onnx":
        _check_onnx(path, bad)
    elif kind == "keras":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ArtifactError(f"{bad}: {exc}. The file is truncated or corrupt.") from None
        if "config.json" not in names:
            raise ArtifactError(f"{bad}: the archive has no config.json.")


def _check_against_manifest(path: Path, entry: dict) -> None:
    """A file listed in an export manifest must still be the file that was exported.

    This catches what no runtime can: a bit flip in the weights still loads
    and runs, and would be scored as if it were the exported model.
    """
    size, digest = entry.get("size_bytes"), entry.get("sha256")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ArtifactError(
            f"'{path}' does not match its export manifest: {actual_size:,} bytes, the manifest "
            f"recorded {size:,}. The file changed after export (truncated or replaced); re-export it.")
    if digest:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != digest:
            raise ArtifactError(
                f"'{path}' does not match its export manifest: sha256 {h.hexdigest()[:12]}..., "
                f"the manifest recorded {digest[:12]}.... The file changed after export "
                f"(corrupted or replaced); re-export it.")


def _check_onnx(path: Path, bad: str) -> None:
    import onnx  # pure protobuf parsing + a checker; no kernels run

    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf/checker raise many types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{bad}: {reason}. The file is truncated or corrupt; re-export it.") \
            from None
