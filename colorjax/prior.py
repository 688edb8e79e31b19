"""`python -m colorjax.prior`: the prior command (colorjax/cli/prior.py; also `colorjax prior`)."""

from colorjax.__main__ import run_command

if __name__ == "__main__":
    run_command("prior")
