"""Command line: ``python -m models list|summary|audit``.

    python -m models list [PATTERN] [--markdown]      # name and parameter count per model
    python -m models summary NAME [--activation A] [--num-classes N] [--set KEY=VALUE ...]
    python -m models audit NAME|PATH.keras [--format md|json|csv] [--out FILE]
"""
from __future__ import annotations

import sys

from utils.cli import ArgumentParser, key_value, quiet_tensorflow, run_cli
from utils.errors import UsageError


def _overrides(args) -> dict:
    out = {}
    if args.activation is not None:
        out["activation"] = args.activation
    if args.output_activation is not None:
        out["output_activation"] = None if args.output_activation.lower() in ("none", "logits") \
            else args.output_activation
    if args.num_classes is not None:
        out["num_classes"] = args.num_classes
    if args.input_shape is not None:
        try:
            out["input_shape"] = tuple(int(d) for d in args.input_shape.split(","))
        except ValueError:
            raise UsageError("--input-shape takes comma-separated integers, e.g. 32,32,1. "
                             f"Received: {args.input_shape!r}") from None
    for key, value in args.set or ():
        out[key.replace("-", "_")] = value
    return out


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m models", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list registered models with their parameter counts")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'deep_mlp_*'")
    p.add_argument("--exclude", action="append", default=[], help="pattern to leave out")
    p.add_argument("--markdown", action="store_true", help="print the docs/models.md table")
    for name, help_ in (("summary", "Keras summary plus the parameter audit"),
                        ("audit", "parameter audit of a model name or a .keras file")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("target", help="registered model name" +
                       (" or path to a .keras file" if name == "audit" else ""))
        p.add_argument("--activation", help="hidden activation (activations.list_activations())")
        p.add_argument("--output-activation", help="output activation, or 'none' for logits")
        p.add_argument("--num-classes", type=int)
        p.add_argument("--input-shape", help="comma separated, e.g. 32,32,1")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", type=key_value,
                       help="any other builder option, e.g. --set depth=8 --set batch_norm=true")
        if name == "audit":
            p.add_argument("--format", choices=("md", "json", "csv"), default="md")
            p.add_argument("--out", help="write here (atomically) instead of stdout")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    quiet_tensorflow()
    from models import report  # TensorFlow loads only after the arguments parsed
    if args.command == "list":
        if args.markdown:
            print(report.models_markdown(args.pattern, args.exclude), end="")
        else:
            print(report.models_list_text(args.pattern, args.exclude), end="")
        return 0
    if args.command == "summary":
        print(report.audit_report(args.target, "md", summary=True, **_overrides(args)), end="")
        return 0
    text = report.audit_report(args.target, args.format, **_overrides(args))
    if args.out:
        from utils.io import atomic_write_text
        print(f"wrote {atomic_write_text(args.out, text)}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="python -m models"))
