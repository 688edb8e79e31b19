"""colorjax.inference: the inference commands' XLA:CPU kernels, and broken weights refused."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from colorjax.inference.colorizer import Colorizer, InferenceError, prefer_fast_cpu_kernels
from colorjax.models import get_model


def test_inference_commands_prefer_onednn_only_where_it_takes_effect():
    script = "import os; from colorjax.inference.colorizer import prefer_fast_cpu_kernels as p; print(p(), os.environ['XLA_FLAGS'])"
    for given, added, flags in (
        ("", "True", "--xla_cpu_use_onednn=true"),
        ("--xla_cpu_use_onednn=false", "False", "--xla_cpu_use_onednn=false"),  # the user's choice wins
    ):
        env = {**os.environ, "XLA_FLAGS": given}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split() == [added, flags]
    jax.devices()  # in a process whose backends already run the flag would do nothing: it is not added
    environ = {}
    assert not prefer_fast_cpu_kernels(environ) and environ == {}


def test_weights_that_predict_nan_are_refused_instead_of_colouring_black():
    """A diverged run's weights give NaN chroma, which once came out as an all-black photo with exit 0."""
    model = get_model("regression", width=4)
    variables = model.init(jax.random.key(0), np.zeros((1, 32, 32, 1), np.float32))
    photo = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    good = Colorizer(model, variables, resolution=32, description="step 3 of runs/x")
    assert good.colorize(photo).shape == photo.shape
    params = dict(variables["params"])
    params["chroma_head"] = {**params["chroma_head"], "bias": np.full((2,), np.nan, np.float32)}
    broken = Colorizer(model, {**variables, "params": params}, resolution=32, description="step 3 of runs/x")
    for predict in (broken.colorize, broken.predict_chroma):
        with pytest.raises(InferenceError, match=r"model of step 3 of runs/x predicts NaN or infinite colours"):
            predict(photo)


@pytest.mark.parametrize("size", [(40, 53), (13, 100), (255, 1000), (9, 17), (5, 40), (20, 10)])
def test_bilinear_chroma_upsampling_by_two_taps_equals_jax_image_resize(size):
    """The gathered two-tap enlargement (`linear_taps`) is the linear resize the pipeline always used, within float32
    rounding; an output smaller on an axis ((5, 40), (20, 10)) keeps the antialiased resize."""
    from colorjax.inference.colorizer import upsample_chroma

    chroma = jax.numpy.asarray(np.random.default_rng(0).uniform(-110, 110, (9, 17, 2)).astype(np.float32))
    want = jax.image.resize(chroma, (*size, 2), method="linear")
    np.testing.assert_allclose(upsample_chroma(chroma, size, "bilinear"), want, rtol=0, atol=1e-3)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize(
    "shape, size",
    [((3651, 40, 3), (256, 40)), ((40, 5477, 1), (40, 512)), ((300, 256, 2), (256, 256)), ((37, 9, 1), (256, 7))],
)
def test_resize_by_taps_equals_jax_image_resize_and_opencv(shape, size, antialias):
    """`resize_linear` (a few taps per output sample) computes the dense `jax.image.resize` it replaced, within
    float32 rounding, shrinking (antialiased or not, by up to 21x) and enlarging; without antialiasing it is
    OpenCV's INTER_LINEAR `cv2.resize` (DDColor's input resize) within 1 float32 ulp."""
    import cv2

    from colorjax.inference.colorizer import resize_linear

    image = np.random.default_rng(sum(shape)).uniform(0, 1, shape).astype(np.float32)
    got = np.asarray(resize_linear(jax.numpy.asarray(image), size, antialias))
    want = jax.image.resize(image, (*size, shape[-1]), method="linear", antialias=antialias)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    if not antialias:
        opencv = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR).reshape(got.shape)
        np.testing.assert_allclose(got, opencv, rtol=0, atol=1.2e-7)
