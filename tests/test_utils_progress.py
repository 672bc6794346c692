"""One progress display (utils.progress) for training epochs and evaluation phases:
a bar on a terminal, exactly one line per phase anywhere else."""
import io

from utils.progress import Progress, format_fields


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_line_per_phase_and_a_terminal_a_bar_then_the_same_line():
    lines = {}
    for kind, stream in (("log", io.StringIO()), ("tty", _Terminal())):
        for epoch in (1, 2):
            phase = Progress(f"epoch {epoch}/2", 14, stream=stream)
            for step in (7, 14):
                phase.update(step, loss=0.5, samples_per_s=1000.0)
            phase.finish(loss=0.25, val_accuracy=0.875, samples_per_s=61240.4)
        lines[kind] = stream.getvalue()
    log = lines["log"].splitlines()
    assert len(log) == 2 and log[0].startswith("epoch 1/2 loss 0.2500 val_accuracy 0.8750 "
                                               "61,240 samples/s ")
    assert "[" not in lines["log"] and "\r" not in lines["log"]
    tty = lines["tty"]
    assert "\repoch 1/2 [============>...........] 7/14 steps loss 0.5000 1,000 samples/s" in tty
    # The bar's line ends with the log's line, so both outputs say the same.
    finals = [chunk.split("\r")[-1].rstrip() for chunk in tty.split("\n") if chunk]
    assert finals == [line.rstrip() for line in log]


def test_evaluation_phase_as_context_manager():
    pipe = io.StringIO()
    with Progress("model.tflite", 1000, unit="images", stream=pipe) as bar:
        bar.update(400)
        bar.update(1000)
    assert pipe.getvalue().startswith("model.tflite 1,000 images ") and \
        pipe.getvalue().count("\n") == 1
    failed = _Terminal()
    try:
        with Progress("broken.onnx", 1000, unit="images", stream=failed) as bar:
            bar.update(500)
            raise RuntimeError("runtime failed")
    except RuntimeError:
        pass
    assert failed.getvalue().endswith("500/1,000 images \n")  # bar ended, no result line
    silent = _Terminal()
    with Progress("x", 10, stream=silent, silent=True) as bar:
        bar.update(5)
    assert silent.getvalue() == ""


def test_fields_read_naturally():
    assert format_fields({"loss": 0.41, "images": 1000, "samples_per_s": 61240.2,
                          "note": None}) == "loss 0.4100 1,000 images 61,240 samples/s"
