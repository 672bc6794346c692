"""python -m data convert SOURCE --out DIR [--shards N]: write a streamed dataset.

    python -m data convert digits --out datasets/digits
    python -m data convert big/ --out datasets/big --shards 200   # big/x.npy, big/y.npy

DIR then works wherever --dataset is accepted (train.py, evaluate.py) and is
read from disk batch by batch instead of being loaded into memory.
"""
from __future__ import annotations

import sys

from utils.cli import ArgumentParser, run_cli

from data._shape import add_shape_arguments


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m data", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="convert a dataset into sharded uint8 records")
    c.add_argument("source", metavar="SOURCE",
                   help="a registered name (python -c 'import data; print(data.list_datasets())'), "
                   "tfds:<name>, an image folder, a .npz file, or a folder with x.npy (uint8 "
                   "images [N,H,W] or [N,H,W,C]) and y.npy (integer labels), read memory-mapped")
    c.add_argument("--out", required=True, metavar="DIR", help="dataset directory to write "
                   "(an existing one is replaced in one step, and only on success)")
    c.add_argument("--shards", type=int, metavar="N",
                   help="training shards (default: one per 50,000 examples)")
    c.add_argument("--num-classes", dest="num_classes", type=int, metavar="N",
                   help="class count (default: the source's, or the largest label + 1)")
    add_shape_arguments(c, "an x.npy folder, unless they are given,")
    c.add_argument("--workers", type=int, metavar="N", help="writer processes (default: CPUs)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from data import convert

    out = convert(args.source, args.out, shards=args.shards, num_classes=args.num_classes,
                  workers=args.workers, progress=not args.quiet, image_size=args.image_size,
                  channels=args.channels)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="python -m data"))
