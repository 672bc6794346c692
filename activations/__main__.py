"""``python -m activations list | describe NAME | plot --out DIR``."""
from __future__ import annotations

import sys

from utils.cli import ArgumentParser, run_cli

PROG = "python -m activations"


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description="The activation catalogue.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="print the catalogue as a table")
    listing.add_argument("pattern", nargs="?", default="*", help="fnmatch filter (default *)")
    describe = commands.add_parser("describe", help="print one catalogue entry")
    describe.add_argument("name")
    plot = commands.add_parser("plot", help="write the plot grid and the Markdown table")
    plot.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)

    # The package __init__ (run first by `python -m`) already imported
    # TensorFlow quietly via utils.tf_quiet.
    from activations import catalogue

    if args.command == "list":
        print(catalogue.list_table(args.pattern))
    elif args.command == "describe":
        print(catalogue.entry_text(args.name))
    else:
        for path in catalogue.write_report(args.out).values():
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog=PROG))
