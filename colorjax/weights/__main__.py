"""`python -m colorjax.weights`: the weights command (colorjax/cli/weights.py; also `colorjax weights`)."""

from colorjax.__main__ import run_command

run_command("weights")
