"""`python -m colorjax.report`: the report command (colorjax/cli/report.py; also `colorjax report`)."""

from colorjax.__main__ import run_command

if __name__ == "__main__":
    run_command("report")
