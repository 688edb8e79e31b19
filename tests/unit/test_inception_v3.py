"""The papers' evaluation metrics against their reference code on CPU (tests/helpers/fid_reference.py): InceptionV3
pool features and paired FID (torchvision's network with random weights, imported from its .pth through
colorjax's torch-free reader), CT2/DDColor colourfulness and delta-CF, PSNR on uint8 RGB."""

import jax
import numpy as np
import pytest
from helpers.fid_reference import (
    random_inception,
    reference_colourfulness,
    reference_fid,
    reference_pool_features,
    reference_psnr,
)
from helpers.photos import make_photo

from colorjax.evaluation import metrics
from colorjax.models import inception_v3
from colorjax.weights import WeightsError, registry


@pytest.fixture(scope="module")
def inception_pair(tmp_path_factory):
    """(torch, the torchvision model, colorjax variables imported from its saved state dict)."""
    torch, model = random_inception(seed=0)
    path = tmp_path_factory.mktemp("inception") / "inception_v3_random.pth"
    torch.save(model.state_dict(), path)
    return torch, model, inception_v3.load_inception_v3(path)


def sample_images(count: int, size=(256, 256)) -> np.ndarray:
    """Half smooth photos, half noise, uint8 (N, H, W, 3)."""
    rng = np.random.default_rng(1)
    photos = [make_photo(rng, *size) for _ in range(count // 2)]
    noise = [rng.integers(0, 256, size + (3,), dtype=np.uint8) for _ in range(count - count // 2)]
    return np.stack(photos + noise)


def test_pool_features_equal_torchvision_through_ct2_pipeline(inception_pair):
    torch, model, variables = inception_pair
    images = sample_images(4)
    # Non-square and larger than 299 too: the resize has no antialiasing, as F.interpolate.
    wide = np.random.default_rng(2).integers(0, 256, (1, 320, 400, 3), dtype=np.uint8)
    for batch in (images, wide):
        expected = reference_pool_features(torch, model, batch)
        ours = np.asarray(jax.jit(inception_v3.fid_features)(variables, batch.astype(np.float32) / 255.0))
        assert ours.shape == (len(batch), inception_v3.FEATURE_DIM)
        scale = np.abs(expected).max()
        assert scale > 1.0  # activations of order 1, not vanished
        np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-6 * scale)


# CT2's scipy sqrtm of a 2048 x 2048 product takes minutes on 2 cores; the distance is checked on the first
# FID_DIMS features (the network's equality over all 2048 is the test above).
FID_DIMS = 256


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 8 images: CT2's sqrtm warns, and still answers
def test_paired_fid_equals_ct2(inception_pair):
    """Paired FID of 'colorized' (the photos with their channels rotated) against the ground truth: the features and
    the Frechet distance both as the evaluation computes them (running moments) and as CT2 does (np.cov, sqrtm)."""
    torch, model, variables = inception_pair
    truth = sample_images(8, size=(96, 96))
    colorized = np.ascontiguousarray(truth[..., [1, 2, 0]])
    ours = {}
    for name, images in (("truth", truth), ("colorized", colorized)):
        moments = metrics.FeatureMoments()
        features = inception_v3.fid_features(variables, images.astype(np.float32) / 255.0)
        moments.add(np.asarray(features)[:, :FID_DIMS])
        ours[name] = moments.gaussian()
    fid = metrics.frechet_distance(*ours["colorized"], *ours["truth"])
    expected = reference_fid(
        reference_pool_features(torch, model, colorized)[:, :FID_DIMS],
        reference_pool_features(torch, model, truth)[:, :FID_DIMS],
    )
    assert expected > 0.05  # the two sets differ
    assert fid == pytest.approx(expected, rel=1e-4)


def test_frechet_distance_equals_ct2_on_well_conditioned_features():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(400, 32)) @ rng.normal(size=(32, 32))
    b = 0.7 * rng.normal(size=(400, 32)) @ rng.normal(size=(32, 32)) + 0.3
    assert metrics.fid(a, b) == pytest.approx(reference_fid(a, b), rel=1e-9)


def test_cf_delta_cf_and_psnr_equal_ddcolor():
    truth = sample_images(4, size=(40, 56))
    pred = np.clip(truth.astype(np.int16) + np.random.default_rng(4).integers(-40, 41, truth.shape), 0, 255)
    pred = pred.astype(np.uint8)
    stats = metrics.image_statistics(
        metrics.views_from_rgb(pred.astype(np.float32) / 255.0),
        metrics.views_from_rgb(truth.astype(np.float32) / 255.0),
    )
    expected_cf = [reference_colourfulness(image) for image in pred]
    np.testing.assert_allclose(np.asarray(stats["cf"]), expected_cf, rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(stats["psnr_rgb_db"]), [reference_psnr(p, t) for p, t in zip(pred, truth, strict=True)], rtol=1e-5
    )
    # The papers' CF takes absolute opponent channels: on these images it is not Hasler & Suesstrunk's signed one.
    assert np.all(np.abs(np.asarray(stats["cf"]) - np.asarray(stats["colourfulness"])) > 0.1)

    accumulator = metrics.MetricsAccumulator()
    accumulator.add(metrics.reduce_statistics(stats, np.ones(len(pred), bool)))
    numbers = metrics.finalize(accumulator)
    expected_truth_cf = np.mean([reference_colourfulness(image) for image in truth])
    assert numbers["cf"] == pytest.approx(np.mean(expected_cf), rel=1e-5)
    assert numbers["delta_cf"] == pytest.approx(abs(np.mean(expected_cf) - expected_truth_cf), rel=1e-4, abs=1e-4)


def test_import_refuses_a_state_dict_that_is_not_inception_v3(inception_pair):
    torch, model, _ = inception_pair
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    del state["Mixed_6b.branch7x7_2.conv.weight"]
    with pytest.raises(inception_v3.InceptionImportError, match="Mixed_6b.branch7x7_2.conv.weight"):
        inception_v3.variables_from_state_dict(state)
    state = {k: v.numpy() for k, v in model.state_dict().items()} | {"head.weight": np.zeros(3, np.float32)}
    with pytest.raises(inception_v3.InceptionImportError, match="head.weight"):
        inception_v3.variables_from_state_dict(state)


def test_registry_knows_the_papers_inception_file_and_never_colours_with_it(tmp_path, monkeypatch):
    entry = registry.KNOWN_WEIGHTS["inception_v3"]
    assert entry.file_name == "inception_v3_google-1a9a5a14.pth"  # the file CT2 and DDColor load
    assert len(entry.sha256) == 64 and entry.sha256.startswith("1a9a5a14")
    assert "inception_v3" not in registry.published_models()
    with pytest.raises(WeightsError, match="an evaluation network .*, not a colorization network"):
        registry.published_model("inception_v3")  # refused before any download
    # Offline (a closed local port stands in for the server): one line saying where to put the file by hand.
    monkeypatch.setenv("COLORJAX_CACHE", str(tmp_path))
    monkeypatch.setenv("COLORJAX_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")
    with pytest.raises(WeightsError, match=r"inception_v3_google-1a9a5a14\.pth \(or pass its path to --inception\)"):
        registry.download("inception_v3", progress=False)
