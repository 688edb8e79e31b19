"""`python -m colorjax.serve`: the serve command (colorjax/cli/serve.py; also `colorjax serve`)."""

from colorjax.__main__ import run_command

run_command("serve")
