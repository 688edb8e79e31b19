"""Inception-ResNet-v2 import: a Keras model with random weights, saved as .h5, must give the same outputs in Flax.

One Keras model (built once per module, at 75x75, the smallest size Keras accepts) serves every test here; the
Flax forward is compiled once. Also covers the Keras `_notop` layout and the Koalarization embedder loader.
"""

import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from helpers.weights import parameter_count, randomize_keras_weights, relative_error
from skimage import color as skcolor

from colorjax.models import SPECS, get_model
from colorjax.models import inception_resnet_v2 as irv2

KERAS_TOP_PARAMETERS = 55_873_736  # keras.applications.InceptionResNetV2().count_params()
KERAS_NOTOP_PARAMETERS = 54_336_736
SIZE = 75


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """The .h5 of a random-weight Keras Inception-ResNet-v2, a `_notop` copy, a test input and Keras's outputs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = pytest.importorskip("keras")
    model = keras.applications.InceptionResNetV2(weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    randomize_keras_weights(model, seed=0)
    rng = np.random.default_rng(0)

    directory = tmp_path_factory.mktemp("irv2")
    top_path = directory / irv2.WEIGHTS_FILE
    model.save(top_path)  # Keras 3 legacy .h5: the layers sit under /model_weights.

    # The Keras `_notop` file has the same layers minus `predictions`, at the file's root (save_weights layout).
    notop_path = directory / irv2.NOTOP_WEIGHTS_FILE
    with h5py.File(top_path, "r") as source, h5py.File(notop_path, "w") as target:
        weights = source["model_weights"]
        names = [n for n in weights.attrs["layer_names"] if n not in (b"predictions", "predictions")]
        for name in names:
            name = name.decode() if isinstance(name, bytes) else name
            source.copy(weights[name], target, name=name)
        target.attrs["layer_names"] = names

    rgb = rng.uniform(-1.0, 1.0, (2, SIZE, SIZE, 3)).astype(np.float32)
    features_model = keras.Model(model.input, model.get_layer("avg_pool").output)
    return {
        "top": top_path,
        "notop": notop_path,
        "rgb": rgb,
        "logits": np.asarray(model(rgb, training=False)),
        "features": np.asarray(features_model(rgb, training=False)),
        "count": model.count_params(),
    }


@pytest.fixture(scope="module")
def imported_top(keras_files):
    return irv2.variables_from_keras_h5(keras_files["top"], irv2.InceptionResNetV2())


def test_flax_outputs_match_keras(keras_files, imported_top):
    outputs = jax.jit(irv2.InceptionResNetV2().apply)(imported_top, keras_files["rgb"])
    assert outputs["logits"].shape == (2, 1000)
    assert outputs["features"].shape == (2, irv2.FEATURE_DIM)
    # Measured 8e-7 on this CPU for both; the bound is 1e-4 of the output scale.
    assert relative_error(outputs["logits"], keras_files["logits"]) <= 1e-4
    assert relative_error(outputs["features"], keras_files["features"]) <= 1e-4


def test_parameter_count_matches_keras(keras_files):
    for include_top, expected in [(True, KERAS_TOP_PARAMETERS), (False, KERAS_NOTOP_PARAMETERS)]:
        model = irv2.InceptionResNetV2(include_top=include_top)
        variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)))
        assert parameter_count(variables) == expected
    assert keras_files["count"] == KERAS_TOP_PARAMETERS


def test_notop_file_loads_without_top_and_is_refused_for_logits(keras_files, imported_top):
    notop = irv2.variables_from_keras_h5(keras_files["notop"], irv2.InceptionResNetV2(include_top=False))
    expected = dict(imported_top, params=dict(imported_top["params"]))
    del expected["params"]["predictions"]
    flat_notop = traverse_util.flatten_dict(notop)
    flat_expected = traverse_util.flatten_dict(expected)
    assert flat_notop.keys() == flat_expected.keys()
    assert all(np.array_equal(flat_notop[k], flat_expected[k]) for k in flat_expected)

    with pytest.raises(ValueError, match=irv2.WEIGHTS_FILE):
        irv2.variables_from_keras_h5(keras_files["notop"], irv2.InceptionResNetV2())


def test_class_count_must_match_file(keras_files):
    with pytest.raises(ValueError, match="has 1000 classes.*num_classes=1001"):
        irv2.variables_from_keras_h5(keras_files["top"], irv2.InceptionResNetV2(num_classes=1001))


def test_missing_file_names_it_and_its_url(tmp_path):
    missing = tmp_path / irv2.NOTOP_WEIGHTS_FILE
    with pytest.raises(FileNotFoundError) as error:
        irv2.variables_from_keras_h5(missing, irv2.InceptionResNetV2(include_top=False))
    message = str(error.value)
    assert str(missing) in message and "\n" not in message
    assert irv2.WEIGHTS_URL + irv2.NOTOP_WEIGHTS_FILE in message


def test_inception_input_is_gray_replicated_in_minus_one_to_one():
    L = np.full((1, 10, 20, 1), 50.0, np.float32)
    x = np.asarray(irv2.gray_to_inception_input(L, size=299))
    assert x.shape == (1, 299, 299, 3)
    expected = 2.0 * skcolor.lab2rgb(np.array([[[50.0, 0.0, 0.0]]]))[0, 0, 0] - 1.0
    assert np.max(np.abs(x - expected)) < 1e-4


def test_koalarization_loader_fills_frozen_embedder(keras_files, imported_top):
    kwargs = {"embedder": "inception_resnet_v2", "embedder_weights": str(keras_files["top"])}
    model = get_model("koalarization", **kwargs)
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    loaded = SPECS["koalarization"].load_pretrained(variables, kwargs)

    assert loaded["params"] is variables["params"]  # The trainable part is left alone.
    got = traverse_util.flatten_dict(loaded["frozen"]["embedder"])
    want = traverse_util.flatten_dict(imported_top)
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_koalarization_loader_errors_name_the_file(tmp_path):
    model = get_model("koalarization")
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    with pytest.raises(ValueError, match=irv2.WEIGHTS_FILE):
        SPECS["koalarization"].load_pretrained(variables, {"embedder_weights": ""})
    with pytest.raises(FileNotFoundError, match=irv2.WEIGHTS_URL):
        SPECS["koalarization"].load_pretrained(variables, {"embedder_weights": str(tmp_path / irv2.WEIGHTS_FILE)})


@pytest.mark.slow
def test_fid_feature_extractor_is_the_pooled_features_of_299_pixel_colour_images(keras_files):
    from colorjax.evaluation import evaluate, metrics

    extractor = evaluate.load_feature_extractor(keras_files["notop"])
    rgb = np.random.default_rng(1).uniform(0.0, 1.0, (2, 40, 56, 3)).astype(np.float32)
    features = np.asarray(jax.jit(extractor.features)(extractor.variables, rgb))
    assert features.shape == (2, irv2.FEATURE_DIM) and np.all(np.isfinite(features))
    # Keras preprocessing ("tf" mode, [-1, 1]) at the network's training size, 299 x 299.
    resized = jax.image.resize(rgb, (2, irv2.INPUT_SIZE, irv2.INPUT_SIZE, 3), "bilinear")
    direct = irv2.InceptionResNetV2(include_top=False).apply(extractor.variables, resized * 2 - 1)
    assert relative_error(features, direct["features"]) <= 1e-5
    assert metrics.fid(np.concatenate([features] * 2), np.concatenate([features] * 2)) < 1e-6


def test_fid_feature_extractor_errors_are_one_line(tmp_path):
    from colorjax.evaluation import evaluate

    not_h5 = tmp_path / "inception.h5"
    not_h5.write_text("not weights")
    for path, message in [(tmp_path / "absent.h5", "not found"), (not_h5, "not an HDF5 file")]:
        with pytest.raises(evaluate.EvaluateError, match=message) as error:
            evaluate.load_feature_extractor(path)
        assert "\n" not in str(error.value) and "--inception" in str(error.value)
