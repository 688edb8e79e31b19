"""`python -m colorjax.evaluate --protocol imagenet-val5k` end to end on `tfds.testing.mock_data`, with torchvision's
InceptionV3 (random weights, saved as a .pth) for the paired FID: metrics.json, results.md and colorjax.report carry
the papers' table beside the AuC tables."""

import json

import jax
import jax.numpy as jnp
import pytest
from helpers.fid_reference import random_inception
from helpers.mock_imagenet import mock_imagenet_validation
from helpers.runs import save_run

from colorjax import models
from colorjax.cli import evaluate as evaluate_cli
from colorjax.evaluation import report


@pytest.fixture(scope="module")
def protocol_evaluation(tmp_path_factory):
    """The regression baseline's initial weights evaluated by the ImageNet val5k protocol: (metrics.json, its
    folder, the run)."""
    root = tmp_path_factory.mktemp("protocol")
    model = models.get_model("regression", width=4)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    run = save_run(root / "run", "regression", {"width": 4}, variables, {"source": "samples", "image_size": 32}, None)
    torch, inception = random_inception(seed=0)
    weights = root / "inception_v3_random.pth"
    torch.save(inception.state_dict(), weights)
    output = root / "val5k"
    with mock_imagenet_validation():
        code = evaluate_cli.main(
            [
                "--workdir", str(run),
                "--protocol", "imagenet-val5k",
                "--inception", str(weights),
                "--output", str(output),
                "--batch-size", "4",
                "--num-grid", "2",
            ]
        )  # fmt: skip
    assert code == 0
    return json.loads((output / "metrics.json").read_text()), output, run


def test_protocol_writes_the_papers_metrics(protocol_evaluation):
    document, _, _ = protocol_evaluation
    assert document["run"]["protocol"] == "imagenet-val5k"
    assert document["run"]["resolution"] == 256 and document["run"]["eval_crop"] == "crop_shorter_side"
    assert document["run"]["feature_extractor"].startswith("InceptionV3 (torchvision)")
    prediction, truth = document["prediction"], document["baselines"]["ground_truth"]
    assert prediction["images"] == 6  # file numbers <= 5000 of the mock split, the grey photo included
    assert document["skipped"]["grey"] == 0
    # Paired FID: the ground truth against itself is 0; the uncoloured prediction is far from it.
    assert abs(truth["fid_inception_v3"]) < 1e-4 * prediction["fid_inception_v3"]  # round-off of 2048-d traces
    assert prediction["fid_inception_v3"] > 0
    assert truth["delta_cf"] == 0.0 and truth["cf"] == pytest.approx(truth["cf_ground_truth"])
    assert prediction["delta_cf"] == pytest.approx(abs(prediction["cf"] - truth["cf"]))
    assert "fid" not in prediction  # colorjax's Inception-ResNet-v2 FID is another number, not asked for


def test_results_and_report_show_the_papers_table(protocol_evaluation):
    document, output, _ = protocol_evaluation
    results = (output / "results.md").read_text()
    assert "## The papers' table" in results
    rendered = report.render_report([report.load_metrics(output / "metrics.json")])
    table = rendered.split("## The papers' table", 1)[1].split("##", 1)[0]
    assert "| FID | CF | ΔCF | PSNR (dB) | AuC (%) |" in table
    assert f"{document['prediction']['fid_inception_v3']:.2f}" in table


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--protocol", "imagenet-val5k", "--split", "validation[:10]"], "fixes the split and the size"),
        (["--protocol", "imagenet-val5k", "--data", "folder:/photos"], "drop --data folder:/photos"),
        (["--protocol", "folder"], "needs --data folder:PATH"),
    ],
)
def test_protocol_misuse_is_a_one_line_error(protocol_evaluation, tmp_path, capsys, arguments, message):
    run = protocol_evaluation[2]
    code = evaluate_cli.main(["--workdir", str(run), "--inception", "none", "--output", str(tmp_path), *arguments])
    error = capsys.readouterr().err.strip()
    assert code == 1 and message in error and len(error.splitlines()) == 1
