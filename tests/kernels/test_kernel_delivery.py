"""numba delivery kernels (deliver_scalar, deliver_per_edge, deliver_per_row) against the torch reference
``torchsnn.delivery.deliver_block``: bit-identical ring buffers, for scalar, (E,), (B, E) and (B, N_pre) weights,
random spikes, random CSR blocks with empty rows (and unsorted rows with repeated targets), ring wrap-around and
ring buffers that already hold input. Weights and ring contents are arbitrary float32 values, so the results agree
bit for bit only if both add the same numbers in the same order.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from kernel_helpers import cpu_kernels, random_csr, random_floats, random_spikes

from torchsnn.delivery import deliver_block
from torchsnn.kernels import numba_cpu
from torchsnn.projection import Projection
from torchsnn.scaffold import ScaffoldBlock

HAS_PER_ROW = hasattr(numba_cpu, "deliver_per_row")

# (n_pre, n_post, mean out-degree, steps M, replicas B, ring slots R, first_slot (absolute t0 + D), spike prob.)
CASES = [
    (40, 30, 6.0, 15, 1, 15, 15, 0.2),  # brunel-like block: M = R = D, slots wrap from 0
    (40, 30, 6.0, 7, 3, 12, 9, 0.3),  # wraps: slots 9, 10, 11, 0, 1, 2, 3
    (50, 20, 3.0, 5, 2, 9, 1234567, 0.5),  # large absolute step (only first_slot mod R matters)
    (25, 60, 12.0, 1, 4, 3, 2, 0.9),  # one step, dense spiking
    (30, 30, 4.0, 6, 2, 8, 5, 0.0),  # no spikes at all: the ring is untouched
]
KINDS = ["scalar", "per_edge", "per_replica", "per_row"]


def _weights(kind: str, rng: np.random.Generator, n_edges: int, batch: int, n_pre: int) -> torch.Tensor:
    if kind == "scalar":
        return torch.tensor(np.float32(-0.3141592))
    if kind == "per_edge":
        return random_floats(rng, (n_edges,))
    if kind == "per_replica":
        return random_floats(rng, (batch, n_edges))
    return random_floats(rng, (batch, n_pre))


def _kernel(kind: str, spikes, row_ptr, post_index, weight, ring, first_slot):
    args = (spikes.numpy(), row_ptr.numpy(), post_index.numpy())
    slot = first_slot % ring.shape[0]
    if kind == "scalar":
        numba_cpu.deliver_scalar(*args, np.float32(weight.item()), ring.numpy(), slot)
    elif kind == "per_edge":
        numba_cpu.deliver_per_edge(*args, weight.view(1, -1).numpy(), ring.numpy(), slot)
    elif kind == "per_replica":
        numba_cpu.deliver_per_edge(*args, weight.numpy(), ring.numpy(), slot)
    else:
        numba_cpu.deliver_per_row(*args, weight.numpy(), ring.numpy(), slot)


def _reference(kind: str, spikes, row_ptr, post_index, weight, ring, first_slot):
    if kind == "per_row":
        deliver_block(spikes, row_ptr, post_index, weight, ring, first_slot, per_row=True)
    else:
        deliver_block(spikes, row_ptr, post_index, weight, ring, first_slot)


@pytest.mark.parametrize("duplicates", [False, True], ids=["sorted_rows", "repeated_targets"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_kernel_ring_equals_reference_bitwise(case, kind, duplicates):
    if kind == "per_row" and not HAS_PER_ROW:
        pytest.skip("numba_cpu.deliver_per_row not present in this version")
    n_pre, n_post, degree, m, batch, n_slots, first_slot, p = case
    rng = np.random.default_rng(zlib.crc32(repr((case, kind, duplicates)).encode()))
    row_ptr, post_index = random_csr(rng, n_pre, n_post, degree, duplicates=duplicates)
    spikes = random_spikes(rng, m, batch, n_pre, p)
    weight = _weights(kind, rng, post_index.numel(), batch, n_pre)
    ring0 = random_floats(rng, (n_slots, batch, n_post), scale=3.0)
    expected, got = ring0.clone(), ring0.clone()
    _reference(kind, spikes, row_ptr, post_index, weight, expected, first_slot)
    _kernel(kind, spikes, row_ptr, post_index, weight, got, first_slot)
    assert torch.equal(got, expected)
    if p == 0.0:
        assert torch.equal(got, ring0)
    else:
        assert not torch.equal(got, ring0)  # the case did deliver something


def test_many_events_on_one_cell_follow_the_documented_order():
    """All 200 presynaptic neurons project to post neuron 0 and spike in every step: 200 float32 additions per
    ring cell. Both implementations must equal the sequential float32 sum in the order (step, replica, neuron,
    edge), computed here one rounding at a time."""
    rng = np.random.default_rng(7)
    n_pre, batch, m = 200, 2, 4
    row_ptr = torch.arange(n_pre + 1, dtype=torch.int64)
    post_index = torch.zeros(n_pre, dtype=torch.int32)
    spikes = torch.ones(m, batch, n_pre, dtype=torch.bool)
    weight = random_floats(rng, (batch, n_pre), scale=10.0)
    ring = torch.full((4, batch, 3), 0.1)
    expected, got = ring.clone(), ring.clone()
    deliver_block(spikes, row_ptr, post_index, weight, expected, 4)
    numba_cpu.deliver_per_edge(spikes.numpy(), row_ptr.numpy(), post_index.numpy(), weight.numpy(), got.numpy(), 0)
    assert torch.equal(got, expected)
    for b in range(batch):
        cell = np.float32(0.1)
        for w in weight[b].numpy():
            cell = np.float32(cell + w)
        assert got[0, b, 0].item() == cell
        backwards = np.float32(0.1)
        for w in weight[b].numpy()[::-1]:
            backwards = np.float32(backwards + w)
        assert backwards != cell  # the data are order-sensitive, so the test can tell orders apart


def _projection(row_ptr, post_index, n_pre, n_post, weight_mv, sign, delay_ms=1.5, dt_ms=0.1):
    pre = torch.repeat_interleave(torch.arange(n_pre), row_ptr[1:] - row_ptr[:-1]).numpy()
    block = ScaffoldBlock.from_edges("E", "I", n_post, n_pre, pre, post_index.numpy())
    return Projection("EI", block, weight_mv, sign, delay_ms, dt_ms)


@pytest.mark.parametrize("weights", ["homogeneous", "per_edge", "per_replica"])
@pytest.mark.parametrize("block_start", [0, 15, 4000 * 15 + 3])
def test_projection_deliver_dispatch_equal(weights, block_start):
    """Projection.deliver with the kernels on and off (the dispatch: slot arithmetic, weight views)."""
    rng = np.random.default_rng(block_start + len(weights))
    n_pre, n_post, batch, m, n_slots = 60, 45, 3, 15, 20
    row_ptr, post_index = random_csr(rng, n_pre, n_post, 8.0)
    proj = _projection(row_ptr, post_index, n_pre, n_post, 0.5, -1.0)
    if weights == "per_edge":
        proj.weight_mv = -random_floats(rng, (proj.n_edges,)).abs()
    elif weights == "per_replica":
        proj.weight_mv = -random_floats(rng, (batch, proj.n_edges)).abs()
    spikes = random_spikes(rng, m, batch, n_pre, 0.3)
    ring0 = random_floats(rng, (n_slots, batch, n_post))
    rings = []
    for enabled in (True, False):
        ring = ring0.clone()
        with cpu_kernels(enabled):
            proj.deliver(spikes, ring, block_start)
        rings.append(ring)
    assert torch.equal(rings[0], rings[1])
    assert not torch.equal(rings[0], ring0)
