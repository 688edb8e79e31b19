"""The multi-run report (tables, bar chart, curves) and the plotting helpers it is built from."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorjax.cli import report as report_cli
from colorjax.evaluation import plots, report
from colorjax.evaluation.metrics import AUC_MAX_THRESHOLD, CONVENTIONS


def fake_metrics(auc: float, auc_rebalanced: float, acc_u: float, **extra) -> dict:
    """A METRICS dict as colorjax.metrics.finalize writes it (only the numbers a report reads vary)."""
    curve = np.clip(np.linspace(0.3, 1.2, AUC_MAX_THRESHOLD + 1), 0, 1).tolist()
    return {
        "images": 150,
        "pixels": 150 * 64 * 64,
        "psnr_rgb_db": 24.5,
        "psnr_rgb_capped_images": 0,
        "psnr_ab_db": 20.1,
        "psnr_ab_capped_images": 0,
        "ab_l2_error": 12.25,
        "ab_rmse": 16.0,
        "auc_percent": auc,
        "auc_rebalanced_percent": auc_rebalanced,
        "auc_rebalanced_prior_percent": auc_rebalanced - 3,
        "colourfulness": 30.0,
        "colourfulness_ground_truth": 38.0,
        "delta_colourfulness": 8.0,
        "acc_u_percent": acc_u,
        "acc_v_percent": 22.0,
        "saturation": 0.2,
        "saturation_ground_truth": 0.25,
        "saturation_difference_percent": 20.0,
        "ground_truth_mean_ab": [3.0, 8.0],
        "auc_curve": curve,
        "auc_rebalanced_curve": curve,
    } | extra


def write_run(folder: Path, name: str, prediction: dict, with_baselines: bool = True) -> Path:
    document = {
        "schema_version": 1,
        "run": {
            "name": name,
            "model": name.split("_")[0],
            "step": 500,
            "data": "folder:test",
            "resolution": 64,
        },
        "conventions": CONVENTIONS,
        "prediction": prediction,
    }
    if with_baselines:
        document["baselines"] = {
            "ground_truth": fake_metrics(100.0, 100.0, 100.0),
            "gray": fake_metrics(89.1, 58.0, 25.0),
            "mean_colour": fake_metrics(88.0, 55.5, 20.0),
        }
    path = folder / name / "eval" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    return path


def test_report_compares_two_runs_with_the_baselines(tmp_path, capsys):
    write_run(tmp_path, "regression_l2", fake_metrics(91.2, 64.4, 12.9))
    zhang = write_run(tmp_path, "zhang_rebalanced", fake_metrics(89.5, 67.3, 34.6, fid=12.5))
    output = tmp_path / "out"
    # One argument is a run directory, the other a metrics.json file.
    assert report_cli.main([str(tmp_path / "regression_l2"), str(zhang), "--output", str(output)]) == 0

    markdown = (output / "report.md").read_text()
    assert markdown in capsys.readouterr().out
    lines = markdown.splitlines()
    first_table = lines.index(next(line for line in lines if line.startswith("| Method")))
    rows = [line for line in lines[first_table:] if line.startswith("| ")][:6]
    assert [r.split("|")[1].strip() for r in rows[1:]] == [
        "Ground truth",
        "Gray",
        "Mean colour",
        "regression_l2",
        "zhang_rebalanced",
    ]
    assert "| zhang_rebalanced | 150 | 89.50 | 67.30 |" in markdown
    assert "| Gray | 150 | 89.10 | 58.00 |" in markdown
    assert "FID" in rows[0] and "| 12.50 |" in rows[-1]  # only a run with FID fills that column
    assert "| zhang_rebalanced | 150 | 34.60 | 22.00 | 20.00 |" in markdown  # Hwang & Zhou table
    assert "VGG top-1" not in markdown  # no run was classified

    for name in ("report_bars.png", "report_auc_curves.png"):
        with Image.open(output / name) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200


def test_runs_on_different_data_get_their_own_baselines(tmp_path):
    first = write_run(tmp_path, "a", fake_metrics(90.0, 60.0, 20.0))
    second_path = write_run(tmp_path, "b", fake_metrics(91.0, 61.0, 21.0))
    document = json.loads(second_path.read_text())
    document["run"]["data"] = "folder:other"
    second_path.write_text(json.dumps(document))
    rows = report.report_rows([report.load_metrics(first), report.load_metrics(second_path)])
    labels = [row.label for row in rows]
    assert labels.count("Gray [a's data]") == 1 and labels.count("Gray [b's data]") == 1
    assert labels[-2:] == ["a", "b"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON (line 1)"),
        ('{"schema_version": 7, "prediction": {}}', "schema_version 7"),
        ('{"schema_version": 1}', "lacks the 'prediction' metrics"),
        ('{"schema_version": 1, "prediction": {"auc_percent": 90}}', "lacks the required 'images'"),
        (
            '{"schema_version": 1, "prediction": {"images": 3, "auc_percent": "high"}}',
            "auc_percent must be a number",
        ),
        (
            '{"schema_version": 1, "prediction": {"images": 3, "auc_curve": [1, 2]}}',
            "list of 151 numbers",
        ),
    ],
)
def test_malformed_metrics_files_are_one_line_errors(tmp_path, capsys, content, message):
    path = tmp_path / "metrics.json"
    path.write_text(content)
    assert report_cli.main([str(path), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and str(path) in error
    assert error.count("\n") == 1


def test_missing_file_and_empty_run_directory_are_one_line_errors(tmp_path, capsys):
    assert report_cli.main([str(tmp_path / "nope.json")]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err
    (tmp_path / "empty_run").mkdir()
    assert report_cli.main([str(tmp_path / "empty_run")]) == 2
    error = capsys.readouterr().err
    assert "holds no eval/metrics.json" in error and error.count("\n") == 1


# ---------------------------------------------------------------------------------------------------------------
# Plotting helpers


def test_markdown_table_formats_numbers_and_missing_values():
    table = plots.markdown_table(["Method", "AuC", "FID"], [["gray", 89.123, None], ["a|b", 91.0, float("nan")]])
    assert table.splitlines() == [
        "| Method | AuC | FID |",
        "|---|---:|---:|",
        "| gray | 89.12 | – |",
        "| a\\|b | 91.00 | – |",
    ]
    with pytest.raises(ValueError, match="3 cells"):
        plots.markdown_table(["Method", "AuC", "FID"], [["gray", 1.0]])


def test_auc_curve_plot_rejects_a_curve_of_the_wrong_length(tmp_path):
    good = np.linspace(0, 1, AUC_MAX_THRESHOLD + 1)
    path = plots.save_auc_curves({"gray": good, "model": good**0.5}, tmp_path / "cdf.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
    with pytest.raises(ValueError, match="151 points"):
        plots.save_auc_curves({"bad": good[:10]}, tmp_path / "bad.png")
