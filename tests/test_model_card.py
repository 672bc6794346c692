"""The model card: what a model is travels inside the .keras file and every artifact,
is read back by each format's own API (not our reader), and decides how int8 is judged."""
import ast
import json
import re
import zipfile

import numpy as np
import pytest

import models
from models.card import CARD_KEY, CARD_MEMBER, card_json
from utils.cli import run_cli


@pytest.fixture(scope="module")
def digits():
    import data

    bundle = data.load_dataset("digits")
    return bundle.as_numpy("train"), bundle.as_numpy("test")


def _user_model(digits, head_activation, seed=0):
    """A user's own model (no card), trained briefly on the digits."""
    import keras

    (x, y), _ = digits
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(24, activation="relu"),
                              keras.layers.Dense(10, activation=head_activation)])
    target = y if head_activation == "softmax" else np.eye(10, dtype="float32")[y]
    model.compile("adam", "sparse_categorical_crossentropy" if head_activation == "softmax"
                  else "mse")
    model.fit(x[:2000], target[:2000], epochs=3, batch_size=64, verbose=0)
    return model


def _rewrite_member(src, dst, member, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, edit(data) if info.filename == member else data)


def _renamed(src, dst, name):
    def edit(data):
        config = json.loads(data)
        config["config"]["name"] = name
        return json.dumps(config).encode()
    _rewrite_member(src, dst, "config.json", edit)


def test_registry_models_carry_their_card_through_keras_byte_for_byte(tmp_path):
    som = models.create_model("som", input_shape=(32, 32, 1), grid=(3, 3))
    card = models.model_card(som)
    assert (card["family"], card["decision"], card["classes"]) == ("som", "argmin", None)
    assert card["learning_rule"] == "som" and "evaluate_rule" in card["hooks"]
    som.save(tmp_path / "som.keras")
    stored = zipfile.ZipFile(tmp_path / "som.keras").read(CARD_MEMBER)
    assert stored == card_json(card).encode()
    _renamed(tmp_path / "som.keras", tmp_path / "renamed.keras", "my_map")
    loaded = models.load_model(tmp_path / "renamed.keras")
    assert loaded.name == "my_map" and models.model_card(loaded) == card
    loaded.save(tmp_path / "again.keras")           # Keras' own save keeps it, unchanged
    assert zipfile.ZipFile(tmp_path / "again.keras").read(CARD_MEMBER) == stored
    exam = models.model_card(models.create_model("exam_mlp"))
    assert exam["classes"]["count"] == 1000 and exam["input"]["shape"] == [32, 32, 1]


@pytest.mark.slow
def test_the_card_is_read_back_by_each_format_own_api(digits, tmp_path):
    import onnx
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema

    import export

    (x, _), (x_test, _) = digits
    model = _user_model(digits, "softmax")
    models.update_card(model, classes={"count": 10, "names": [f"digit {i}" for i in range(10)]})
    text = card_json(models.model_card(model))
    out = tmp_path / "out"
    manifest = export.export_model(model, out, formats=("saved_model", "onnx", "tflite",
                                                        "tflite_micro"),
                                   quantize=(None, "int8"), representative_data=x[:500],
                                   validation_data=x_test)
    assert manifest["model_card"]["classes"]["names"][3] == "digit 3"
    for name in ("model.onnx", "model_int8.onnx"):
        props = {p.key: p.value for p in onnx.load(str(out / name)).metadata_props}
        assert props[CARD_KEY] == text
    for name in ("model.tflite", "model_int8.tflite", "model_micro.tflite"):
        fb = schema.Model.GetRootAs((out / name).read_bytes(), 0)
        entries = {fb.Metadata(i).Name().decode(): fb.Metadata(i).Buffer()
                   for i in range(fb.MetadataLength())}
        assert fb.Buffers(entries[CARD_KEY]).DataAsNumpy().tobytes().decode() == text
    loaded = tf.saved_model.load(str(out / "saved_model"))
    assert loaded.signatures["model_card"]()["model_card"].numpy().decode() == text
    assert (out / "saved_model" / "assets" / "model_card.json").read_text() == text
    header = (out / "model_data.h").read_text()
    literal = re.search(r"g_model_card\[\] = (\".*\");", header).group(1)
    assert ast.literal_eval(literal) == text      # C and Python share these escapes


@pytest.mark.slow
def test_a_renamed_trained_som_is_judged_on_its_best_matching_unit(digits, tmp_path):
    import export

    (x, _), (x_test, _) = digits
    som = models.create_model("som", input_shape=(32, 32, 1), grid=(4, 4))
    models.learn(som, x[:1000], epochs=3, seed=0)
    som.save(tmp_path / "som.keras")
    _renamed(tmp_path / "som.keras", tmp_path / "renamed.keras", "exam_mlp")  # a lying name
    manifest = export.export_model(tmp_path / "renamed.keras", tmp_path / "out",
                                   formats=("tflite",), quantize="int8",
                                   representative_data=x[:500], validation_data=x_test)
    validation = manifest["artifacts"][0]["validation"]
    assert validation["decision"] == "argmin"
    # the reference: LiteRT's own interpreter and numpy's argmin, not our runner
    got = _litert(tmp_path / "out" / manifest["artifacts"][0]["path"], x_test[:300])
    ref = som.predict(x_test[:300], verbose=0)
    assert np.mean(got.argmin(1) == ref.argmin(1)) >= 0.98
    assert validation["top1_agreement"] >= 0.98


def _litert(path, x):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner()
    return np.concatenate([list(runner(input=x[i:i + 1]).values())[0] for i in range(len(x))])


@pytest.mark.slow
@pytest.mark.parametrize("head, decision", [("softmax", "argmax"), (None, "regression")])
def test_a_plain_model_is_judged_by_what_its_head_says(digits, tmp_path, head, decision):
    import export

    (x, _), (x_test, _) = digits
    model = _user_model(digits, head)
    card = models.model_card(model)
    assert card["decision"] == decision and card["assumed"].startswith("no model card")
    manifest = export.export_model(model, tmp_path / "out", formats=("tflite",),
                                   quantize=(None, "int8"), representative_data=x[:500],
                                   validation_data=x_test)
    float32, int8 = manifest["artifacts"]
    assert float32["validation"]["max_abs_diff"] <= 1e-5
    assert int8["validation"]["decision"] == decision
    ref = model.predict(x_test[:1000], verbose=0)
    got = _litert(tmp_path / "out" / int8["path"], x_test[:200])
    if decision == "argmax":
        assert np.mean(got.argmax(1) == ref[:200].argmax(1)) >= 0.98
    else:  # each output within 5% of the Keras outputs' range, as validation judges it
        span = ref.max() - ref.min()
        assert np.mean(np.all(np.abs(got - ref[:200]) <= 0.05 * span, 1)) >= 0.98


@pytest.mark.parametrize("edit, message", [
    (lambda c: dict(c, classes={"count": 10, "names": None}),
     r"bad\.keras' \(assets/model_card\.json\) says 10 classes, but the model outputs 1000"),
    (lambda c: dict(c, decision="vote"), r"names the decision 'vote'; use one of argmax"),
])
def test_a_card_that_does_not_fit_its_model_is_one_line_and_exit_2(tmp_path, capsys, edit,
                                                                  message):
    from evaluate import main as evaluate_main
    from export.__main__ import PROG, main

    models.create_model("exam_mlp").save(tmp_path / "m.keras")
    _rewrite_member(tmp_path / "m.keras", tmp_path / "bad.keras", CARD_MEMBER,
                    lambda data: card_json(edit(json.loads(data))).encode())
    out = tmp_path / "out"
    assert run_cli(main, [str(tmp_path / "bad.keras"), "--out", str(out)], PROG) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not out.exists()
    results = tmp_path / "results.json"
    argv = [str(tmp_path / "bad.keras"), "--quiet", "--limit", "50", "--json", str(results)]
    assert run_cli(evaluate_main, argv, "evaluate.py") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("evaluate.py: error: ") and \
        re.search(message, err), err
    assert not results.exists()


@pytest.fixture(scope="module")
def trained_tflite(digits, tmp_path_factory):
    """A user's softmax model trained briefly on the digits, exported to TFLite."""
    import export

    model = _user_model(digits, "softmax")
    out = tmp_path_factory.mktemp("trained") / "out"
    manifest = export.export_model(model, out, formats=("tflite",))
    return out / manifest["artifacts"][0]["path"], card_json(models.model_card(model))


@pytest.mark.slow
def test_corrupt_card_bytes_inside_a_tflite_are_exit_2_in_evaluate(trained_tflite, digits,
                                                                  tmp_path, capsys):
    from evaluate import main

    path, text = trained_tflite
    content = path.read_bytes()
    at, end = content.find(text.encode()), content.find(text.encode()) + len(text.encode())
    assert at > 0 and content.count(text.encode()) == 1       # the card's buffer, as written
    bad = tmp_path / "model.tflite"
    # Every byte of the card flipped in place: the flatbuffer's offsets and the weights
    # are intact, so LiteRT still loads it and computes the same function.
    bad.write_bytes(content[:at] + bytes(b ^ 0x5A for b in content[at:end]) + content[end:])
    x = digits[1][0][:32]
    np.testing.assert_array_equal(_litert(bad, x), _litert(path, x))
    results = tmp_path / "results.json"
    argv = [str(bad), "--quiet", "--limit", "50", "--json", str(results)]
    assert run_cli(main, argv, "evaluate.py") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"'{bad}' (metadata {CARD_KEY}) is not valid JSON" in err, err
    assert not results.exists()
