"""numba ``lif_block`` (via LIFPopulation.run_block) against the torch reference (``NeuronPopulation.run_block``
through ``set_cpu_kernels(False)``): identical spikes, voltages, refractory counters, ring buffers (read slots
cleared, others untouched) and recorded voltages, over consecutive blocks that wrap around the ring, with and
without drive, with refractory periods of 0, a few and many steps.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from kernel_helpers import cpu_kernels, random_floats

from torchsnn.populations import LIFPopulation

PARAMS = [
    # tau_ref_ms -> refractory steps at dt 0.1: 2.0 -> 20 (longer than a block), 0.3 -> 2 (round half even), 0
    {"tau_ref_ms": 2.0},
    {"tau_ref_ms": 0.3},
    {"tau_ref_ms": 0.0},
    {"tau_ref_ms": 0.5, "tau_m_ms": 10.0, "theta_mv": 15.0, "v_reset_mv": -5.0},
]


def _pair(params: dict, batch: int, size: int, seed: int) -> tuple[LIFPopulation, LIFPopulation]:
    pop = LIFPopulation("E", size, 0.1, **params)
    gen = torch.Generator().manual_seed(seed)
    pop.reset_state(batch, gen)
    # start some neurons refractory, at various points of their count-down
    left = torch.randint(0, pop.refractory_steps + 1, (batch, size), generator=gen, dtype=torch.int32)
    pop.refractory_left = torch.where(torch.rand(batch, size, generator=gen) < 0.3, left, 0).to(torch.int32)
    return pop, copy.deepcopy(pop)


def _run(pop, enabled, ring, first_slot, drive, m, record):
    with cpu_kernels(enabled):
        return pop.run_block(ring, first_slot, drive, m, record)


@pytest.mark.parametrize("with_drive", [True, False], ids=["drive", "no_drive"])
@pytest.mark.parametrize("params", PARAMS, ids=lambda p: f"ref{p['tau_ref_ms']}")
def test_lif_blocks_identical(params, with_drive):
    rng = np.random.default_rng(3)
    batch, size, m, n_slots = 3, 257, 15, 20
    compiled, reference = _pair(params, batch, size, seed=11)
    ring_c = random_floats(rng, (n_slots, batch, size), scale=2.5)
    ring_r = ring_c.clone()
    t0 = 0
    total_spikes = 0
    for block in range(6):  # 90 steps: slots wrap around the 20-slot ring several times
        first_slot = t0 % n_slots
        drive = random_floats(rng, (m, batch, size), scale=1.5) + 0.6 if with_drive else None
        record = [0, 4, 14] if block % 2 == 0 else []
        # new input lands in the slots that will be read in the next block (as delivery would)
        for s in range(m, 2 * m):
            incoming = random_floats(rng, (batch, size), scale=2.0)
            ring_c[(t0 + s) % n_slots] += incoming
            ring_r[(t0 + s) % n_slots] += incoming
        before = ring_c.clone()
        sp_c, v_c = _run(compiled, True, ring_c, first_slot, drive, m, record)
        sp_r, v_r = _run(reference, False, ring_r, first_slot, drive, m, record)
        assert sp_c.dtype == sp_r.dtype == torch.bool
        assert sp_c.shape == sp_r.shape == (m, batch, size)
        assert torch.equal(sp_c, sp_r), f"spikes differ in block {block}"
        assert torch.equal(compiled.v_mv, reference.v_mv), f"voltages differ after block {block}"
        assert torch.equal(compiled.refractory_left, reference.refractory_left)
        assert compiled.refractory_left.dtype == reference.refractory_left.dtype == torch.int32
        assert torch.equal(ring_c, ring_r)
        read = [(first_slot + s) % n_slots for s in range(m)]
        untouched = [k for k in range(n_slots) if k not in read]
        assert torch.all(ring_c[read] == 0)
        assert torch.equal(ring_c[untouched], before[untouched])
        assert len(v_c) == len(v_r) == len(record)
        for a, b in zip(v_c, v_r, strict=True):
            assert torch.equal(a, b)
            assert a.shape == (batch, size)
        total_spikes += int(sp_c.sum())
        t0 += m
    assert total_spikes > 50  # the test exercised thresholds, resets and refractoriness


def test_recorded_voltages_are_copies():
    """Each recorded voltage is the state after its step, not a view of the evolving state."""
    compiled, reference = _pair({"tau_ref_ms": 2.0}, 2, 50, seed=5)
    rng = np.random.default_rng(0)
    ring = random_floats(rng, (15, 2, 50))
    drive = random_floats(rng, (15, 2, 50)) + 1.0
    _, v_c = _run(compiled, True, ring.clone(), 0, drive, 15, [0, 7, 14])
    _, v_r = _run(reference, False, ring.clone(), 0, drive, 15, [0, 7, 14])
    assert torch.equal(v_c[-1], compiled.v_mv)
    assert not torch.equal(v_c[0], v_c[-1])
    for a, b in zip(v_c, v_r, strict=True):
        assert torch.equal(a, b)


def test_threshold_is_inclusive_and_reset_is_exact():
    """A neuron landing exactly on theta spikes in both paths; input during refractoriness is lost in both."""
    for enabled in (True, False):
        pop = LIFPopulation("E", 3, 0.1, tau_ref_ms=0.3)
        pop.reset_state(1, v_init_mv=torch.zeros(3))
        ring = torch.zeros(3, 1, 3)
        drive = torch.zeros(3, 1, 3)
        drive[0, 0] = torch.tensor([20.0, 19.999, 25.0])  # theta = 20 mV, v = 0: first and third cross
        drive[1, 0] = torch.tensor([5.0, 0.0, 5.0])  # arrives while refractory: lost
        spikes, _ = _run(pop, enabled, ring, 0, drive, 3, [])
        assert spikes[0, 0].tolist() == [True, False, True]
        assert spikes[1:].sum() == 0
        assert pop.v_mv[0, 0].item() == 10.0 and pop.v_mv[0, 2].item() == 10.0
        assert pop.refractory_steps == 3  # round(0.3 / 0.1): spiked at step 0, counted down twice
        assert pop.refractory_left[0].tolist() == [1, 0, 1]
