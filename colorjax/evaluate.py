"""`python -m colorjax.evaluate`: the evaluate command (colorjax/cli/evaluate.py; also `colorjax evaluate`)."""

from colorjax.__main__ import run_command

if __name__ == "__main__":
    run_command("evaluate")
