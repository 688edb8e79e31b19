"""VGG16: structure, preprocessing, and weight import from Keras .h5 (three layouts) and torchvision state dicts.

Equivalence: Keras / torch networks with random weights (random biases too, so bias mapping is tested) are saved,
imported, and run on the same input as ours; every compared output must agree to 1e-4 of its own scale.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.weights import parameter_count, randomize_keras_weights, relative_error

from colorjax.models.vgg16 import (
    BLOCK_OUTPUTS,
    KERAS_NOTOP_FILE,
    KERAS_TOP_FILE,
    TORCHVISION_URL,
    VGG16,
    gray_to_vgg_input,
    load_vgg16_params,
    vgg16_preprocessing,
)
from colorjax.weights.formats import overwrite_params, read_keras_h5

RELATIVE_TOLERANCE = 1e-4
TOP_OUTPUTS = ("fc1", "fc2", "logits")


def run_ours(params, images: np.ndarray, include_top: bool) -> dict[str, np.ndarray]:
    outputs = jax.jit(VGG16(include_top=include_top).apply)({"params": params}, jnp.asarray(images))
    return {name: np.asarray(value) for name, value in outputs.items()}


def random_images(size: int, seed: int = 0) -> np.ndarray:
    """Caffe-preprocessed-like input: pixel values in [0, 255] minus about their mean."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 255, (2, size, size, 3)) - 120.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- structure


def test_parameter_counts_match_keras_vgg16():
    def count(include_top):
        shapes = jax.eval_shape(
            lambda: VGG16(include_top=include_top).init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
        )
        return parameter_count(shapes["params"])

    # keras.applications.VGG16(...).count_params() with and without the top.
    assert count(True) == 138_357_544
    assert count(False) == 14_714_688


def test_output_shapes_with_top():
    shapes = jax.eval_shape(
        lambda: VGG16(include_top=True).init_with_output(jax.random.key(0), jnp.zeros((2, 224, 224, 3)))[0]
    )
    assert {name: value.shape for name, value in shapes.items()} == {
        "block1_conv2": (2, 224, 224, 64),
        "block2_conv2": (2, 112, 112, 128),
        "block3_conv3": (2, 56, 56, 256),
        "block4_conv3": (2, 28, 28, 512),
        "block5_conv3": (2, 14, 14, 512),
        "block5_pool": (2, 7, 7, 512),
        "fc1": (2, 4096),
        "fc2": (2, 4096),
        "logits": (2, 1000),
    }


def test_width_multiplier_scales_channels():
    outputs, _ = jax.eval_shape(
        lambda: VGG16(width=0.125).init_with_output(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    )
    assert [outputs[name].shape[-1] for name in BLOCK_OUTPUTS] == [8, 16, 32, 64, 64]


# ------------------------------------------------------------------------------------------ preprocessing


def test_gray_to_vgg_input_matches_keras_preprocess_input_on_gray_photos():
    skimage_color = pytest.importorskip("skimage.color")
    keras_vgg16 = pytest.importorskip("keras.applications.vgg16")
    gray = np.linspace(0.0, 1.0, 21, dtype=np.float64)
    rgb = np.repeat(gray[None, :, None], 3, axis=-1)  # (1, 21, 3): a strip of gray pixels
    L = skimage_color.rgb2lab(rgb)[..., :1].astype(np.float32)[None]

    caffe = np.asarray(gray_to_vgg_input(jnp.asarray(L), "caffe"))[0]
    expected_caffe = keras_vgg16.preprocess_input(255.0 * rgb.astype(np.float32))
    # 0.05 of 255: float32 lightness round trip; a wrong curve (e.g. L / 100) is off by up to ~15.
    np.testing.assert_allclose(caffe, expected_caffe, atol=0.05)

    torch_style = np.asarray(gray_to_vgg_input(jnp.asarray(L), "torch"))[0]
    expected_torch = (rgb - [0.485, 0.456, 0.406]) / [
        0.229,
        0.224,
        0.225,
    ]  # torchvision's documented norm
    np.testing.assert_allclose(torch_style, expected_torch, atol=1e-3)


def test_preprocessing_follows_the_weights_file():
    assert vgg16_preprocessing("weights/vgg16-397923af.pth") == "torch"
    assert vgg16_preprocessing(f"weights/{KERAS_NOTOP_FILE}") == "caffe"
    assert vgg16_preprocessing(None) == "caffe"
    with pytest.raises(ValueError, match="caffe"):
        gray_to_vgg_input(jnp.zeros((1, 4, 4, 1)), "imagenet")


# ------------------------------------------------------------------------------------------- Keras files


def keras_outputs(model, images: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    import keras

    layer_of = {"logits": "predictions"}
    probe = keras.Model(model.input, [model.get_layer(layer_of.get(n, n)).output for n in names])
    return dict(zip(names, (np.asarray(v) for v in probe(images)), strict=True))


def save_legacy_weights(model, path) -> bool:
    """Writes the keras-applications download layout (root `layer_names`), as Keras 2 `save_weights` did."""
    try:
        from keras.src.legacy.saving import legacy_h5_format
    except ImportError:
        return False
    with h5py.File(path, "w") as h5file:
        legacy_h5_format.save_weights_to_hdf5_group(h5file, model)
    return True


@pytest.fixture(scope="module")
def keras_notop(tmp_path_factory):
    """A random Keras VGG16 without top at 36x36 (odd pool sizes: 18, 9, 4, 2, 1), saved in every layout."""
    keras = pytest.importorskip("keras")
    directory = tmp_path_factory.mktemp("keras_notop")
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(36, 36, 3))
    randomize_keras_weights(model, seed=1)
    files = {
        "legacy whole-model .h5": directory / "model.h5",
        "Keras 3 .weights.h5": directory / "vgg16.weights.h5",
        "Keras 3 .keras": directory / "vgg16.keras",
    }
    model.save(files["legacy whole-model .h5"])
    model.save_weights(files["Keras 3 .weights.h5"])
    model.save(files["Keras 3 .keras"])
    if save_legacy_weights(model, directory / KERAS_NOTOP_FILE):
        files["legacy weights file (download layout)"] = directory / KERAS_NOTOP_FILE
    return model, files


def test_keras_h5_layouts_all_read_the_same_weights(keras_notop):
    model, files = keras_notop
    assert "legacy weights file (download layout)" in files, "Keras legacy h5 writer is gone"
    expected = {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}
    for layout, path in files.items():
        layers = read_keras_h5(path)
        assert set(layers) == set(expected), layout
        for name, arrays in expected.items():
            assert len(layers[name]) == len(arrays), (layout, name)
            for ours, theirs in zip(layers[name], arrays, strict=True):
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{layout}: {name}")


def test_keras_notop_outputs_match_keras(keras_notop):
    model, files = keras_notop
    images = random_images(36)
    params = load_vgg16_params(files["legacy whole-model .h5"], include_top=False)
    ours = run_ours(params, images, include_top=False)
    names = list(BLOCK_OUTPUTS) + ["block5_pool"]
    theirs = keras_outputs(model, images, names)
    for name in names:
        assert relative_error(ours[name], theirs[name]) <= RELATIVE_TOLERANCE, name


def test_keras_top_outputs_match_keras(tmp_path):
    """Top at 64x64 (block5_pool 2x2x512, so the flatten order matters); the 224 file differs only in fc1 rows."""
    keras = pytest.importorskip("keras")
    model = keras.applications.VGG16(
        weights=None, include_top=True, input_shape=(64, 64, 3), classifier_activation=None
    )
    randomize_keras_weights(model, seed=2)
    path = tmp_path / "vgg16_top.h5"
    model.save(path)
    images = random_images(64, seed=3)
    ours = run_ours(load_vgg16_params(path, include_top=True), images, include_top=True)
    theirs = keras_outputs(model, images, ["block5_conv3", *TOP_OUTPUTS])
    for name in theirs:
        assert relative_error(ours[name], theirs[name]) <= RELATIVE_TOLERANCE, name
    # The same file also serves a model without top: its fc layers are dropped.
    assert set(load_vgg16_params(path, include_top=False)) == {
        f"block{b}_conv{c}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for c in range(1, n + 1)
    }


def test_keras_full_vgg16_at_224_matches_keras(tmp_path):
    """The real shapes end to end (fc1 25088 x 4096; a 0.55 GB file, ~15 s)."""
    keras = pytest.importorskip("keras")
    model = keras.applications.VGG16(weights=None, include_top=True, classifier_activation=None)
    randomize_keras_weights(model, seed=4)
    path = tmp_path / KERAS_TOP_FILE
    model.save(path)
    images = random_images(224, seed=5)[:1]
    ours = run_ours(load_vgg16_params(path, include_top=True), images, include_top=True)
    theirs = keras_outputs(model, images, list(TOP_OUTPUTS))
    for name in TOP_OUTPUTS:
        assert relative_error(ours[name], theirs[name]) <= RELATIVE_TOLERANCE, name


# --------------------------------------------------------------------------------------- torchvision files

# torchvision's `cfgs["D"]`: conv widths, "M" = 2x2 max pool.
TORCHVISION_VGG16_CONFIG = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
]


def torchvision_layout_vgg16(pool_side: int):
    """torchvision.models.vgg16 rebuilt from plain torch.nn, so its state_dict has torchvision's keys."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class TorchVGG16(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [], 3
            for item in TORCHVISION_VGG16_CONFIG:
                if item == "M":
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                else:
                    layers += [
                        nn.Conv2d(channels, item, kernel_size=3, padding=1),
                        nn.ReLU(inplace=True),
                    ]
                    channels = item
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d((pool_side, pool_side))
            self.classifier = nn.Sequential(
                nn.Linear(512 * pool_side * pool_side, 4096),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(4096, 4096),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(4096, 1000),
            )

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    torch.manual_seed(0)
    return TorchVGG16().eval()


def test_torchvision_state_dict_outputs_match_torch(tmp_path):
    torch = pytest.importorskip("torch")
    model = torchvision_layout_vgg16(pool_side=2)  # 64x64 input: block5_pool is 2x2
    path = tmp_path / "vgg16-test.pth"
    # torchvision's own vgg16-397923af.pth (2017) predates the zip format: save in the legacy one.
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    images = random_images(64, seed=6)
    ours = run_ours(load_vgg16_params(path, include_top=True), images, include_top=True)

    with torch.no_grad():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        theirs = {"logits": model(x).numpy()}
        # Output of the ReLU after each block's last conv: features[3], [8], [15], [22], [29].
        for name, relu_index in zip(BLOCK_OUTPUTS, (3, 8, 15, 22, 29), strict=True):
            theirs[name] = model.features[: relu_index + 1](x).numpy().transpose(0, 2, 3, 1)
    for name, value in theirs.items():
        assert relative_error(ours[name], value) <= RELATIVE_TOLERANCE, name


def test_torchvision_fc1_rows_are_reordered_for_the_imagenet_7x7_grid(tmp_path):
    """At the real size (fc1 25088 inputs) the (C, H, W) -> (H, W, C) reorder must hit the right rows."""
    torch = pytest.importorskip("torch")
    side, channels = 7, 512
    fc1 = np.arange(channels * side * side, dtype=np.float32)[None, :].repeat(2, axis=0)  # (out=2, in)
    # The convs are not under test here: placeholders with the right keys keep the file tiny.
    state = {}
    for index in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28):
        state[f"features.{index}.weight"] = torch.zeros(1, 1, 3, 3)
        state[f"features.{index}.bias"] = torch.zeros(1)
    state["classifier.0.weight"] = torch.from_numpy(fc1)
    state["classifier.0.bias"] = torch.zeros(2)
    for index in (3, 6):
        state[f"classifier.{index}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{index}.bias"] = torch.zeros(2)
    path = tmp_path / "vgg16-layout.pth"
    torch.save(state, path)
    kernel = load_vgg16_params(path, include_top=True)["fc1"]["kernel"]
    # Row for NHWC position (h, w, c) must hold torch input index c * 49 + h * 7 + w.
    h, w, c = 3, 5, 17
    assert kernel[(h * side + w) * channels + c, 0] == c * side * side + h * side + w


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("filename", "include_top", "url_part"),
    [
        (KERAS_NOTOP_FILE, False, KERAS_NOTOP_FILE),
        (KERAS_TOP_FILE, True, KERAS_TOP_FILE),
        ("vgg16-397923af.pth", True, TORCHVISION_URL),
    ],
)
def test_missing_weights_file_names_the_download(tmp_path, filename, include_top, url_part):
    with pytest.raises(FileNotFoundError) as error:
        load_vgg16_params(tmp_path / filename, include_top=include_top, config_field="config.x")
    message = str(error.value)
    assert "\n" not in message
    assert url_part in message and filename in message and "config.x" in message


def test_notop_file_asked_for_the_top_says_which_file_has_it(keras_notop):
    _, files = keras_notop
    with pytest.raises(ValueError, match=KERAS_TOP_FILE):
        load_vgg16_params(files["legacy whole-model .h5"], include_top=True)


def test_non_vgg_and_non_hdf5_files_are_rejected(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as h5file:
        h5file.attrs["layer_names"] = [b"dense"]
        h5file.create_group("dense").attrs["weight_names"] = [b"dense/kernel:0"]
        h5file["dense"].create_dataset("dense/kernel:0", data=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no VGG16 layer 'block1_conv1'.*dense"):
        load_vgg16_params(tmp_path / "other.h5")
    (tmp_path / "garbage.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        load_vgg16_params(tmp_path / "garbage.h5")


def test_torchvision_files_need_no_torch_and_a_bad_one_is_a_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "vgg16-397923af.pth"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ValueError, match=r"vgg16-397923af.pth is neither a zip nor a legacy torch.save"):
        load_vgg16_params(path)


def test_chunked_layer_names_attribute_is_read(tmp_path):
    """Keras splits attributes over 64 KiB (Inception-ResNet-v2's ~780 layer names) into name0, name1, ..."""
    path = tmp_path / "chunked.h5"
    with h5py.File(path, "w") as h5file:
        h5file.attrs["layer_names0"] = [b"conv_a"]
        h5file.attrs["layer_names1"] = [b"pool", b"conv_b"]
        for name, size in (("conv_a", 1), ("pool", 0), ("conv_b", 2)):
            group = h5file.create_group(name)
            group.attrs["weight_names"] = [f"{name}/w{i}:0".encode() for i in range(size)]
            for i in range(size):
                group.create_dataset(f"{name}/w{i}:0", data=np.full((3,), i, np.float32))
    layers = read_keras_h5(path)
    assert list(layers) == ["conv_a", "conv_b"]
    assert [float(a[0]) for a in layers["conv_b"]] == [0.0, 1.0]


def test_weights_for_another_input_size_are_rejected_with_the_shapes():
    """A top saved for 64x64 input (fc1 2048 rows) must not load silently into a 32x32 model (fc1 512 rows)."""
    shapes = jax.eval_shape(lambda: VGG16(include_top=True).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    target = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), shapes["params"])
    loaded = {"fc1": {"kernel": np.zeros((2048, 4096), np.float32)}}
    with pytest.raises(ValueError, match=r"'fc1/kernel' has shape \(2048, 4096\).*\(512, 4096\)"):
        overwrite_params(target, loaded, source="vgg16_top.h5")
    with pytest.raises(ValueError, match="'fc9/kernel'.*does not have"):
        overwrite_params(target, {"fc9": {"kernel": np.zeros(1)}}, source="x.h5")
