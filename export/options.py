"""The export options, declared once: :data:`OPTIONS`.

Each :class:`Option` is one keyword argument of ``export_model`` under one name.
Everything that lists the options is generated from this table:

* ``export_model``'s signature and the options part of its docstring
  (:func:`with_options`);
* the command line's flags (:func:`add_flags`, :func:`flag_values`): ``--int8-float-head``
  is the argument ``int8_float_head``; a boolean gets ``--name`` / ``--no-name``, and an
  old spelling stays as an alias (``--no-float-head``);
* the fields of the checked request, ``export.checks.Options``, and the per-option
  checks of ``export.checks.check_options``;
* the options table of ``docs/export.md`` (:func:`options_markdown`).

Adding an option is one entry here (and the code that reads it).
"""
from __future__ import annotations

import argparse
import functools
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

from export.formats import DEFAULT_FORMATS, FORMATS, QUANTIZATIONS
from utils.cli import PARTIAL_EXIT

MICRO_IO = ("int8", "float32")


@dataclass(frozen=True)
class Option:
    """One export option.

    Attributes:
        name: the argument of ``export_model``; the flag is ``--`` + name with dashes.
        default: the argument's default.
        doc: what it does, for the docstring and the docs (the first sentence is the
            flag's help).
        flag: how the command line takes it: "value" (``--name VALUE``), "switch" (a
            boolean: ``--name`` / ``--no-name``), "dataset" (a dataset name the command
            line loads), or None (Python only).
        type: the flag value's type (int, float, str).
        metavar: the flag value's placeholder in ``--help``.
        aliases: older flag spellings and the value each one sets, ``{"--no-float-head":
            False}``.
        data: an array argument, checked with the model (``export.checks.check_data``),
            not kept in ``Options``.
        flag_help: the flag's help where the command line takes it differently.
    """

    name: str
    default: Any
    doc: str
    flag: str | None = "value"
    type: Callable = str
    metavar: str | None = None
    aliases: tuple = ()
    data: bool = False
    flag_help: str | None = None

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def help(self) -> str:
        first = self.flag_help or " ".join(self.doc.split()).split(". ")[0].rstrip(".")
        return first.replace("``", "").replace("%", "%%")


# In the order of export_model's signature (after model_or_path, out_dir): positional
# calls keep working.
OPTIONS = (
    Option("formats", DEFAULT_FORMATS, metavar="LIST", doc=f"""
        Comma-separated subset of {', '.join(FORMATS)} (a string or a sequence); default
        {', '.join(DEFAULT_FORMATS)}. Each format is one entry of ``export.formats``;
        "tflite_micro" writes a fully-int8 batch-1 ``model_micro.tflite`` with
        ``model_data.h``, ``model_data.cc`` and ``op_resolver.h``, run in the TFLite Micro
        interpreter (arena measured) and checked against LiteRT."""),
    Option("quantize", None, metavar="LIST", doc=f"""
        TFLite variant(s): None (float32), {', '.join(q for q in QUANTIZATIONS if q)}, as
        one name, a comma-separated string or a sequence such as ``(None, "int8")``
        ("none" = float32). With "onnx" in ``formats``, "int8" also writes
        ``model_int8.onnx`` (onnxruntime static QDQ quantization on the same
        calibration samples)."""),
    Option("representative_data", None, flag="dataset", metavar="DATASET", data=True,
           flag_help="dataset name for int8 calibration (train split) and the agreement "
           "checks (test split), e.g. digits", doc="""
        Real inputs for int8 calibration: float32 ``[N, ...]`` (or ``(x, y)``); required
        for "int8" and "tflite_micro" (calibration, and the agreement check unless
        ``validation_data`` is given). The command line takes a dataset name: its train
        split calibrates, its test split is the ``validation_data``."""),
    Option("opset", None, type=int, doc="""
        ONNX opset; default the newest both tf2onnx and onnxruntime support
        (``export.onnx_ops.default_opset``)."""),
    Option("validate", True, flag="switch", doc="""
        Run every artifact in its runtime and compare it with Keras."""),
    Option("atol", None, type=float, doc="""
        Absolute tolerance override for float comparisons."""),
    Option("allow_flex", False, flag="switch", doc="""
        Accept Select-TF (Flex) ops in TFLite (the artifact is then not edge-ready)."""),
    Option("fixed_batch", None, type=int, metavar="N", doc="""
        A static TFLite batch size N, 1 for edge devices; the runner feeds other batch
        sizes in chunks."""),
    Option("int8_io", False, flag="switch", doc="""
        With "int8", int8 input/output tensors (scale and zero point recorded in the
        manifest)."""),
    Option("logits_only", False, flag="switch", doc="""
        Drop a final softmax (same top-1, faster int8)."""),
    Option("validation_data", None, flag=None, data=True, doc="""
        Real inputs for the comparisons and the int8 agreement (default:
        ``representative_data``); pass held-out data so that agreement is not measured
        on the calibration samples."""),
    Option("int8_float_head", True, flag="switch", aliases=(("--no-float-head", False),),
           doc="""
        With "int8" (float I/O), keep the output layer and its softmax in float
        (selective quantization; ``--no-int8-float-head`` quantizes them too). int8 output
        steps tie the top classes of a wide classifier (exam_mlp: 97-98% top-1 agreement
        fully int8, 99.6% with a float head); the ops kept float are listed in the
        manifest (``float_head``)."""),
    Option("static_flatten", True, flag="switch", aliases=(("--keras-flatten", False),),
           doc="""
        Export each Flatten as ``reshape(x, [-1, n])`` (``--no-static-flatten`` keeps
        Keras' own). Keras' Flatten reshapes to ``[shape(x)[0], -1]``, which costs
        SHAPE/STRIDED_SLICE/PACK ops that TFLite runs outside XNNPACK; same function."""),
    Option("micro_io", "int8", metavar="{" + ",".join(MICRO_IO) + "}", doc=f"""
        Input/output tensors of the tflite_micro model: {' or '.join(MICRO_IO)}."""),
    Option("strict", False, flag="switch", doc=f"""
        All or nothing: any refused artifact refuses the whole export (ValidationError,
        or the conversion's error; nothing is written, the earlier directory is kept).
        By default the validated artifacts are published, every artifact that failed its
        validation or met an op its format lacks (UnsupportedOpsError) is listed in the
        manifest's ``refused`` with its figure and fix, and ``PartialExportError`` is
        raised after publishing (command line: exit status {PARTIAL_EXIT})."""),
    Option("int8_fallback", None, metavar="auto", doc="""
        With "int8" TFLite (float I/O), "auto" keeps the fewest further layers float
        until the agreement with Keras on the calibration inputs reaches the int8 bound
        (greedy: each step keeps float the layer that buys the most;
        ``export.explain_fallback``); the
        layers kept float are listed in the manifest (``float_head``, ``int8_fallback``).
        Default None: no fallback."""),
)
BY_NAME = {o.name: o for o in OPTIONS}
if len(BY_NAME) != len(OPTIONS):
    raise ValueError("Two export options share a name; each name is one argument and one flag.")


def defaults() -> dict:
    """``{name: default}`` of every option."""
    return {o.name: o.default for o in OPTIONS}


# ---------------------------------------------------------------- export_model
def docstring_args(indent: int = 8) -> str:
    """The ``Args:`` lines of every option, as a Google-style docstring writes them."""
    lines = []
    for o in OPTIONS:
        text = " ".join(o.doc.split())
        lines += textwrap.wrap(f"{o.name}: {text}", 88 - indent, initial_indent=" " * indent,
                               subsequent_indent=" " * (indent + 4), break_on_hyphens=False)
    return "\n".join(lines)


def with_options(fn):
    """Give ``fn(*leading, **options)`` the signature ``fn(*leading, <OPTIONS>)``.

    The wrapper binds the call against that signature (an unknown keyword is Python's
    own TypeError), fills every default and passes each option by keyword. The
    ``{options}`` mark of ``fn``'s docstring becomes :func:`docstring_args`.
    """
    base = inspect.signature(fn)
    leading = [p for p in base.parameters.values() if p.kind != p.VAR_KEYWORD]
    signature = base.replace(parameters=leading + [
        inspect.Parameter(o.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=o.default)
        for o in OPTIONS])

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return fn(**bound.arguments)

    wrapper.__signature__ = signature
    wrapper.__doc__ = (fn.__doc__ or "").replace("{options}", docstring_args().lstrip())
    return wrapper


# ---------------------------------------------------------------- command line
def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per option that has one, named after it (and its aliases)."""
    for o in OPTIONS:
        if o.flag is None:
            continue
        if o.flag == "switch":
            parser.add_argument(o.flag_name, dest=o.name, default=o.default,
                                action=argparse.BooleanOptionalAction, help=o.help)
        else:
            default = ",".join(o.default) if isinstance(o.default, tuple) else o.default
            parser.add_argument(o.flag_name, dest=o.name, default=default, type=o.type,
                                metavar=o.metavar, help=o.help)
        for alias, value in o.aliases:
            parser.add_argument(alias, dest=o.name, action="store_const", const=value,
                                help=f"the same as {_spelled(o, value)}")


def _spelled(option: Option, value) -> str:
    if option.flag == "switch":
        return option.flag_name if value else "--no-" + option.flag_name[2:]
    return f"{option.flag_name} {value}"


def flag_values(args: argparse.Namespace) -> dict:
    """``{name: value}`` of every option the command line has a flag for."""
    return {o.name: getattr(args, o.name) for o in OPTIONS if o.flag is not None}


# ---------------------------------------------------------------- docs
def options_markdown() -> str:
    """The options table of docs/export.md: argument, flag, default, what it does."""
    rows = ["| argument | flag | default | what |", "|---|---|---|---|"]
    for o in OPTIONS:
        flags = {None: "-", "switch": f"`{o.flag_name}` / `--no-{o.flag_name[2:]}`"}.get(
            o.flag, f"`{o.flag_name} {o.metavar or o.type.__name__.upper()}`")
        flags += "".join(f", `{alias}`" for alias, _ in o.aliases)
        rows.append(f"| `{o.name}` | {flags} | `{o.default!r}` | {' '.join(o.doc.split())} |")
    return "\n".join(rows) + "\n"
