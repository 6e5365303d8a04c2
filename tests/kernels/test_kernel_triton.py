"""The Triton backend's kernels against the torch reference, executed on the CPU by Triton's interpreter
(triton_check.py, in a subprocess: TRITON_INTERPRET must be set before Triton is imported), and the backend
choice: one object per run, clear errors, Triton and numba imported only when chosen. Needs triton for the
kernel checks (shipped with CUDA builds of torch; CI installs it); skipped without it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchsnn.kernels import Backend, select_backend

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HAS_TRITON = importlib.util.find_spec("triton") is not None
N_CHECKS = 15


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_triton_kernels_match_the_reference_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(HERE / "triton_check.py")], env=env, capture_output=True, text=True, timeout=600
    )
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": ok") == N_CHECKS


def test_import_does_not_load_triton_or_numba():
    code = (
        "import sys, torchsnn, torchsnn.config, torchsnn.simulation, torchsnn.network\n"
        "assert 'triton' not in sys.modules and 'numba' not in sys.modules, "
        "[m for m in sys.modules if m.split('.')[0] in ('triton', 'numba')]\n"
        "from torchsnn.kernels import select_backend\n"
        "b = select_backend('cpu', 'torch')\n"
        "assert 'numba' not in sys.modules and b.name == 'torch_cpu'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_backend_choice_and_errors():
    assert select_backend("cpu", "torch").name == "torch_cpu"
    assert select_backend("cpu", "torch").ring_dtype == torch.float32
    assert select_backend("cpu", "numba").name == "numba_cpu"
    b = Backend("cpu")
    assert select_backend("cpu", b) is b
    with pytest.raises(ValueError, match=r"simulation\.backend"):
        select_backend("cpu", "fast")
    if os.environ.get("TRITON_INTERPRET") != "1":
        with pytest.raises(ValueError, match="TRITON_INTERPRET"):
            select_backend("cpu", "triton")
    with pytest.raises(ValueError, match="numba runs on the CPU only"):
        select_backend("cuda", "numba")
    torch_cuda = select_backend("cuda", "torch")  # constructing it needs no GPU
    assert torch_cuda.name == "torch_cuda" and torch_cuda.ring_dtype == torch.int64  # never a float32 ring on CUDA


def test_cuda_without_triton_is_the_deterministic_torch_path_or_an_error(monkeypatch):
    from torchsnn.kernels import backend as backend_module

    monkeypatch.setattr(backend_module, "TRITON_AVAILABLE", False)
    auto = select_backend("cuda", "auto")
    assert auto.name == "torch_cuda" and auto.ring_dtype == torch.int64
    assert "triton not installed" in auto.describe()["note"]
    with pytest.raises(ValueError, match="triton is not installed"):
        select_backend("cuda", "triton")


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_record_steps_must_lie_in_the_block_and_be_evenly_spaced():
    from torchsnn.kernels.triton_cuda import record_plan

    assert record_plan([1, 4], 6, 3) == (1, 3, (-(3 + 1)) % 3, 2)
    first, every, phase, n = record_plan([0, 5, 10], 15, 37)
    assert [s for s in range(15) if s >= first and (37 + s + phase) % every == 0] == [0, 5, 10] and n == 3
    assert record_plan([], 15, 0)[3] == 0
    with pytest.raises(ValueError, match="lie in"):
        record_plan([3, 15], 15, 0)  # past the block: the kernel would write out of bounds
    with pytest.raises(ValueError, match="lie in"):
        record_plan([-1], 15, 0)
    with pytest.raises(ValueError, match="evenly spaced"):
        record_plan([1, 2, 4], 15, 0)


def test_run_summary_reports_the_backend():
    from kernel_helpers import compose_config
    from testkit import brunel_size_overrides

    from torchsnn.config import build_network
    from torchsnn.simulation import simulate

    for kind, name in (("numba", "numba_cpu"), ("torch", "torch_cpu")):
        cfg = compose_config(
            ["+experiment=brunel_ai", *brunel_size_overrides(40, 10, 4, 1), "simulation.device=cpu",
             f"simulation.backend={kind}"]
        )  # fmt: skip
        built = build_network(cfg)
        res = simulate(built.network, duration_ms=3.0, generator=built.generator, progress=False)
        assert res.backend["name"] == name and res.backend["ring"] == "float32"
