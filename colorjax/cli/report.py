"""Compare evaluated runs side by side: `python -m colorjax.report RUN_OR_METRICS... [--output DIR]`.

Each argument is a metrics.json file, or a run directory holding `eval/step_N/metrics.json` (the latest N is
taken), `eval/metrics.json` or `metrics.json`. The
report prints one Markdown document with two tables, in the shape of the papers' tables, and writes it to
`DIR/report.md` with a bar chart `DIR/report_bars.png` and the AuC curves of every row `DIR/report_auc_curves.png`:

- Zhang et al. Table 1: AuC non-rebalanced / rebalanced (plus the ImageNet-prior rebalanced AuC), ab L2 error,
  PSNR on RGB and ab, colourfulness and delta-CF, and classifier top-1 / FID where evaluated.
- Hwang & Zhou: Acc.U, Acc.V and the saturation difference.
The baseline rows (ground truth, gray, mean colour) come first, once per distinct evaluation set.

metrics.json schema (version 1), written by `colorjax.evaluate`:

    {
      "schema_version": 1,
      "run": {                        # what was evaluated; every field optional
        "name": "zhang_rebalanced",   #   row label (default: the run directory's name)
        "workdir": "runs/zhang_rebalanced", "model": "zhang", "step": 12000,
        "data": "folder:../shared/data/intel_scenes_150/test", "resolution": 176, "color_space": "lab"
      },
      "conventions": {...},           # colorjax.evaluation.metrics.CONVENTIONS: PSNR cap, ab peak, AuC rules, ...
      "prediction": METRICS,          # the model's numbers
      "baselines": {                  # optional; the same images, the same METRICS keys
        "ground_truth": METRICS, "gray": METRICS, "mean_colour": METRICS
      },
      "skipped": {                    # optional: the files left out of every row
        "unreadable": 2, "grey": 124, "unreadable_files": {"path": "why"}, "grey_files": ["path", ...]
      }
    }

METRICS is the dict `colorjax.evaluation.metrics.finalize` returns, optionally with "fid":
    images, pixels, psnr_rgb_db, psnr_rgb_capped_images, psnr_ab_db, psnr_ab_capped_images, ab_l2_error,
    psnr_rgb_db_below_cap, psnr_ab_db_below_cap, ab_rmse, auc_percent, auc_rebalanced_percent,
    auc_rebalanced_prior_percent, colourfulness, colourfulness_ground_truth, delta_colourfulness, acc_u_percent,
    acc_v_percent, saturation, saturation_ground_truth, saturation_difference_percent, ground_truth_mean_ab [a, b],
    auc_curve [151 fractions], auc_rebalanced_curve [151 fractions],
    top1_colorized_percent, top1_ground_truth_percent, top1_agreement_percent (with a classifier), fid.
"images" is required; a missing metric shows as a dash.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from colorjax.cli import common as cli


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m colorjax.report",
        description="Compare evaluated runs (metrics.json files or run directories) with the baselines.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_OR_METRICS")
    parser.add_argument("--output", default="report", help="folder for report.md and the PNGs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from colorjax.evaluation.report import load_metrics, write_report

    try:
        runs = [load_metrics(argument) for argument in args.runs]
        written = write_report(runs, args.output)
    except (FileNotFoundError, ValueError) as error:  # a metrics file it cannot read: exit 2, as always
        cli.print_error(error)
        return cli.USAGE_ERROR
    print(written["markdown"].read_text())
    print("wrote " + ", ".join(str(path) for path in written.values()))
    return 0


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
