"""Compares evaluated runs side by side: `load_metrics` reads a metrics.json (or finds it in a run), `write_report`
writes report.md with the papers' tables and the charts. The command line is `colorjax/cli/report.py`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from colorjax import files
from colorjax.evaluation.metrics import AUC_MAX_THRESHOLD, PSNR_CAP_DB
from colorjax.evaluation.plots import markdown_table, save_auc_curves, save_bar_chart

SCHEMA_VERSION = 1
BASELINE_LABELS = {"ground_truth": "Ground truth", "gray": "Gray", "mean_colour": "Mean colour"}

# (metrics key, column title): the Zhang Table 1 shape, then the Hwang & Zhou shape.
ZHANG_COLUMNS = (
    ("auc_percent", "AuC non-rebal. (%)"),
    ("auc_rebalanced_percent", "AuC rebal. (%)"),
    ("auc_rebalanced_prior_percent", "AuC rebal., ImageNet prior (%)"),
    ("ab_l2_error", "ab L2 error"),
    ("psnr_rgb_db", "PSNR RGB (dB)"),
    ("psnr_rgb_capped_images", "at PSNR cap"),
    ("psnr_ab_db", "PSNR ab (dB)"),
    ("colourfulness", "CF"),
    ("delta_colourfulness", "ΔCF"),
    ("top1_colorized_percent", "VGG top-1 (%)"),
    ("fid", "FID"),
)
# The table of CT2's and DDColor's papers: paired FID on torchvision's InceptionV3, their CF and delta-CF, PSNR.
FIELD_COLUMNS = (
    ("fid_inception_v3", "FID"),
    ("cf", "CF"),
    ("delta_cf", "ΔCF"),
    ("psnr_rgb_db", "PSNR (dB)"),
    ("auc_percent", "AuC (%)"),
)
OPTIONAL_COLUMNS = {"top1_colorized_percent", "fid", "fid_inception_v3"}  # shown only when some row has them
HWANG_ZHOU_COLUMNS = (
    ("acc_u_percent", "Acc.U (%)"),
    ("acc_v_percent", "Acc.V (%)"),
    ("saturation_difference_percent", "Sat. diff. (%)"),
)
BAR_METRICS = (
    ("auc_percent", "AuC"),
    ("auc_rebalanced_percent", "AuC rebal."),
    ("acc_u_percent", "Acc.U"),
    ("acc_v_percent", "Acc.V"),
)


@dataclass(frozen=True)
class Row:
    """One line of the report: a run's prediction or a baseline."""

    label: str
    metrics: dict


@dataclass(frozen=True)
class EvaluatedRun:
    """One metrics.json, read and checked."""

    name: str
    path: Path
    run: dict
    prediction: dict
    baselines: dict


def resolve_metrics_path(argument: str | Path) -> Path:
    """The metrics.json a command-line argument names: the file itself, or in a run directory the evaluation of
    its latest step (`eval/step_N/metrics.json`, what `colorjax.evaluate` writes), else `eval/metrics.json` or
    `metrics.json`."""
    path = Path(argument)
    if path.is_dir():
        evaluated_steps = sorted(
            (int(folder.name[len("step_") :]), folder / "metrics.json")
            for folder in (path / "eval").glob("step_*")
            if folder.name[len("step_") :].isdigit() and (folder / "metrics.json").is_file()
        )
        if evaluated_steps:
            return evaluated_steps[-1][1]
        for candidate in (path / "eval" / "metrics.json", path / "metrics.json"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"{path} holds no eval/metrics.json or metrics.json; run `python -m colorjax.evaluate "
            f"--workdir {path}` first."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; give a metrics.json file or a run directory.")
    return path


def _check_metrics(metrics: object, where: str) -> dict:
    if not isinstance(metrics, dict):
        raise ValueError(f"{where} must be a JSON object of metrics, got {type(metrics).__name__}.")
    if "images" not in metrics:
        raise ValueError(f"{where} lacks the required 'images' count.")
    for key, _ in ZHANG_COLUMNS + HWANG_ZHOU_COLUMNS + FIELD_COLUMNS:
        value = metrics.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{where}.{key} must be a number, got {value!r}.")
    for key in ("auc_curve", "auc_rebalanced_curve"):
        curve = metrics.get(key)
        if curve is not None and (
            not isinstance(curve, list)
            or len(curve) != AUC_MAX_THRESHOLD + 1
            or not all(isinstance(v, int | float) for v in curve)
        ):
            raise ValueError(f"{where}.{key} must be a list of {AUC_MAX_THRESHOLD + 1} numbers.")
    return metrics


def load_metrics(argument: str | Path) -> EvaluatedRun:
    """Reads and checks one metrics.json (or a run directory's); one-line errors name the file and the problem."""
    path = resolve_metrics_path(argument)
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON (line {error.lineno}): {error.msg}.") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path} must hold a JSON object (see colorjax.report for the schema).")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path} has schema_version {version!r}; this colorjax reads version {SCHEMA_VERSION}.")
    if "prediction" not in document:
        raise ValueError(f"{path} lacks the 'prediction' metrics.")
    prediction = _check_metrics(document["prediction"], f"{path}: prediction")
    baselines = document.get("baselines", {})
    if not isinstance(baselines, dict):
        raise ValueError(f"{path}: 'baselines' must be an object of name -> metrics.")
    baselines = {name: _check_metrics(metrics, f"{path}: baselines.{name}") for name, metrics in baselines.items()}
    run = document.get("run", {})
    if not isinstance(run, dict):
        raise ValueError(f"{path}: 'run' must be an object.")
    folder = path.parent
    if folder.name.startswith("step_") and folder.parent.name == "eval":
        folder = folder.parent  # RUN/eval/step_N/metrics.json
    default_name = folder.parent.name if folder.name == "eval" else folder.name
    name = str(run.get("name") or default_name or path.stem)
    return EvaluatedRun(name=name, path=path, run=run, prediction=prediction, baselines=baselines)


def report_rows(runs: Sequence[EvaluatedRun]) -> list[Row]:
    """Baseline rows (once per distinct evaluation set, in BASELINE_LABELS order) then one row per run."""
    groups: dict[tuple, list[EvaluatedRun]] = {}
    for run in runs:
        key = (run.run.get("data"), run.run.get("resolution"), run.prediction.get("images"))
        groups.setdefault(key, []).append(run)
    rows = []
    for members in groups.values():
        suffix = "" if len(groups) == 1 else f" [{members[0].name}'s data]"
        baselines = next((m.baselines for m in members if m.baselines), {})
        ordered = [n for n in BASELINE_LABELS if n in baselines] + [n for n in baselines if n not in BASELINE_LABELS]
        for name in ordered:
            label = BASELINE_LABELS.get(name, name.replace("_", " ").capitalize())
            rows.append(Row(label + suffix, baselines[name]))
    labels_seen: dict[str, int] = {}
    for run in runs:
        count = labels_seen[run.name] = labels_seen.get(run.name, 0) + 1
        rows.append(Row(run.name if count == 1 else f"{run.name} ({count})", run.prediction))
    return rows


def _table(rows: Sequence[Row], columns: Sequence[tuple[str, str]]) -> str:
    shown = [
        (key, title)
        for key, title in columns
        if key not in OPTIONAL_COLUMNS or any(row.metrics.get(key) is not None for row in rows)
    ]
    return markdown_table(
        ["Method", "Images"] + [title for _, title in shown],
        [[row.label, row.metrics["images"]] + [row.metrics.get(key) for key, _ in shown] for row in rows],
    )


def render_report(runs: Sequence[EvaluatedRun]) -> str:
    """The Markdown document: the Zhang-shaped table, the Hwang & Zhou-shaped table, and where each run came from."""
    rows = report_rows(runs)
    sources = "\n".join(
        f"- **{run.name}**: `{run.path}`"
        + "".join(
            f", {key} {run.run[key]}"
            for key in ("model", "step", "protocol", "data", "split", "resolution", "feature_extractor")
            if run.run.get(key) is not None
        )
        for run in runs
    )
    field = ""
    if any(row.metrics.get("cf") is not None for row in rows):  # metrics.json files older than the papers' CF lack it
        field = (
            "## The papers' table (CT2 and DDColor, Table 1 shape)\n\n"
            + _table(rows, FIELD_COLUMNS)
            + "\nFID: paired (each row against the ground truth of the same photos), torchvision's InceptionV3 pool "
            + "features; CF: their colourfulness (absolute opponent channels); PSNR on 8-bit RGB.\n\n"
        )
    return (
        "# Colorization results\n\n"
        + field
        + "## AuC of the ab-error CDF and image-level scores (Zhang et al. 2016, Table 1 shape)\n\n"
        + _table(rows, ZHANG_COLUMNS)
        + "\n## CIELUV bin accuracy and saturation (Hwang & Zhou 2016)\n\n"
        + _table(rows, HWANG_ZHOU_COLUMNS)
        + f"\nPSNR: per image, averaged; identical images count as the {PSNR_CAP_DB:g} dB cap "
        + "('at PSNR cap' counts them).\n"
        + "AuC rebal.: each ground-truth colour bin of the evaluated images counts equally.\n\n"
        + "## Sources\n\n"
        + sources
        + "\n"
    )


def write_report(runs: Sequence[EvaluatedRun], output: str | Path) -> dict[str, Path]:
    """Writes report.md, report_bars.png and (when rows carry curves) report_auc_curves.png into `output`."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = report_rows(runs)
    markdown_path = files.write_text(output / "report.md", render_report(runs))
    bars = {
        row.label: {
            title: row.metrics[key]
            for key, title in BAR_METRICS
            if isinstance(row.metrics.get(key), int | float) and math.isfinite(row.metrics[key])
        }
        for row in rows
    }
    written = {
        "markdown": markdown_path,
        "bars": save_bar_chart(bars, output / "report_bars.png", ylabel="%", title="AuC and CIELUV bin accuracy"),
    }
    curves = {row.label: row.metrics["auc_curve"] for row in rows if row.metrics.get("auc_curve")}
    if curves:
        written["curves"] = save_auc_curves(curves, output / "report_auc_curves.png")
    return written
