"""Evaluation: the one `evaluator.Evaluator` (the trainer's evaluation steps and `evaluate` alike), `evaluate()` and
its loaders, the papers' `metrics` and evaluation `protocols`, `report` tables, `plots`, the picture grids
(`visualize`) and the hint sweep."""
