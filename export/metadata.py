"""The model card inside each artifact, where its format keeps metadata.

Each writer stores the card's canonical JSON (``models.card.card_json``) under the key
``models.card.CARD_KEY``, readable with the format's own tools and none of ours:

* ONNX: an entry of ``ModelProto.metadata_props`` (``onnx.load(p).metadata_props``);
* TFLite: a ``Metadata`` entry of the flatbuffer naming a buffer that holds the JSON
  (the LiteRT schema: ``Model.Metadata(i).Name()`` / ``Buffers(i).DataAsNumpy()``);
* SavedModel: ``assets/model_card.json`` and a ``model_card`` signature returning the
  JSON as a string tensor (``tf.saved_model.load(p).signatures["model_card"]()``);
* TFLite Micro: the card as a C string, ``g_model_card``, in ``model_data.h``
  (:mod:`export.micro_sources`), besides the metadata of ``model_micro.tflite``;
* the manifest: its ``model_card`` field.

:func:`read_card` reads the card back from any artifact, for ``evaluate.py``. Which
writer a format uses is its registry entry's (``export.formats``).
"""
from __future__ import annotations

from pathlib import Path

from models.card import CARD_ASSET, CARD_KEY, parse_card

TFLITE_IDENTIFIER = b"TFL3"


def write_onnx_card(path, card_text: str) -> None:
    """Store the card in the ``.onnx`` file at ``path`` (in place): ``metadata_props``."""
    import onnx

    path = Path(path)
    proto = onnx.load(str(path), load_external_data=False)
    kept = [p for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=CARD_KEY, value=card_text)
    path.write_bytes(proto.SerializeToString())


def write_tflite_card(path, card_text: str) -> None:
    """Store the card in the ``.tflite`` file at ``path`` (in place): a metadata buffer."""
    path = Path(path)
    path.write_bytes(tflite_with_metadata(path.read_bytes(), CARD_KEY,
                                          card_text.encode("utf-8")))


def write_saved_model_card(path, card_text: str) -> None:
    """Store the card in the SavedModel at ``path``: ``assets/model_card.json`` (its
    ``model_card`` signature is written with it, ``export.convert.to_saved_model``)."""
    assets = Path(path) / "assets"
    assets.mkdir(exist_ok=True)
    (assets / CARD_ASSET).write_text(card_text, encoding="utf-8")


def tflite_with_metadata(content: bytes, name: str, data: bytes) -> bytes:
    """``content`` with a metadata entry ``name`` -> a new buffer holding ``data``
    (an entry of the same name is replaced)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    model.metadata = [m for m in (model.metadata or []) if _text(m.name) != name]
    buffer = schema.BufferT()
    buffer.data = list(data)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def tflite_metadata(content: bytes, name: str) -> bytes | None:
    """The bytes of metadata entry ``name`` of a ``.tflite`` flatbuffer (None: absent,
    or a flatbuffer too damaged to find it: the runtime's own check judges that file).

    Raises:
        ValueError: the entry names a buffer the model does not have.
    """
    import struct

    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(content, 0)
        entries = [model.Metadata(i) for i in range(model.MetadataLength())]
        entry = next((e for e in entries if _text(e.Name()) == name), None)
        if entry is None:
            return None
        index, count = entry.Buffer(), model.BuffersLength()
        data = model.Buffers(index).DataAsNumpy() if 0 <= index < count else None
    except (IndexError, TypeError, AttributeError, ValueError, struct.error):
        return None  # pure-Python parsing of damaged bytes; nothing ran
    if data is None:
        raise ValueError(f"metadata {name!r} names buffer {index}, but the model has {count}")
    return data.tobytes() if hasattr(data, "tobytes") else b""


def read_card(path) -> dict | None:
    """The model card stored in an artifact (``.onnx``, ``.tflite``, a SavedModel folder,
    a ``.keras`` file); None when it carries none.

    Raises:
        ModelCardError: the stored card is corrupt (not JSON, not a card).
    """
    from models.errors import ModelCardError

    path = Path(path)
    where = f"'{path}'"
    if path.is_dir():
        asset = path / "assets" / CARD_ASSET
        return parse_card(asset.read_bytes(), where) if asset.is_file() else None
    suffix = path.suffix.lower()
    if suffix == ".keras":
        from models.loading import read_card as read_keras_card
        return read_keras_card(path)
    if suffix == ".onnx":
        import onnx
        proto = onnx.load(str(path), load_external_data=False)
        text = next((p.value for p in proto.metadata_props if p.key == CARD_KEY), None)
        return None if text is None else parse_card(text, where)
    if suffix == ".tflite":
        try:
            data = tflite_metadata(path.read_bytes(), CARD_KEY)
        except ValueError as exc:
            raise ModelCardError(f"The metadata of {where} is corrupt: {exc}. Re-export the "
                                 "model.") from None
        return None if data is None else parse_card(data, f"{where} (metadata {CARD_KEY})")
    return None
