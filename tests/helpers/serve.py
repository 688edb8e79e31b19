"""The web app's tests' helpers: a browser's steps through the test client (sign up, log in, the page's CSRF token,
upload), `HeldColorizer` (a model held mid-photo, for what happens while a job runs) and the test model
`hint_colorizer`: a tiny SIGGRAPH17 whose weights, set by hand, carry the user's colour points through
(test_serve's hint tests and the real-browser test)."""

import functools
import io
import re
import threading

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import models
from colorjax.inference.colorizer import Colorizer

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
PASSWORD = "correct horse battery"


def csrf(client, page="/login"):
    return CSRF.search(client.get(page).text).group(1)


def sign_up(client, username="alice", password=PASSWORD):
    token = csrf(client, "/signup")
    return client.post(
        "/signup",
        data={
            "csrf_token": token,
            "username": username,
            "password": password,
            "password2": password,
        },
        follow_redirects=False,
    )


def log_in(client, username="alice", password=PASSWORD):
    return client.post(
        "/login",
        data={"csrf_token": csrf(client), "username": username, "password": password},
        follow_redirects=False,
    )


def png_bytes(rgb, **options):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=options.pop("format", "PNG"), **options)
    return buffer.getvalue()


def upload(client, data, name="photo.png", **fields):
    token = CSRF.search(client.get("/").text)
    headers = {"X-CSRF-Token": token.group(1)} if token else {}
    return client.post("/api/colorize", files={"image": (name, data, "image/png")}, data=fields, headers=headers)


class HeldColorizer:
    """A colorizer whose `predict` waits, while `hold` is set, until `release` is (`entered` says it got there): a
    photo's job held in the middle, to see what the app does meanwhile. Everything else is `inner`'s."""

    def __init__(self, inner: Colorizer):
        self.inner = inner
        self.hold, self.entered, self.release = threading.Event(), threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict(self, *args, **kwargs):
        if self.hold.is_set():
            self.entered.set()
            self.release.wait(120)
        return self.inner.predict(*args, **kwargs)


def hint_colorizer() -> Colorizer:
    """A 1/16-width SIGGRAPH17 whose weights, set by hand, copy the user's colour points to its output, spread
    over 5x5 working pixels: block 1 splits the hint's a and b into positive and negative parts (ReLUs), the
    full-resolution path (shortcut 1->10, block 10) sums them over 3x3 twice and the output conv recombines them;
    every other weight is zero. Without hints every photo gets the same sepia chroma (the output bias)."""
    from flax import traverse_util

    model = models.get_model("siggraph17", width=1 / 16)
    shapes = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    params = {k: np.zeros(v.shape, v.dtype) for k, v in traverse_util.flatten_dict(shapes["params"], sep="/").items()}
    # Input channels: (L - 50) / 100, a / 110, b / 110, mask; channels 0-3 carry a+, a-, b+, b-.
    params["model1_0/kernel"][1, 1, [1, 1, 2, 2], [0, 1, 2, 3]] = [1, -1, 1, -1]
    params["model1_2/kernel"][1, 1, range(4), range(4)] = 1
    params["model1_4/scale"][:] = 1
    for name in ("model1short10_0", "model10_1"):
        params[f"{name}/kernel"][:, :, range(4), range(4)] = 1
    params["model_out_0/kernel"][0, 0, range(4), [0, 0, 1, 1]] = np.array([1, -1, 1, -1]) / 3
    params["model_out_0/bias"][:] = [0.05, 0.2]
    # Batch norms at their initial statistics (mean 0, variance 1): the identity where the scale is 1.
    batch_stats = traverse_util.path_aware_map(
        lambda path, leaf: (jnp.ones if path[-1] == "var" else jnp.zeros)(leaf.shape), shapes["batch_stats"]
    )
    params = traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in params.items()}, sep="/")
    variables = {"params": params, "batch_stats": batch_stats}
    return Colorizer(model=model, variables=variables, resolution=32, description="hint test")
