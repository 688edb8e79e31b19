"""What every command line of colorjax shares: argument types, the output-folder check and user-error printing.

A library module never imports a command's module; commands import this one.
"""

from __future__ import annotations

import argparse
from pathlib import Path


class OutputError(ValueError):
    """An output folder that cannot be written (the message names it and what to do)."""


def step_arg(text: str) -> str | int:
    """argparse type of `--step`: latest, best or a step number (one-line error otherwise)."""
    if text in ("best", "latest"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--step must be best, latest or a step number, got {text!r}"
        ) from None


def check_writable(output: str | Path) -> None:
    """Creates `output` if needed and checks a file can be written there, before any long work starts."""
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".colorjax-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(
            f"Cannot write to output folder {output} ({e.strerror}); choose another --output."
        ) from e
