"""Command line: ``python -m export MODEL.keras --out DIR``, ``python -m export bench
DIR`` and ``python -m export matrix`` (the activation x format table of the docs;
``--models`` and ``--micro`` for the model tables), ``python -m export verify DIR``
(aarch64 under emulation, or OpenVINO), ``python -m export explain MODEL.keras
--representative-data DATASET`` (the per-layer int8 quantization report).

Parses arguments, calls one library function, prints its result. Errors
become one line on stderr and exit status 2 (``utils.cli.run_cli``); a partial
export (some artifacts refused, the validated ones published) exits with
``utils.cli.PARTIAL_EXIT``.
"""
from __future__ import annotations

import sys

from export import options  # `python -m export` has imported export already
from utils.cli import EXIT_STATUS_HELP, PARTIAL_EXIT, ArgumentParser, quiet_tensorflow, run_cli
from utils.errors import UsageError

PROG = "python -m export"


def _export_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description="Export a .keras model to SavedModel / ONNX / TFLite / "
        "TFLite Micro, validated in each runtime. Benchmark an export: "
        "`python -m export bench DIR`.",
        epilog=f"{EXIT_STATUS_HELP.rstrip('.')}; {PARTIAL_EXIT} partial export: the validated "
        "artifacts were published, the refused ones are listed in manifest.json under "
        "\"refused\" with their figure and fix (--strict: all or nothing, exit 2).")
    p.add_argument("model", help="the .keras file")
    p.add_argument("--out", required=True, help="export directory (replaced atomically)")
    options.add_flags(p)
    return p


def _bench_parser() -> ArgumentParser:
    p = ArgumentParser(prog=f"{PROG} bench",
                                description="Latency of each artifact in its runtime.")
    p.add_argument("dir", help="export directory (with manifest.json)")
    p.add_argument("--keras", default=None, help="Keras model to time beside the artifacts "
                   "(default: the manifest's source file)")
    p.add_argument("--threads", default="1,all", help="thread counts, e.g. 1,all")
    p.add_argument("--batches", default="1,256", help="batch sizes, e.g. 1,256")
    return p


def _positive(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{flag} takes comma-separated positive integers; received {text!r} "
                         f"(see {PROG} bench --help)")
    return value


def _dataset(name):
    import data  # lazily: only int8 exports need it
    bundle = data.load_dataset(name)
    return bundle.as_numpy("train")[0], bundle.as_numpy("test")[0]


def _verify(argv) -> int:
    p = ArgumentParser(prog=f"{PROG} verify", description="Run every artifact of an export "
                       "directory in the aarch64 runtimes on an emulated CPU, or in OpenVINO, "
                       "compare with Keras and with x86, and record it in the manifest.")
    p.add_argument("dir", nargs="?", help="export directory (with manifest.json)")
    p.add_argument("--target", default="aarch64", help="aarch64 (default) or openvino")
    p.add_argument("--cpu", default=None, help="emulated CPU of --target aarch64: cortex-a53, "
                   "cortex-a72 (default), cortex-a76, or max (QEMU's every-feature CPU)")
    p.add_argument("--data", default=None, metavar="DATASET", help="held-out data (test split) "
                   "the export was validated on, e.g. digits; needed for int8 artifacts")
    p.add_argument("--keras", default=None, help="Keras model to compare with (default: the "
                   "manifest's source file)")
    p.add_argument("--build-root", action="store_true", help="build the emulated arm64 root "
                   "once per machine (apt-get installs qemu-user-static/debootstrap if missing)")
    args = p.parse_args(argv)
    from export import verify, verify_root
    if args.build_root:
        print(f"arm64 root: {verify_root.build_root(install=True)}")
    if args.dir is None:
        if args.build_root:
            return 0
        raise UsageError(f"verify needs an export directory (see {PROG} verify --help)")
    verify.check_target(args.target, args.cpu)  # a typo fails before a dataset loads
    verify.verify_export(args.dir, target=args.target, cpu=args.cpu, keras_path=args.keras,
                         data=_dataset(args.data)[1] if args.data else None, log=print)
    print(f"Recorded in {args.dir}/manifest.json")
    return 0


def _explain(argv) -> int:
    p = ArgumentParser(prog=f"{PROG} explain", description="Per-layer int8 quantization "
                       "report of each int8 target (TFLite, int8 ONNX, TFLite Micro): "
                       "Markdown, JSON and a PNG of the error per layer.")
    p.add_argument("model", help="the .keras file")
    p.add_argument("--representative-data", required=True, metavar="DATASET",
                   help="dataset name: its train split calibrates, its test split is "
                   "measured on, e.g. digits")
    p.add_argument("--out", default=None, help="report directory, replaced atomically "
                   "(default: MODEL without .keras + _explain)")
    args = p.parse_args(argv)
    from export.explain import explain_model
    from export.explain_report import REPORT_MD, check_report_dir, markdown
    out = args.out or args.model.removesuffix(".keras") + "_explain"
    check_report_dir(out)  # before a dataset loads
    train, test = _dataset(args.representative_data)
    print(markdown(explain_model(args.model, out, representative_data=train,
                                 validation_data=test)), end="")
    print(f"Wrote {out}/{REPORT_MD}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_tensorflow()
    if argv[:1] == ["matrix"]:
        p = ArgumentParser(prog=f"{PROG} matrix", description="Export every "
                                    "activation (ours and Keras') to every format; print "
                                    "a Markdown table.")
        p.add_argument("--pattern", default="*", help="fnmatch over ours:<name>/keras:<name> "
                       "(or model names with --models)")
        p.add_argument("--models", action="store_true",
                       help="every registered model instead of every activation")
        p.add_argument("--micro", action="store_true",
                       help="every registered model to tflite_micro (flash, arena, ops)")
        p.add_argument("--untrained", action="store_true",
                       help="with --models/--micro: default-size untrained models, uniform "
                       "calibration (a conversion check; the default trains each briefly "
                       "on the digits first, as train.py does)")
        p.add_argument("--applications", action="store_true", help="every keras.applications "
                       "builder (no weights, smallest input; --pattern over builder names)")
        p.add_argument("--work-dir", default=None, help="--applications: one JSON per "
                       "builder, reused on a rerun, so a killed run resumes (default "
                       "runs/apps_matrix)")
        p.add_argument("--docs", default=None, metavar="FILE.md", help="--applications: "
                       "also regenerate the table between the apps-matrix markers of FILE.md")
        p.add_argument("--no-run", dest="run", action="store_false", help="--applications: "
                       "only the rows already in --work-dir (the others show as not run)")
        args = p.parse_args(argv[1:])
        from export import matrix, matrix_models
        if args.applications:
            from export import apps_matrix, apps_table
            table = apps_table.applications_table(
                args.pattern, args.work_dir or apps_matrix.WORK_DIR, docs=args.docs, run=args.run,
                log=lambda line: print(line, file=sys.stderr))
        elif args.micro:
            table = matrix.matrix_markdown(matrix_models.run_micro_matrix(
                args.pattern, trained=not args.untrained), "model")
        elif args.models:
            table = matrix.matrix_markdown(matrix_models.run_model_matrix(
                args.pattern, trained=not args.untrained), "model")
        else:
            table = matrix.matrix_markdown(matrix.run_matrix(
                matrix.activation_cases(args.pattern)))
        print(table, end="")
        return 0
    if argv[:1] == ["verify"]:
        return _verify(argv[1:])
    if argv[:1] == ["explain"]:
        return _explain(argv[1:])
    if argv[:1] == ["bench"]:
        args = _bench_parser().parse_args(argv[1:])
        from export.bench import bench_markdown, benchmark
        threads = [None if t.strip() == "all" else _positive(t, "--threads")
                   for t in args.threads.split(",")]
        batches = [_positive(b, "--batches") for b in args.batches.split(",")]
        print(bench_markdown(benchmark(args.dir, keras_path=args.keras, threads=threads,
                                       batches=batches)), end="")
        return 0
    args = _export_parser().parse_args(argv)
    from export.checks import check_options
    values = options.flag_values(args)
    # Cheap checks before TensorFlow and a dataset load (the dataset's name stands in
    # for it): a typo fails at once. The train split calibrates, the test split checks.
    check_options(**values)
    from export.exporter import export_model, manifest_markdown
    if values["representative_data"]:
        values["representative_data"], values["validation_data"] = _dataset(
            values["representative_data"])
    from export.errors import PartialExportError
    from export.refusals import summary
    try:
        manifest, status = export_model(args.model, args.out, **values), 0
    except PartialExportError as exc:
        manifest, status = exc.manifest, PARTIAL_EXIT
    print(manifest_markdown(manifest), end="")
    print(f"Wrote {args.out}/manifest.json")
    for entry in manifest["refused"]:
        print(f"{PROG}: {summary(entry)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(run_cli(main, prog=PROG))
