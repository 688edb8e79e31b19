"""DDColor's whole pipeline: colorjax's `Colorizer` against the authors' `ColorizationPipeline.process` on photos.

The reference is piddnad/DDColor `ddcolor/pipeline.py` `ColorizationPipeline.process` (the same steps as modelscope's
`pipelines/cv/ddcolor_image_colorization_pipeline.py`, whose module needs modelscope's framework extras to import),
re-stated step by step in `authors_process` below around the authors' own network (`colorjax.bench.ddcolor_torch`,
the modelscope wheel's copy of their modules) at the CPU width of configs/ddcolor.py:cpu, with random weights written
in the published `.pth` layout. colorjax reads that file through `--weights FILE --model ddcolor`
(`inference.open_colorizer`), so the importer, the published run's config and the Colorizer are all under test.

The photos: the team's scene photos (150 x 150, upscaled to S), a 750 x 600 mosaic of them (shrunk on both sides at
256, non-square), a non-square crop, and a generated 640 x 480 photo. The promise: max |dRGB| <= 2 at S = 256 and
S = 512. Then each step of the pipeline is changed alone, and the comparison must catch it.
"""

import dataclasses
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from helpers.ddcolor import authors_weights_file
from helpers.paths import REPO
from helpers.photos import make_photo

from colorjax import config_lib
from colorjax.inference import colorizer as colorizer_module
from colorjax.inference import open_colorizer

cv2 = pytest.importorskip("cv2")

CONFIGS = REPO / "configs"
TOLERANCE = 2  # max |dRGB| in 8-bit levels, the promise


def cpu_widths() -> dict:
    """The network of configs/ddcolor.py:cpu, as `authors_ddcolor` kwargs."""
    config = config_lib.load_config(CONFIGS / "ddcolor.py", "cpu")
    return {key: value for key, value in config.model.items() if key not in ("name", "size", "encoder_init")}


def authors_process(torch, model, img_bgr: np.ndarray, input_size: int) -> np.ndarray:
    """piddnad/DDColor ddcolor/pipeline.py `ColorizationPipeline.process`, step for step: BGR uint8 in and out."""
    import torch.nn.functional as F

    height, width = img_bgr.shape[:2]
    img = (img_bgr / 255.0).astype(np.float32)
    orig_l = cv2.cvtColor(img, cv2.COLOR_BGR2Lab)[:, :, :1]  # (h, w, 1)
    # resize rgb image -> lab -> get grey -> rgb
    img_resized = cv2.resize(img, (input_size, input_size))
    img_l = cv2.cvtColor(img_resized, cv2.COLOR_BGR2Lab)[:, :, :1]
    img_gray_lab = np.concatenate((img_l, np.zeros_like(img_l), np.zeros_like(img_l)), axis=-1)
    img_gray_rgb = cv2.cvtColor(img_gray_lab, cv2.COLOR_LAB2RGB)
    tensor_gray_rgb = torch.from_numpy(img_gray_rgb.transpose((2, 0, 1))).float().unsqueeze(0)
    with torch.inference_mode():
        output_ab = model(tensor_gray_rgb).cpu()  # (1, 2, input_size, input_size)
        # resize ab -> concat original l -> bgr
        output_ab_resized = F.interpolate(output_ab, size=(height, width))[0].float().numpy().transpose(1, 2, 0)
    output_lab = np.concatenate((orig_l, output_ab_resized), axis=-1)
    output_bgr = cv2.cvtColor(output_lab, cv2.COLOR_LAB2BGR)
    return (output_bgr * 255.0).round().astype(np.uint8)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def weights_file(torch, tmp_path_factory):
    from colorjax.bench.ddcolor_torch import authors_modules

    try:
        authors_modules()
    except ImportError as error:
        pytest.skip(str(error))
    return authors_weights_file(torch, tmp_path_factory.mktemp("ddcolor") / "ddcolor_cpu.pth", cpu_widths())


@pytest.fixture(scope="module")
def authors_model(torch, weights_file):
    from colorjax.bench.ddcolor_torch import authors_ddcolor

    model = authors_ddcolor(**cpu_widths())
    model.load_state_dict(torch.load(weights_file, map_location="cpu")["params"])  # strict, as theirs is not
    return model.eval()


@pytest.fixture(scope="module")
def colorizer(weights_file):
    return open_colorizer(weights=str(weights_file), model="ddcolor")


@pytest.fixture(scope="module")
def photos(request) -> dict[str, np.ndarray]:
    """Name -> uint8 RGB photo: scene photos where the team's shared folder is present, generated ones always."""
    from helpers.paths import SHARED_DIR
    from PIL import Image

    rng = np.random.default_rng(0)
    photos = {"generated_640x480": make_photo(rng, 480, 640)}
    folder = SHARED_DIR / "data" / "intel_scenes_150" / "test"
    paths = sorted(folder.rglob("*.jpg"))[::97][:20] if folder.is_dir() else []
    scenes = [np.asarray(Image.open(path).convert("RGB").resize((150, 150))) for path in paths]
    if len(scenes) == 20:
        photos["scene_150"] = scenes[0]
        photos["scene_crop_150x97"] = scenes[1][20:117]
        rows = [np.concatenate(scenes[5 * r : 5 * r + 5], axis=1) for r in range(4)]
        photos["mosaic_750x600"] = np.concatenate(rows, axis=0)  # 600 high, 750 wide
    return photos


def rgb_difference(ours: np.ndarray, theirs: np.ndarray) -> tuple[int, float]:
    difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
    return int(difference.max()), float(difference.mean())


def authors_rgb(torch, model, rgb: np.ndarray, size: int) -> np.ndarray:
    return authors_process(torch, model, np.ascontiguousarray(rgb[..., ::-1]), size)[..., ::-1]


@pytest.fixture(scope="module")
def references(torch, authors_model, photos) -> dict[tuple[str, int], np.ndarray]:
    return {
        (name, size): authors_rgb(torch, authors_model, rgb, size)
        for name, rgb in photos.items()
        for size in (256, 512)
    }


def test_published_ddcolor_runs_the_authors_pipeline(colorizer):
    # What `--weights FILE --model ddcolor` gives, from models.ddcolor.AUTHORS_INFERENCE via runs.published_config.
    assert (colorizer.resolution, colorizer.square) == (512, True)
    assert (colorizer.color_conversion, colorizer.input_resize, colorizer.chroma_upsampling) == (
        "opencv",
        "color_bilinear",
        "nearest",
    )
    assert colorizer.working_size(480, 640) == (512, 512)


@pytest.mark.parametrize("size", [256, 512])
def test_colours_equal_the_authors_pipeline(colorizer, photos, references, size, shared_dir):
    at_size = dataclasses.replace(colorizer, resolution=size)
    worst = {}
    for name, rgb in photos.items():
        theirs = references[(name, size)]
        assert theirs.std() > 10  # colourful enough that a wrong step shows
        ours = at_size.colorize(rgb)
        assert ours.shape == rgb.shape
        worst[name] = rgb_difference(ours, theirs)
    print(f"S={size}: max / mean |dRGB| per photo {worst}")
    assert len(worst) == 4
    assert max(m for m, _ in worst.values()) <= TOLERANCE, worst
    assert max(mean for _, mean in worst.values()) < 0.01, worst


def test_colours_equal_the_authors_pipeline_on_a_generated_photo(colorizer, photos, references):
    # Where the team's scene photos are absent, the generated photo still holds the promise.
    for size in (256, 512):
        ours = dataclasses.replace(colorizer, resolution=size).colorize(photos["generated_640x480"])
        assert rgb_difference(ours, references[("generated_640x480", size)])[0] <= TOLERANCE


# --- each step of the authors' pipeline, changed alone, is caught ---------------------------------------------------


def _antialiased_colour_resize(rgb, work_size, conversion, input_resize):
    """`_lightness` with the colour photo shrunk by `jax.image.resize`'s default (antialiased) linear filter."""
    rgb = rgb.astype(np.float32) / 255.0
    to_lab = colorizer_module._TO_LAB[conversion]
    small = jax.image.resize(rgb, (*work_size, 3), method="linear")
    return to_lab(rgb)[..., :1], to_lab(small)[..., :1]


def _half_pixel_nearest(input_size, output_size):
    """Pixel-centred nearest neighbour (`jax.image.resize`'s "nearest"), not PyTorch's floor indexing."""
    return np.minimum(np.floor((np.arange(output_size) + 0.5) * input_size / output_size).astype(int), input_size - 1)


DEVIATIONS = {
    # one step of the pipeline changed, as a Colorizer setting or a replaced helper
    "textbook Lab everywhere": dict(settings=dict(color_conversion="cie")),
    "L first, then an antialiased resize": dict(settings=dict(input_resize="lightness_antialiased")),
    "bilinear chroma upsampling": dict(settings=dict(chroma_upsampling="bilinear")),
    "antialiased colour resize": dict(patch=("_lightness", _antialiased_colour_resize)),
    "half-pixel nearest": dict(patch=("nearest_source_indices", _half_pixel_nearest)),
}


@pytest.mark.parametrize("deviation", sorted(DEVIATIONS))
def test_each_deviation_from_the_authors_pipeline_is_caught(colorizer, photos, references, deviation, monkeypatch):
    """The comparison is strict enough to fail a pipeline that differs from the authors' in one step only."""
    case = DEVIATIONS[deviation]
    deviant = dataclasses.replace(colorizer, resolution=256, **case.get("settings", {}))
    if "patch" in case:
        name, replacement = case["patch"]
        monkeypatch.setattr(colorizer_module, name, replacement)
        jax.clear_caches()  # the jitted pipeline steps were traced with the helper they replace
    name = "mosaic_750x600" if "mosaic_750x600" in photos else "generated_640x480"
    worst, mean = rgb_difference(deviant.colorize(photos[name]), references[(name, 256)])
    print(f"{deviation}: max / mean |dRGB| {worst} / {mean:.3f} on {name}")
    if "patch" in case:
        monkeypatch.undo()
        jax.clear_caches()
    assert worst > TOLERANCE


def test_bilinear_chroma_upsampling_is_an_option_not_the_default(colorizer, photos):
    rgb = photos["generated_640x480"]
    smooth = dataclasses.replace(colorizer, chroma_upsampling="bilinear").colorize(rgb)
    assert colorizer.chroma_upsampling == "nearest" and not np.array_equal(smooth, colorizer.colorize(rgb))


@pytest.mark.slow
def test_a_20_megapixel_photo_colours_in_under_2_gb(weights_file):
    """Only the chroma upsampling and the recombination run at the photo's size (5472 x 3648, a 20 MP camera's):
    the whole process, JAX and the CPU-width network included, peaks under 2 GB. Its own process, so the peak is
    this photo's."""
    script = textwrap.dedent(
        f"""
        import numpy as np
        from colorjax.inference import open_colorizer

        colorizer = open_colorizer(weights={str(weights_file)!r}, model="ddcolor")
        height, width = 3648, 5472
        rows = (127 + 100 * np.sin(np.arange(height, dtype=np.float32) / 200))[:, None]
        columns = np.cos(np.arange(width, dtype=np.float32) / 300)[None, :]
        photo = np.empty((height, width, 3), np.uint8)
        for k in range(3):
            photo[..., k] = np.clip(rows * (0.6 + 0.4 * np.roll(columns, 500 * k)), 0, 255)
        colorized = colorizer.colorize(photo)
        assert colorized.shape == photo.shape and colorized.std() > 1
        with open("/proc/self/status") as status:  # VmHWM: a child's ru_maxrss starts at pytest's high-water mark
            print(next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    peak_mb = float(result.stdout.split()[-1])
    print(f"peak RSS colouring 5472 x 3648 at S = 512: {peak_mb:.0f} MB")
    assert peak_mb < 2048
