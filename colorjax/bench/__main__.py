"""`python -m colorjax.bench`: the bench command (colorjax/cli/bench.py; also `colorjax bench`)."""

from colorjax.__main__ import run_command

run_command("bench")
