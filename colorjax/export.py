"""`python -m colorjax.export`: the export command (colorjax/cli/export.py; also `colorjax export`)."""

from colorjax.__main__ import run_command

if __name__ == "__main__":
    run_command("export")
