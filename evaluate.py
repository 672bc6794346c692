#!/usr/bin/env python
"""Evaluate models and exported artifacts side by side on one dataset split.

    python evaluate.py model.keras exports/exam --dataset digits
    python evaluate.py exports/exam/model.tflite --dataset fashion_mnist --json results.json
    python evaluate.py model.keras exports/exam --report reports/exam

ARTIFACT: a .keras file, a SavedModel directory, an .onnx or .tflite file, or an
export directory with manifest.json (all of its artifacts). The first artifact
is the reference for the "agreement" column. Bad input: one line, exit status 2.
"""
from __future__ import annotations

import sys

from utils.cli import ArgumentParser, quiet_tensorflow, run_cli


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT",
                   help=".keras / .onnx / .tflite file, SavedModel or export directory")
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits), or a "
                   "directory written by python -m data convert: its split is read from disk "
                   "batch by batch, never loaded whole")
    p.add_argument("--split", default="test", help="train, val or test (default: test)")
    p.add_argument("--batch-size", type=int, default=256, help="examples per runtime call")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write results as JSON to FILE, or to stdout (instead of the table) "
                        "when FILE is omitted")
    p.add_argument("--report", metavar="DIR", help="write a Markdown report with plots to DIR")
    p.add_argument("--unsafe", action="store_true",
                   help="allow .keras files with Lambda layers (runs code from the file)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--limit", type=int, metavar="N",
                   help="evaluate a fixed random subset of N examples (same every run)")
    p.add_argument("--threads", type=int, help="runtime intra-op threads (default: runtime's)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    from evaluation import evaluate

    result = evaluate(args.artifacts, dataset=args.dataset, split=args.split,
                      batch_size=args.batch_size, unsafe=args.unsafe, progress=not args.quiet,
                      limit=args.limit, num_threads=args.threads)
    if args.json == "-":
        sys.stdout.write(result.to_json())
    else:
        print(result.table())
        if args.json:
            print(f"wrote {result.write_json(args.json)}")
    if args.report:
        # With --json to stdout, stdout must stay pure JSON.
        print(f"wrote {result.write_report(args.report)}",
              file=sys.stderr if args.json == "-" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="evaluate.py"))
