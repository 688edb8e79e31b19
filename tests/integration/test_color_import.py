"""colorjax.color in a fresh process: importing it leaves TensorFlow unimported (the conversions' JAX half needs
none; tests/unit/test_color.py checks the numbers)."""

import subprocess
import sys


def test_importing_color_does_not_import_tensorflow():
    code = "import sys, colorjax.color; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
