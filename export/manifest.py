"""The export manifest: what ``manifest.json`` holds and how ``manifest.md``
shows it. ``describe`` builds the dict, ``write`` writes both files
atomically, ``manifest_markdown`` renders the table the CLI prints.

Reading one back is the other half, owned here too: ``read`` parses it,
``artifact_path`` refuses an entry whose path leaves the export directory, and
``verify`` checks that an artifact (file or SavedModel directory) is still the
one exported (size and sha256). ``evaluation`` and ``export.bench`` use them.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

from export.checks import MANIFEST
from export.errors import ExportError
from export.formats import REGISTRY
from export.validate import agreement_name


class ManifestError(ExportError):
    """An export manifest that cannot be read, names a path outside its directory, or
    no longer matches the artifact it lists."""

MANIFEST_MD = "manifest.md"
MANIFEST_VERSION = 1
_TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "tflite-micro",
          "numpy")


def sha256(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file, or of a directory's sorted (name, bytes) pairs."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h, size = hashlib.sha256(), 0
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                size += len(chunk)
                h.update(chunk)
    return size, h.hexdigest()


def read(directory) -> dict:
    """The manifest of an export directory, its ``artifacts`` a list of dicts with a path.

    Raises:
        ManifestError: missing or unreadable ``manifest.json``, or not a manifest.
    """
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        entries = manifest["artifacts"]
        if not isinstance(entries, list):
            raise TypeError("'artifacts' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ManifestError(
            f"Cannot read the export manifest '{path}': {reason}. Re-run the export, or "
            "pass the artifact files themselves.") from None
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ManifestError(f"An entry of '{path}' has no 'path'. Received: {entry!r}")
    return manifest


def artifact_path(directory, entry: dict) -> Path:
    """Where an entry's artifact is: inside ``directory``, or refused.

    Raises:
        ManifestError: the path is absolute, climbs out with ``..``, or is a
            link to something outside the export directory.
    """
    directory = Path(directory)
    rel = entry["path"]
    path = directory / rel
    root = directory.resolve()
    if os.path.isabs(rel) or not (path.resolve() == root or root in path.resolve().parents):
        raise ManifestError(
            f"The export manifest '{directory / MANIFEST}' lists {rel!r}, which is outside "
            f"'{directory}'; refused. Re-run the export.")
    return path


def verify(path: Path, entry: dict) -> None:
    """An artifact (file, or SavedModel directory) must still be the one exported.

    This catches what no runtime can: a bit flip in the weights still loads
    and runs, and would be scored as if it were the exported model.

    Raises:
        ManifestError: its size or sha256 differs from the entry's.
    """
    size, digest = entry.get("size_bytes"), entry.get("sha256")
    if size is None and not digest:
        return
    actual_size, actual = sha256(path)
    if size is not None and actual_size != size:
        raise ManifestError(
            f"'{path}' does not match its export manifest: {actual_size:,} bytes, the manifest "
            f"recorded {size:,}. The file changed after export (truncated or replaced); re-export it.")
    if digest and actual != digest:
        raise ManifestError(
            f"'{path}' does not match its export manifest: sha256 {actual[:12]}..., "
            f"the manifest recorded {str(digest)[:12]}.... The file changed after export "
            f"(corrupted or replaced); re-export it.")


def tool_versions() -> dict:
    """Versions of Python and of every package that wrote or checked an artifact."""
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in _TOOLS:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def describe(model, source, options, rewrites, artifacts, card, refused=()) -> dict:
    """The manifest of one export (``source``: the ``.keras`` path or None; ``card``:
    the model card written into every artifact, ``export.metadata``; ``refused``: the
    artifacts left out, ``export.refusals``, kept apart from ``artifacts`` so that
    every reader of ``artifacts`` finds published files only)."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"path": source, "name": model.name,
                   "params": int(model.count_params()),
                   "logits_only": bool(options.logits_only)},
        "model_card": card,
        "graph_rewrites": rewrites,
        "validated": bool(options.validate),
        "tool_versions": tool_versions(),
        "artifacts": artifacts,
        "refused": list(refused),
    }


def write(directory: Path, manifest: dict) -> None:
    """Write ``manifest.json`` and ``manifest.md`` into ``directory`` atomically."""
    from utils.io import atomic_write_json, atomic_write_text
    atomic_write_json(directory / MANIFEST, manifest)
    atomic_write_text(directory / MANIFEST_MD, manifest_markdown(manifest))


def _fmt_size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.2f} MiB"


def _validation_cell(v) -> str:
    if not v:
        return "not validated"
    if v.get("skipped"):
        return "SKIPPED: " + v["skipped"]
    if "top1_agreement" in v:
        litert = (f"; same decision as LiteRT on "
                  f"{v['litert']['agreement']:.2%}, up to {v['litert']['max_steps']:g} int8 steps"
                  if v.get("litert") else "")
        return (f"{agreement_name(v)} {v['top1_agreement']:.2%} on {v['samples']} samples "
                f"(bound {v['top1_bound']:.0%}){litert}")
    return f"max abs diff {v['max_abs_diff']:.2e} (atol {v['atol']:g}, rtol {v['rtol']:g})"


def _ops_cell(artifact) -> str:
    fmt = REGISTRY.get(artifact["format"])  # a format of an older toolkit: its op list
    return fmt.ops_cell(artifact) if fmt else ", ".join(artifact.get("ops", []))


def _gpu_cell(artifact) -> str:
    gpu = artifact.get("gpu_delegate")
    if gpu is None:
        return "n/a"
    return "yes" if gpu["compatible"] else "no: " + ", ".join(gpu["rejected_ops"])


def _micro_line(artifact) -> str:
    m = artifact["micro"]
    q_in, q_out = m["input_quantization"][0], m["output_quantization"][0]
    return (f"\nTFLite Micro (`{artifact['path']}`, {m['io']} I/O): flash {m['flash_bytes']:,} "
            f"bytes, tensor arena {m['arena_bytes']:,} bytes (smallest that runs: "
            f"{m['arena_min_bytes']:,}; margin {m['arena_margin']}); input scale "
            f"{q_in['scale']:.6g} zero point {q_in['zero_point']}, output scale "
            f"{q_out['scale']:.6g} zero point {q_out['zero_point']}; resolver "
            f"{', '.join(m['resolver'])}; sources {', '.join(m['sources'])}.")


def _card_lines(card) -> list[str]:
    if not card:
        return []
    from models.card import card_summary
    lines = [f"Model card (in every artifact): {card_summary(card)}."]
    if card.get("assumed"):
        lines.append(f"Assumed: {card['assumed']}.")
    return lines + [""]


def _refused_lines(refused) -> list[str]:
    if not refused:
        return []
    from export.refusals import summary
    return ["", "Refused (not published):", ""] + [f"- {summary(r)}" for r in refused]


def manifest_markdown(manifest: dict) -> str:
    """The Markdown summary written beside ``manifest.json``."""
    src = manifest["source"]
    lines = [f"# Export of `{src['name']}` ({src['params']:,} parameters)", "",
             f"Created {manifest['created_utc']}"
             + (f" from `{src['path']}`" if src["path"] else "") + ".", "",
             *_card_lines(manifest.get("model_card")),
             "| artifact | format | quantization | size | ops | edge ready | GPU delegate "
             "| validation |",
             "|---|---|---|---|---|---|---|---|"]
    for a in manifest["artifacts"]:
        ops = _ops_cell(a)
        edge = {True: "yes", False: "no", None: "n/a"}[a.get("edge_ready")]
        lines.append(f"| `{a['path']}` | {a['format']} | {a['quantization'] or 'float32'} | "
                     f"{_fmt_size(a['size_bytes'])} | {ops} | {edge} | {_gpu_cell(a)} | "
                     f"{_validation_cell(a['validation'])} |")
    lines += [_micro_line(a) for a in manifest["artifacts"] if a.get("micro")]
    lines += _refused_lines(manifest.get("refused", ()))
    if manifest["graph_rewrites"]:
        lines += ["", "Graph rewrites for export: "
                  + "; ".join(manifest["graph_rewrites"]) + "."]
    versions = ", ".join(f"{k} {v}" for k, v in manifest["tool_versions"].items() if v)
    lines += ["", f"Tools: {versions}.", ""]
    return "\n".join(lines)
