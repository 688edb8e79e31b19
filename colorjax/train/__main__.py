"""`python -m colorjax.train`: the train command (colorjax/cli/train.py; also `colorjax train`)."""

from colorjax.__main__ import run_command

run_command("train")
