"""The export manifest: what ``manifest.json`` holds and how ``manifest.md``
shows it. ``describe`` builds the dict, ``write`` writes both files
atomically, ``manifest_markdown`` renders the table the CLI prints.
"""
from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

from export.checks import MANIFEST

MANIFEST_MD = "manifest.md"
MANIFEST_VERSION = 1
_TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy")


def sha256(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file, or of a directory's sorted (name, bytes) pairs."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h, size = hashlib.sha256(), 0
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        data = f.read_bytes()
        size += len(data)
        h.update(data)
    return size, h.hexdigest()


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


def describe(model, source, options, rewrites, artifacts) -> dict:
    """The manifest of one export (``source``: the ``.keras`` path or None)."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"path": source, "name": model.name,
                   "params": int(model.count_params()),
                   "logits_only": bool(options.logits_only)},
        "graph_rewrites": rewrites,
        "validated": bool(options.validate),
        "tool_versions": tool_versions(),
        "artifacts": artifacts,
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
        return (f"top-1 agreement {v['top1_agreement']:.2%} on {v['samples']} samples "
                f"(bound {v['top1_bound']:.0%})")
    return f"max abs diff {v['max_abs_diff']:.2e} (atol {v['atol']:g}, rtol {v['rtol']:g})"


def manifest_markdown(manifest: dict) -> str:
    """The Markdown summary written beside ``manifest.json``."""
    src = manifest["source"]
    lines = [f"# Export of `{src['name']}` ({src['params']:,} parameters)", "",
             f"Created {manifest['created_utc']}"
             + (f" from `{src['path']}`" if src["path"] else "") + ".", "",
             "| artifact | format | quantization | size | ops | edge ready | validation |",
             "|---|---|---|---|---|---|---|"]
    for a in manifest["artifacts"]:
        ops = f"opset {a['opset']}" if a["format"] == "onnx" else ", ".join(a.get("ops", []))
        if a["format"] == "saved_model":
            ops = "TensorFlow"
        edge = {True: "yes", False: "no", None: "n/a"}[a.get("edge_ready")]
        lines.append(f"| `{a['path']}` | {a['format']} | {a['quantization'] or 'float32'} | "
                     f"{_fmt_size(a['size_bytes'])} | {ops} | {edge} | "
                     f"{_validation_cell(a['validation'])} |")
    if manifest["graph_rewrites"]:
        lines += ["", "Graph rewrites for export: "
                  + "; ".join(manifest["graph_rewrites"]) + "."]
    versions = ", ".join(f"{k} {v}" for k, v in manifest["tool_versions"].items() if v)
    lines += ["", f"Tools: {versions}.", ""]
    return "\n".join(lines)
