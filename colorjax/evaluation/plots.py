"""Evaluation figures and tables: the AuC curves, bar charts and Markdown tables.

Figures are drawn on matplotlib `Figure` objects with the Agg canvas directly (no pyplot, so no global figure state
and no display needed). Image grids (gray | prediction | truth) live in `colorjax.evaluation.visualize`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from colorjax import files
from colorjax.evaluation.metrics import AUC_MAX_THRESHOLD, area_under_curve


def _save_figure(figure: Figure, path: str | Path) -> Path:
    """Renders `figure` in the format its file name asks for (PNG by default) and writes it with `files`."""
    path = Path(path)
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix[1:].lower() or "png", dpi=120, bbox_inches="tight")
    return files.atomic_write(path, buffer.getvalue())


def save_auc_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    title: str = "Cumulative ab error (Zhang et al. AuC)",
) -> Path:
    """One figure of the fraction of pixels within each ab-error threshold 0..150, one line per run or baseline.

    `curves` maps a legend name to its 151 fractions (metrics.json's `auc_curve`); the legend shows each AuC.
    """
    thresholds = np.arange(AUC_MAX_THRESHOLD + 1)
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.add_subplot()
    for name, curve in curves.items():
        curve = np.asarray(curve, np.float64)
        if curve.shape != thresholds.shape:
            raise ValueError(f"AuC curve {name!r} must have {thresholds.size} points (t = 0..150), got {curve.shape}.")
        axes.plot(thresholds, 100.0 * curve, label=f"{name} (AuC {area_under_curve(curve):.1f}%)")
    axes.set_xlim(0, AUC_MAX_THRESHOLD)
    axes.set_ylim(0, 101)  # room for the ground-truth line at 100
    axes.set_xlabel("threshold on ab L2 error")
    axes.set_ylabel("pixels within threshold (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    return _save_figure(figure, path)


def save_bar_chart(
    values: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    ylabel: str = "%",
    title: str = "",
) -> Path:
    """Grouped bars: one group per metric, one bar per method. `values[method][metric]`; missing ones are skipped."""
    methods = list(values)
    metrics = list(dict.fromkeys(metric for row in values.values() for metric in row))
    if not methods or not metrics:
        raise ValueError("save_bar_chart needs at least one method with one metric.")
    figure = Figure(figsize=(max(6.4, 1.4 * len(metrics) * max(1, len(methods)) / 3), 4.4))
    axes = figure.add_subplot()
    width = 0.8 / len(methods)
    positions = np.arange(len(metrics))
    for index, method in enumerate(methods):
        heights = [values[method].get(metric, np.nan) for metric in metrics]
        axes.bar(positions + (index - (len(methods) - 1) / 2) * width, heights, width, label=method)
    axes.set_xticks(positions, metrics)
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save_figure(figure, path)


def _format_cell(value: object, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "–" if np.isnan(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, digits: int = 2) -> str:
    """A GitHub Markdown table; numbers right-aligned with `digits` decimals, None and NaN shown as a dash."""
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row must have {len(header)} cells like the header {list(header)}.")
    numeric = [
        all(isinstance(row[i], int | float | np.number) or row[i] is None for row in rows)
        and any(row[i] is not None for row in rows)
        for i in range(len(header))
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if is_number else "---" for is_number in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_format_cell(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
