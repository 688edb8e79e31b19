"""`python -m colorjax.colorize`: the colorize command (colorjax/cli/colorize.py; also `colorjax colorize`)."""

from colorjax.__main__ import run_command

if __name__ == "__main__":
    run_command("colorize")
