"""colorjax.inference process settings: the inference commands' XLA:CPU kernels."""

import os
import subprocess
import sys

import jax

from colorjax.inference.colorizer import prefer_fast_cpu_kernels


def test_inference_commands_prefer_onednn_only_where_it_takes_effect():
    script = "import os; from colorjax.inference.colorizer import prefer_fast_cpu_kernels as p; print(p(), os.environ['XLA_FLAGS'])"
    for given, added, flags in (
        ("", "True", "--xla_cpu_use_onednn=true"),
        ("--xla_cpu_use_onednn=false", "False", "--xla_cpu_use_onednn=false"),  # the user's choice wins
    ):
        env = {**os.environ, "XLA_FLAGS": given}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split() == [added, flags]
    jax.devices()  # in a process whose backends already run the flag would do nothing: it is not added
    environ = {}
    assert not prefer_fast_cpu_kernels(environ) and environ == {}
