#!/usr/bin/env python3
"""Train a registered model on a dataset; everything lands in one run directory.

    python train.py                      # exam_mlp on the embedded MNIST digits -> runs/exam_mlp
    python train.py --model deep_mlp_8x64 --dataset fashion_mnist --epochs 10 --out runs/fm
    python train.py --out runs/fm --resume
    python train.py --compare-activations relu,sigmoid,tanh,gelu --out runs/compare
    python train.py --compare-remedies --epochs 10 --out runs/remedies
"""
from __future__ import annotations

import argparse
import signal
import sys

from utils.cli import ArgumentParser, key_value, quiet_tensorflow, run_cli
from utils.errors import UsageError
from utils.progress import format_fields

EPILOG = """\
run directory (--out, default runs/<model>):
  model.keras            trained model (keras.saving.load_model(..., safe_mode=True)); with
                         --early-stopping the best val_loss epoch's weights
  config.json            every setting of the run (what --resume checks against)
  history.json/.csv      per-epoch loss, accuracy, val_loss, val_accuracy, lr, time, samples, samples/s
                         (+ grad_norm/<layer> with --track-gradients, grad_norm/global and
                         grad_norm/global_clipped with --clip-norm/--clip-value)
  summary.json           test loss/accuracy, dead-unit fraction, parameter count, best_epoch
  audit.md/.json         per-layer parameter audit (models.audit)
  curves.png             loss and accuracy plots; gradient_norms.png with --track-gradients
  tensorboard/           TensorBoard logs (tensorboard --logdir <out>/tensorboard)
  checkpoints/epoch-N/   written atomically after every epoch: weights, optimizer state,
                         dropout/RNG state; the data order of epoch k is f(seed, k);
                         with --save-freq N also epoch-K-step-S/ every N steps
  export/                with --export (manifest.json lists the artifacts)
  plots/                 a rule model's own learning_plots

Models that learn by their own rule (Hopfield, SOM, ...; models.rules) train by it into the
same directory: --epochs/--seed/--lr/--batch-size map to the rule's parameters, --rule-arg to
the others; gradient-descent flags are refused for them.

Ctrl-C / SIGTERM stops at the next step boundary and keeps the last finished epoch;
--resume continues and ends with exactly the weights of an uninterrupted run.
--resume --epochs N continues a finished run to N epochs, bitwise equal to a run started
with --epochs N (constant learning rate; cosine/step schedules are refused, saying why).

exit status: 0 done; 2 bad input (unknown model/activation/dataset, bad data folder,
NaN/inf data, diverged loss, --resume with a different config, unwritable --out),
always one line on stderr and nothing already saved is lost; 128+signal when interrupted;
75 a worker of a --strategy multiworker cluster was lost (killed, or no all-reduce finished
for --worker-timeout seconds, default {worker_timeout:g}): one line names it, the last complete checkpoint
is kept, restart every worker with --resume; 1 internal error (a bug, not your input:
ZOO_DEBUG=1 prints the traceback).
"""


def build_parser() -> argparse.ArgumentParser:
    from data._shape import add_shape_arguments
    from training.config import DEFAULT_WORKER_TIMEOUT  # run_cli has imported TensorFlow already

    p = ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0],
                       epilog=EPILOG.format(worker_timeout=DEFAULT_WORKER_TIMEOUT),
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       argument_default=argparse.SUPPRESS)
    p.add_argument("--model", help="registered model (python -m models list); default exam_mlp")
    p.add_argument("--activation",
                   help="hidden activation (python -m activations list); default: the model's own")
    p.add_argument("--dataset", help="digits (default; 5,000 real MNIST digits, no download), "
                   "sklearn_digits, fashion_mnist (apt-get install dataset-fashion-mnist), "
                   "tfds:<name> (e.g. tfds:cifar10, tfds:imagenet_resized/32x32; downloads only with "
                   "TFDS_DOWNLOAD=1 in the environment), a folder with "
                   "one subfolder of images per class, a .npz file with arrays x, y, or a "
                   "directory written by python -m data convert (streamed from disk)")
    add_shape_arguments(p, "a converted dataset")  # the model is built for the data's shape
    p.add_argument("--epochs", type=int, help="number of epochs (default 20; a rule model: its "
                   "rule's default); with --resume on a finished run: continue it to this many")
    p.add_argument("--batch-size", dest="batch_size", type=int,
                   help="batch size (default 64; a rule model: its rule's, if it has one)")
    p.add_argument("--lr", type=float,
                   help="learning rate (default 3e-3; a rule model: its rule's learning_rate)")
    p.add_argument("--optimizer", help="adam (default), sgd (momentum 0.9), rmsprop or adamw")
    p.add_argument("--seed", type=int, help="seed for weights, dropout and data order (default 0); "
                   "same seed on the same machine -> identical weights")
    p.add_argument("--out", help="run directory (default runs/<model>)")
    p.add_argument("--resume", action="store_true", default=False,
                   help="continue the run in --out from its last checkpoint; flags you pass must "
                   "match the saved config (exit 2 otherwise), others are taken from it")
    p.add_argument("--overwrite", action="store_true", default=False,
                   help="replace the run already in --out (deletes only the files a run writes)")
    p.add_argument("--quiet", action="store_true", help="one log line per epoch, no progress bar")
    p.add_argument("--early-stopping", dest="early_stopping", type=int, metavar="PATIENCE",
                   help="stop when val_loss has not improved for PATIENCE epochs")
    p.add_argument("--lr-schedule", dest="lr_schedule",
                   help="constant (default), cosine (decay to 0 over the run) or step "
                   "(x0.1 at 50%% and 75%% of the steps)")
    p.add_argument("--mixed-precision", dest="mixed_precision", action="store_true",
                   help="bfloat16 compute on CPU, float16 with loss scaling on GPU")
    p.add_argument("--track-gradients", dest="track_gradients", action="store_true",
                   help="record and plot the mean per-layer gradient norm of every epoch")
    p.add_argument("--clip-norm", dest="clip_norm", type=float, metavar="X",
                   help="clip the gradient to global L2 norm X before every step (history: "
                   "grad_norm/global before and grad_norm/global_clipped after clipping)")
    p.add_argument("--clip-value", dest="clip_value", type=float, metavar="X",
                   help="clip every gradient element to [-X, X] instead")
    p.add_argument("--qat-epochs", dest="qat_epochs", type=int, metavar="K",
                   help="after the float epochs, train K more quantization-aware (fake int8 "
                   "weights and activations, training.quantize_aware); model.keras is then the "
                   "QAT model, whose int8 exports take the trained ranges; with --resume on a "
                   "finished run: add them to it")
    p.add_argument("--pretrain", metavar="METHOD",
                   help="rbm: pre-train the hidden Dense layers one level at a time as RBMs on "
                   "the training images (no labels), then fine-tune with backprop")
    p.add_argument("--compare-activations", dest="compare", metavar="LIST", default=None,
                   help="comma-separated activations (e.g. relu,sigmoid,tanh,gelu): train once "
                   "per activation into <out>/<activation>/ and write comparison.png/.md/.json")
    p.add_argument("--compare-remedies", dest="remedies", action="store_true", default=False,
                   help="train the course's remedies for vanishing gradients on the deep sigmoid "
                   "MLP the same way (baseline, Glorot init, RBM pre-training, ReLU, residual, "
                   "LSTM) into <out>/<remedy>/ and write comparison.png/.md/.json")
    p.add_argument("--num-classes", dest="num_classes", metavar="N|auto",
                   help="output units: auto = the dataset's class count; default keeps the "
                   "model's head (exam_mlp: 1000, labels 0..k-1 train it unchanged)")
    p.add_argument("--export", action="store_true",
                   help="after training, export model.keras with export.export_model to <out>/export")
    p.add_argument("--strategy", help="tf.distribute strategy: default, mirrored (all local "
                   "devices) or multiworker (cluster from the TF_CONFIG environment variable)")
    p.add_argument("--worker-timeout", dest="worker_timeout", type=float, metavar="SECONDS",
                   help="multiworker: longest wait for the other workers in one all-reduce "
                   "before they are declared lost and this worker exits 75 "
                   f"(default {DEFAULT_WORKER_TIMEOUT:g})")
    p.add_argument("--save-freq", dest="save_freq", type=int, metavar="N",
                   help="also checkpoint every N steps inside an epoch (checkpoints/epoch-K-step-S/), "
                   "so a run killed mid-epoch resumes there, bitwise equal to an uninterrupted run")
    p.add_argument("--limit", type=int, help="use at most N examples per source split (quick runs)")
    p.add_argument("--steps-per-execution", dest="steps_per_execution", type=int,
                   help="optimizer steps per compiled call (default 32; speed only)")
    p.add_argument("--no-jit", dest="jit_compile", action="store_false",
                   help="do not XLA-compile the training step")
    p.add_argument("--model-arg", dest="model_overrides", action="append", type=key_value,
                   metavar="KEY=VALUE", help="model builder argument, repeatable, e.g. "
                   "--model-arg depth=6 --model-arg dropout=0.2 (an unknown KEY is refused naming "
                   "the accepted ones); VALUE is JSON (numbers, true/false, lists) or else a string")
    p.add_argument("--rule-arg", dest="rule_args", action="append", type=key_value,
                   metavar="KEY=VALUE", help="parameter of a model's own learning rule "
                   "(models that do not learn by backprop), repeatable; JSON or string as above")
    return p


def _num_classes(value: str):
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--num-classes must be an integer or 'auto'; received {value!r}.") from None


def _as_dict(pairs: list) -> dict:
    values = {}
    for key, value in pairs:
        if key in values:
            raise UsageError(f"{key} is given twice ({values[key]!r} and {value!r}); pass it "
                             "once (see train.py --help).")
        values[key] = value
    return values


def main(argv=None) -> int:
    args = vars(build_parser().parse_args(argv))
    resume, compare, overwrite = args.pop("resume"), args.pop("compare"), args.pop("overwrite")
    remedies = args.pop("remedies")
    if "num_classes" in args:
        args["num_classes"] = _num_classes(args["num_classes"])
    for name in ("model_overrides", "rule_args"):
        if name in args:
            args[name] = _as_dict(args[name])
    quiet_tensorflow()
    import training

    if remedies and (compare is not None or "model" in args or "pretrain" in args):
        raise UsageError("--compare-remedies picks the models itself; drop --compare-activations, "
                         "--model and --pretrain.")
    if remedies:
        args.setdefault("out", "runs/remedies")
        args["model"] = "deep_mlp_sigmoid_8x64"  # the network every remedy starts from
    if resume and compare is None and not remedies:
        out = args.get("out") or training.TrainConfig(model=args.get("model", "exam_mlp")).out
        config = training.resume_config(out, args)
    else:
        config = training.TrainConfig(**args)
    if compare is not None or remedies:
        key, plural = ("remedy", "remedies") if remedies else ("activation", "activations")
        report = (training.compare_remedies(config, resume=resume, overwrite=overwrite)
                  if remedies else training.compare_activations(config, compare.split(","),
                                                                resume=resume, overwrite=overwrite))
        print(f"comparison of {len(report['rows'])} {plural}:")
        for row in report["rows"]:
            print(f"  {row[key]:16s} test acc {row['test_accuracy']:.4f}  "
                  f"dead {row['dead_fraction']:.1%}  converged at epoch "
                  f"{row['epochs_to_converge'] or 'never'}  first-layer grad "
                  f"{row['first_layer_grad_norm_first_epoch']:.2e}")
        for name, path in report["paths"].items():
            print(f"  {name:15s} {path}")
        return 0
    try:
        result = training.train(config, resume=resume, overwrite=overwrite)
    except training.WorkerLostError as exc:
        # Not bad input (2) nor a bug (1): the run can be continued, hence its own status.
        print(f"train.py: error: {exc}", file=sys.stderr)
        return training.WORKER_LOST_EXIT
    if result.interrupted:
        print(f"interrupted by {result.interrupted} after epoch {result.epochs_completed}/"
              f"{result.config.epochs}; continue with: python train.py --out {config.out} --resume",
              file=sys.stderr)
        return 128 + int(signal.Signals[result.interrupted])
    if not result.chief:
        return 0  # another worker of a cluster: the chief reports and writes the run
    if result.test_loss is not None:
        print(f"test accuracy {result.test_accuracy:.4f} (loss {result.test_loss:.4f}) after "
              f"{result.epochs_completed} epochs")
    elif result.test_metrics:
        print(f"test {format_fields(result.test_metrics)} after {result.epochs_completed} "
              f"epochs of rule {result.learning_rule}")
    print(training.describe_outputs(result))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="train.py"))
