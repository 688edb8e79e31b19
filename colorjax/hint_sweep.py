"""`python -m colorjax.hint_sweep`: the hint-sweep command (colorjax/cli/hint_sweep.py; also `colorjax hint-sweep`)."""

from colorjax.__main__ import run_command

if __name__ == "__main__":
    run_command("hint-sweep")
