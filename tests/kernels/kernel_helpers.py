"""Shared helpers of tests/kernels (imported as ``kernel_helpers``: a unique module name, see
tests/simulator/sim_helpers.py for why ``from conftest import`` is avoided).

Data here is deliberately *not* exact in float32 (weights and ring contents are arbitrary floats), so the
compiled kernels match the torch reference only if they add the same numbers in the same order: the comparisons
are bit for bit (``torch.equal``), not approximate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from testkit import CONF_DIR, compose_config  # noqa: F401 (re-exported)

from torchsnn import kernels


@contextlib.contextmanager
def cpu_kernels(enabled: bool) -> Iterator[None]:
    previous = kernels.set_cpu_kernels(enabled)
    try:
        yield
    finally:
        kernels.set_cpu_kernels(previous)


def random_csr(
    rng: np.random.Generator,
    n_pre: int,
    n_post: int,
    mean_degree: float,
    empty_fraction: float = 0.2,
    duplicates: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR (row_ptr int64, post_index int32) with Poisson-ish row lengths, a fraction of empty rows, rows sorted
    (a scaffold's layout) or, with ``duplicates``, unsorted with repeated targets (stresses the order in which
    several events land on one ring cell)."""
    lengths = rng.poisson(mean_degree, size=n_pre)
    lengths[rng.random(n_pre) < empty_fraction] = 0
    lengths[0] = 0  # first and last rows empty: the boundaries of row_ptr
    lengths[-1] = 0
    row_ptr = np.zeros(n_pre + 1, dtype=np.int64)
    np.cumsum(lengths, out=row_ptr[1:])
    rows = []
    for k in lengths:
        if duplicates:
            rows.append(rng.integers(0, n_post, size=k))
        else:
            rows.append(np.sort(rng.choice(n_post, size=min(k, n_post), replace=False)))
    if not duplicates:
        lengths = np.array([len(r) for r in rows])
        np.cumsum(lengths, out=row_ptr[1:])
    post = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(row_ptr), torch.from_numpy(post.astype(np.int32))


def random_spikes(rng: np.random.Generator, m: int, batch: int, n: int, p: float) -> torch.Tensor:
    return torch.from_numpy(rng.random((m, batch, n)) < p)


def random_floats(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    """float32 values with full mantissas (sums of them round, so the order of additions shows)."""
    return torch.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32))
