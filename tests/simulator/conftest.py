"""Fixtures for the simulator tests; the helpers they share live in sim_helpers.py."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run every test with one intra-op thread, restored afterwards.

    The tensors here are small (<= 10^4 neurons), where a second thread does not help; on a shared 2-core machine
    torch's OpenMP workers spin-wait against other processes and a 1 s simulation was measured to take 17 s with
    2 threads and 0.7 s with 1. Results do not depend on the thread count (same seed, same spikes).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
