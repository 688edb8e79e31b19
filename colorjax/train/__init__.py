"""Training: `trainer.train_and_evaluate(config, workdir)` (the command line is `colorjax/cli/train.py`), the
objectives (`losses`), optimizers and schedules (`optim`), and the empirical ab prior (`prior`)."""
