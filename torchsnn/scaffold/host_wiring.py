"""Wiring on the CPU with the compiled kernels (``torchsnn.kernels.numba_wiring``): the same algorithms and laws as
the vectorised torch path (``edges.py``, the CUDA path), written as sequential loops that need no sort.

Used when the wiring generator is on the CPU, numba is installed and the compiled CPU kernels are on (the same
switch as the simulation's ``auto`` backend: ``torchsnn.kernels.cpu_kernels_enabled``; ``set_cpu_kernels(False)``
or ``TORCHSNN_CPU_KERNELS=0`` give the torch path on the CPU too). The seed of the kernels' splitmix64 stream is one
draw from the torch.Generator, so the same seed gives the same scaffold; the CPU kernels and the torch path give
different (equally distributed) scaffolds for the same seed.

Memory: one int32 slot per edge (post-major) plus the int32 targets and the int64 ``row_ptr``: 8 B per edge.
"""

from __future__ import annotations

import torch
from torch import Tensor

from torchsnn.kernels.backend import cpu_kernels_enabled

BUCKET_STUBS = 1 << 16  # stubs per bucket of the two-level shuffle (256 kB of int32: in cache)


def enabled(gen: torch.Generator, n_pre: int) -> bool:
    """Whether this block is wired by the CPU kernels (CPU generator, kernels on, int32 pre indices)."""
    return gen.device.type == "cpu" and cpu_kernels_enabled() and n_pre < 2**31 - 1


def _seed(gen: torch.Generator) -> int:
    """A 64-bit seed for the kernels' stream, drawn from ``gen`` (so the torch stream moves on)."""
    return int(torch.randint(0, 2**62, (1,), generator=gen, dtype=torch.int64))


def _kernels():
    from torchsnn.kernels import numba_wiring

    return numba_wiring


def _csr(slots: Tensor, col_ptr: Tensor, n_pre: int) -> tuple[Tensor, Tensor]:
    """Counting sort of post-major slots (int32 pre, -1 empty) into (row_ptr int64, post_index int32)."""
    nk = _kernels()
    counts = torch.zeros(n_pre, dtype=torch.int64)
    nk.row_counts(slots.numpy(), counts.numpy())
    row_ptr = torch.zeros(n_pre + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=row_ptr[1:])
    del counts
    post_index = torch.empty(int(row_ptr[-1]), dtype=torch.int32)
    nk.place(slots.numpy(), col_ptr.numpy(), row_ptr.numpy(), post_index.numpy())
    return row_ptr, post_index


def _col_ptr(k: Tensor) -> Tensor:
    col_ptr = torch.zeros(k.numel() + 1, dtype=torch.int64)
    torch.cumsum(k.cpu().long(), 0, out=col_ptr[1:])
    return col_ptr


def sample_distinct(counts: Tensor, n_pre: int, no_self: bool, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """CSR where post j gets counts[j] distinct pre neurons uniformly (sequential rejection of repeats, a mark per
    pre neuron; ``no_self``: never pre == j). Sparse blocks only (the caller takes dense ones by complement)."""
    col_ptr = _col_ptr(counts)
    slots = torch.empty(int(col_ptr[-1]), dtype=torch.int32)
    _kernels().distinct_by_post(counts.cpu().long().numpy(), n_pre, bool(no_self), _seed(gen), slots.numpy())
    return _csr(slots, col_ptr, n_pre)


def match(
    k: Tensor, out_deg: Tensor, n_pre: int, square: bool, rounds: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, dict[str, int]]:
    """Configuration-model stub matching (configuration_model.py, step 3) with the CPU kernels: the pre stubs in
    a uniformly random order (two-level shuffle) against the post stubs in post order; self-loops and repeated
    pairs re-matched for up to ``rounds`` rounds. Returns the CSR and the report counts of the torch path."""
    nk = _kernels()
    col_ptr = _col_ptr(k)
    slots = torch.empty(int(col_ptr[-1]), dtype=torch.int32)
    nk.shuffle_stubs(out_deg.cpu().long().numpy(), _seed(gen), BUCKET_STUBS, slots.numpy())
    report = torch.zeros(5, dtype=torch.int64)
    nk.match_stubs(col_ptr.numpy(), n_pre, bool(square), int(rounds), _seed(gen), slots.numpy(), report.numpy())
    self_initial, dup_initial, self_left, lost, used = report.tolist()
    counts = {
        "self_loops_initial": self_initial,
        "duplicates_initial": dup_initial,
        "self_loops_removed": self_left,
        "duplicates_removed": lost - self_left,
        "rewire_rounds_used": used,
    }
    row_ptr, post_index = _csr(slots, col_ptr, n_pre)
    return row_ptr, post_index, counts
