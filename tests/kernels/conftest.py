"""Fixtures for the kernel-equivalence tests (helpers live in kernel_helpers.py, a unique module name)."""

from __future__ import annotations

import pytest
import torch

from torchsnn import kernels


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread, restored afterwards: the reference's ``index_add_`` then accumulates serially in index
    order (the order the kernels follow), and a shared 2-core machine is not oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_kernel_switch():
    """Every test leaves ``set_cpu_kernels`` as it found it."""
    before = kernels.set_cpu_kernels(kernels.cpu_kernels_enabled())
    yield
    kernels.set_cpu_kernels(before)


@pytest.fixture(autouse=True)
def _needs_numba():
    if not kernels.NUMBA_AVAILABLE:
        pytest.skip("numba is not installed: only the torch reference path exists")
