"""C++ sources for a TFLite Micro project, in the layout of TFLite Micro's
examples: ``model_data.h`` / ``model_data.cc`` hold the ``.tflite`` bytes
as ``g_model`` / ``g_model_len`` (16-byte aligned: TFLite Micro reads the
flatbuffer in place) and the model card (``models.card``) as the JSON string
``g_model_card``, and ``op_resolver.h`` registers exactly the ops the
model uses, so the linker drops every other kernel.
"""
from __future__ import annotations

from pathlib import Path

MODEL_H = "model_data.h"
MODEL_CC = "model_data.cc"
RESOLVER_H = "op_resolver.h"
_BYTES_PER_LINE = 12


def model_header(card_text: str = "{}") -> str:
    """``model_data.h``: the declarations of ``g_model`` and ``g_model_len``, and the
    model card: what the input expects and what the output means."""
    return ("// The model as a C array (written by `python -m export`; do not edit).\n"
            "#ifndef MODEL_DATA_H_\n#define MODEL_DATA_H_\n\n"
            "extern const unsigned char g_model[];\n"
            "extern const unsigned int g_model_len;\n\n"
            "// The model card (JSON): input shape, range and preprocessing; what the\n"
            "// output decides (argmax/argmin/sign/bits/regression) and the class names.\n"
            f"static const char g_model_card[] = {c_string(card_text)};\n\n"
            "#endif  // MODEL_DATA_H_\n")


def c_string(text: str) -> str:
    """``text`` as a C string literal (ASCII, escaped; non-ASCII as octal UTF-8 bytes)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127 and ch != "?":  # "?" could start a trigraph
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def model_source(content: bytes) -> str:
    """``model_data.cc``: ``content`` byte for byte, 16-byte aligned."""
    rows = []
    for start in range(0, len(content), _BYTES_PER_LINE):
        chunk = content[start:start + _BYTES_PER_LINE]
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    return (f'#include "{MODEL_H}"\n\n'
            "// TFLite Micro reads the flatbuffer in place: keep it 16-byte aligned.\n"
            "alignas(16) const unsigned char g_model[] = {\n"
            + "\n".join(rows) + "\n};\n"
            f"const unsigned int g_model_len = {len(content)};\n")


def resolver_header(resolver_methods) -> str:
    """``op_resolver.h``: a ``MicroMutableOpResolver`` sized for exactly
    ``resolver_methods`` (e.g. ``["AddFullyConnected", "AddSoftmax"]``)."""
    calls = "\n".join(f"  TF_LITE_ENSURE_STATUS(resolver.{m}());" for m in resolver_methods)
    return ("// The ops of model_data.cc, and no other (written by `python -m export`).\n"
            "#ifndef OP_RESOLVER_H_\n#define OP_RESOLVER_H_\n\n"
            '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
            f"using ModelOpResolver = tflite::MicroMutableOpResolver<{len(resolver_methods)}>;\n\n"
            "// Call once before constructing the tflite::MicroInterpreter.\n"
            "inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {\n"
            f"{calls}\n  return kTfLiteOk;\n}}\n\n"
            "#endif  // OP_RESOLVER_H_\n")


def write_sources(directory: Path, content: bytes, resolver_methods,
                  card_text: str = "{}") -> list[str]:
    """Write the three files into ``directory`` (atomically each).

    Returns:
        Their names, for the manifest.
    """
    from utils.io import atomic_write_text
    texts = {MODEL_H: model_header(card_text), MODEL_CC: model_source(content),
             RESOLVER_H: resolver_header(resolver_methods)}
    for name, text in texts.items():
        atomic_write_text(Path(directory) / name, text)
    return list(texts)
