"""Find out what each command-line ARTIFACT is, and reject broken files cheaply.

An ARTIFACT is a ``.keras`` file, a SavedModel directory, an ``.onnx`` file, a
``.tflite`` file, or an export directory with ``manifest.json`` (expanded into
all the artifacts it lists). The checks here only read bytes and parse
protobufs in Python; they never hand a file to a native runtime, so they cannot
crash this process. What they cannot see (a bit flip deep inside a flatbuffer)
is caught by running the artifact in an isolated child (``utils.isolation``).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from export.checks import MANIFEST
from export.runtime import KINDS, SAVED_MODEL_FILES, artifact_kind  # noqa: F401  (KINDS)
from utils.errors import ModelLoadError

from .errors import ArtifactError

_DESCRIPTION = {
    "keras": "Keras v3 model file (.keras zip archive)",
    "saved_model": "TensorFlow SavedModel",
    "onnx": "ONNX model",
    "tflite": "TFLite flatbuffer",
}
# A TFLite flatbuffer carries its file identifier at bytes 4..8.
TFLITE_MAGIC = b"TFL3"
# Protobuf caps a model at 2 GiB; a tensor declared larger is a crafted file.
MAX_ONNX_TENSOR_BYTES = 2 * 2 ** 30


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
        card: the model card the artifact carries (``models.card``; None: it carries
            none), read by :func:`check`.
    """

    path: Path
    kind: str
    label: str
    quantization: str | None = None
    manifest_entry: dict | None = field(default=None, compare=False)
    card: dict | None = field(default=None, compare=False)

    @property
    def description(self) -> str:
        """Human name of the artifact's format ("TFLite flatbuffer", ...)."""
        return describe_kind(self.kind)


def describe_kind(kind: str) -> str:
    """Human name of an artifact kind ("keras" -> "Keras v3 model file (.keras zip archive)")."""
    return _DESCRIPTION.get(kind, kind)


def detect_kind(path: str | os.PathLike) -> str:
    """The kind of a single artifact path (not an export directory).

    ``export.runtime.artifact_kind`` decides (the one detection, shared with
    export's validation and bench); its error becomes an :class:`ArtifactError`.

    Raises:
        ArtifactError: the path does not exist or is not a supported kind.
    """
    try:
        return artifact_kind(path)
    except ModelLoadError as exc:
        raise ArtifactError(str(exc)) from None


def resolve(paths: list[str | os.PathLike]) -> list[Artifact]:
    """Expand export directories and label every artifact.

    Args:
        paths: the ARTIFACT arguments, in order (the first is the reference).

    Returns:
        One :class:`Artifact` per model to evaluate, in order; an export
        directory contributes all of its manifest's published artifacts in manifest
        order (the ones its export refused are listed apart, under ``refused``, and
        have no file).

    Raises:
        ArtifactError: a path is missing (one its export refused is named so, with the
            figure it was refused for), of an unsupported kind, or a manifest is unreadable.
    """
    if not paths:
        raise ArtifactError("No artifact given. Pass at least one .keras/.onnx/.tflite file or "
                            "SavedModel/export directory.")
    found: list[Artifact] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path / MANIFEST).exists():
            found.extend(_from_manifest(path))
        else:
            _check_not_refused(path)
            found.append(Artifact(path=path, kind=detect_kind(path), label=str(raw)))
    return _unique_labels(found)


def _check_not_refused(path: Path) -> None:
    """A missing file that the export manifest beside it lists as refused is named so."""
    if path.exists() or not (path.parent / MANIFEST).is_file():
        return
    from export import manifest as manifest_io
    from export.refusals import summary

    try:
        refused = manifest_io.read(path.parent).get("refused") or []
    except manifest_io.ManifestError:
        return  # the plain "does not exist" follows
    for entry in refused:
        if isinstance(entry, dict) and entry.get("path") == path.name:
            why = (summary(entry) if {"format", "quantization", "reason", "fix"} <= set(entry)
                   else "its export refused it.")
            raise ArtifactError(f"'{path}' was not published: {why} "
                                f"(listed under \"refused\" in '{path.parent / MANIFEST}').")


def _from_manifest(directory: Path) -> list[Artifact]:
    from export import manifest as manifest_io

    try:
        manifest = manifest_io.read(directory)
        entries = manifest["artifacts"]
        if not entries:
            raise ArtifactError(f"The export manifest '{directory / MANIFEST}' lists no "
                                "artifacts.")
        paths = [manifest_io.artifact_path(directory, entry) for entry in entries]
    except manifest_io.ManifestError as exc:
        raise ArtifactError(str(exc)) from None
    artifacts = []
    for entry, path in zip(entries, paths):
        kind = detect_kind(path)
        quant = entry.get("quantization")
        label = f"{directory.name}/{entry['path']}" + (f" [{quant}]" if quant else "")
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
            art = dataclasses.replace(art, label=f"{art.label} #{n + 1}")
        out.append(art)
    return out


def check(artifact: Artifact) -> None:
    """Cheap structural checks that never run native runtime code on the file.

    * every file: exists and is not empty;
    * ``.tflite``: the "TFL3" identifier at bytes 4..8;
    * ``.onnx``: parses as an ONNX protobuf and passes ``onnx.checker``;
    * ``.keras``: the archive checks of ``models.loading.read_config`` (zip, member
      names and sizes, ``config.json``);
    * SavedModel: ``saved_model.pb`` is not empty;
    * an artifact from an export manifest (file or SavedModel directory): its size and
      sha256 are the recorded ones (``export.manifest.verify``).

    Raises:
        ArtifactError: naming the file, what is wrong and what to do.
    """
    path, kind = artifact.path, artifact.kind
    bad = f"'{path}' is not a valid {artifact.description}"
    if artifact.manifest_entry is not None:
        from export import manifest as manifest_io

        try:  # files and SavedModel directories alike
            manifest_io.verify(path, artifact.manifest_entry)
        except manifest_io.ManifestError as exc:
            raise ArtifactError(str(exc)) from None
    if kind == "saved_model":
        for name in SAVED_MODEL_FILES:
            pb = path / name
            if pb.exists() and pb.stat().st_size == 0:
                raise ArtifactError(f"{bad}: {name} is empty. Re-export it.")
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
        from models.loading import read_config  # the .keras archive checks, in one place

        try:
            read_config(path)
        except ModelLoadError as exc:
            raise ArtifactError(f"{bad}: {exc}") from None


def read_card(artifact: Artifact) -> dict | None:
    """The model card ``artifact`` carries, checked to be class scores.

    Raises:
        ArtifactError: the card is corrupt, or says the output is not class scores
            (accuracy says nothing about it). An artifact without a card is scored as
            it comes.
    """
    from export import metadata
    from models.card import DECISIONS, is_classifier
    from models.errors import ModelCardError

    try:
        card = metadata.read_card(artifact.path)
    except ModelCardError as exc:
        raise ArtifactError(str(exc)) from None
    if card is not None and not is_classifier(card):
        raise ArtifactError(
            f"'{artifact.label}' is a model whose output is not class scores (its model card: "
            f"{DECISIONS[card['decision']]}), so accuracy says nothing about it. evaluate.py "
            "scores classifiers; the model's own test figures are in the summary.json of its "
            "train.py run.")
    return card


def _check_onnx(path: Path, bad: str) -> None:
    import onnx  # pure protobuf parsing + a checker; no kernels run

    try:
        model = onnx.load(str(path), load_external_data=False)
        # The path form resolves external data against the model's folder (the
        # ModelProto form would use the working directory) and refuses
        # locations that are absolute or climb out of that folder.
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf/checker raise many types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{bad}: {reason}. The file is truncated or corrupt; re-export it.") \
            from None
    for tensor in _onnx_tensors(model.graph):
        size = _onnx_declared_bytes(tensor)
        if size > MAX_ONNX_TENSOR_BYTES:
            raise ArtifactError(
                f"{bad}: tensor {tensor.name!r} declares {size:,} bytes (shape "
                f"{list(tensor.dims)}; limit {MAX_ONNX_TENSOR_BYTES:,}). Refused before any "
                "runtime allocates it; re-export the model.")


def _onnx_tensors(graph):
    """Every TensorProto of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _onnx_tensors(attr.g)
            for sub in attr.graphs:
                yield from _onnx_tensors(sub)


def _onnx_declared_bytes(tensor) -> int:
    from onnx import helper

    count = 1
    for d in tensor.dims:
        count *= max(int(d), 0)
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 8  # unknown or string types: count them wide
    declared = count * itemsize
    for entry in tensor.external_data:
        if entry.key == "length" and entry.value.isdigit():
            declared = max(declared, int(entry.value))
    return declared
