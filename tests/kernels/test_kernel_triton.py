"""The GPU (Triton) kernels against the torch reference, executed on the CPU by Triton's interpreter: delivery
into the fixed-point ring for every weight layout, and whole LIF blocks (bit-identical). Needs triton (shipped
with CUDA builds of torch; CI installs it for this test); skipped without it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_kernels_match_the_reference_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "TORCHSNN_TRITON_ON_CPU": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(HERE / "triton_check.py")], env=env, capture_output=True, text=True, timeout=600
    )
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": ok") == 7
