"""One owner per export format and per option: export_model's signature, its docstring,
the CLI flags, the docs table and the artifact names come from the declarations
(export.options, export.formats) and keep their published form."""
import ast
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs" / "export.md"


def _documented_signature():
    """``export_model``'s parameters as docs/export.md publishes them: [(name, default)]."""
    line = next(l for l in DOCS.read_text().splitlines() if l.startswith("| `export_model("))
    params = re.match(r"\| `export_model\((.*)\) -> dict`", line).group(1)
    fn = ast.parse(f"def export_model({params}): pass").body[0].args
    defaults = [None] * (len(fn.args) - len(fn.defaults)) + fn.defaults
    return [(a.arg, d if d is None else ast.literal_eval(d)) for a, d in zip(fn.args, defaults)]


def test_export_model_keeps_its_published_signature_and_documents_every_option():
    from export import export_model
    from export.options import OPTIONS

    signature = inspect.signature(export_model).parameters.values()
    got = [(p.name, None if p.default is p.empty else p.default) for p in signature]
    assert got == _documented_signature()
    assert [n for n, _ in got[2:]] == [o.name for o in OPTIONS]
    for o in OPTIONS:  # the docstring's Args list is the spec's
        assert re.search(rf"^        {o.name}: ", export_model.__doc__, re.M), o.name
    assert "{options}" not in export_model.__doc__


def test_the_docs_options_table_is_the_spec():
    from export.options import options_markdown

    assert options_markdown() in DOCS.read_text()


def test_every_flag_is_named_after_its_argument_and_old_spellings_still_parse():
    from export.__main__ import _export_parser
    from export.options import OPTIONS

    parser = _export_parser()
    names = {o.name for o in OPTIONS}
    aliases = {"--no-float-head": "int8_float_head", "--keras-flatten": "static_flatten"}
    for action in parser._actions:
        if action.dest in ("help", "out", "model"):
            continue
        assert action.dest in names, action.option_strings
        for flag in action.option_strings:
            if flag in aliases:
                assert aliases[flag] == action.dest
            else:  # --int8-float-head / --no-int8-float-head <-> int8_float_head
                assert flag.removeprefix("--no-").removeprefix("--").replace("-", "_") \
                    == action.dest, flag
    base = ["m.keras", "--out", "o"]
    old = parser.parse_args(base + ["--no-float-head", "--keras-flatten", "--no-validate"])
    new = parser.parse_args(base + ["--no-int8-float-head", "--no-static-flatten",
                                    "--no-validate"])
    default = parser.parse_args(base)
    for name in ("int8_float_head", "static_flatten", "validate"):
        assert getattr(old, name) is getattr(new, name) is False
        assert getattr(default, name) is True
    assert default.formats == "saved_model,onnx,tflite" and default.micro_io == "int8"


def test_each_format_entry_names_its_artifacts_as_published():
    from export import formats
    from export.checks import check_options

    assert formats.FORMATS == ("saved_model", "onnx", "tflite", "tflite_micro")
    every = check_options(formats=formats.FORMATS, quantize="none,float16,dynamic,int8",
                          representative_data="stand-in")
    names = {f: [formats.get(f).file_name(q, every) for q in formats.get(f).variants(every)]
             for f in formats.FORMATS}
    assert names == {"saved_model": ["saved_model"],
                     "onnx": ["model.onnx", "model_int8.onnx"],
                     "tflite": ["model.tflite", "model_float16.tflite", "model_dynamic.tflite",
                                "model_int8.tflite"],
                     "tflite_micro": ["model_micro.tflite"]}
    batch1 = check_options(formats="tflite", quantize="int8", fixed_batch=1,
                           representative_data="stand-in")
    assert formats.TFLITE.file_name("int8", batch1) == "model_int8_b1.tflite"
    # float artifacts have a tolerance, int8 ones are judged by agreement
    assert formats.TFLITE.tolerance("float16") == (1e-2, 1e-2)
    assert formats.ONNX.tolerance("int8") is None and formats.TFLITE_MICRO.tolerance("int8") is None


def test_a_quantization_no_requested_format_writes_names_the_formats_that_do():
    from export.checks import check_options
    from export.errors import ExportError

    with pytest.raises(ExportError, match=r"quantize='int8' applies to ONNX and TFLite; add "
                                          r"'onnx' or 'tflite' to formats"):
        check_options(formats="saved_model,tflite_micro", quantize="int8",
                      representative_data="stand-in")
    # int8 for ONNX alone is fine: model.onnx, then model_int8.onnx quantized from it
    assert check_options(formats="onnx", quantize="int8",
                         representative_data="stand-in").quantize == ("int8",)
